package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A small, restricted unpickler for PyTorch's data.pkl. It is not a general Python
// unpickler: it builds plain Go values (dicts, lists, tuples, scalars) and recognises only
// the globals torch.save writes for tensors and state dicts. Any other global, and the
// opcodes that instantiate arbitrary classes, are errors, so a checkpoint can never make
// the loader run code. Every length read from the stream is checked against the bytes that
// remain before anything is allocated, so memory stays proportional to the input.

// errPickle marks a malformed or forbidden pickle.
var errPickle = errors.New("pickle")

type pyGlobal struct{ module, name string }

func (g pyGlobal) String() string { return g.module + "." + g.name }

type pyTuple []any

type pyList struct{ items []any }

// pyDict keeps insertion order (Python dicts are ordered) and supports the hashable key
// types a state dict can use.
type pyDict struct {
	keys    []any
	vals    []any
	index   map[any]int
	ordered bool // collections.OrderedDict rather than dict
}

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, nil, float64:
	default:
		return fmt.Errorf("unsupported dict key type %T", k)
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// pyStorage is a storage a persistent id refers to; the same key yields the same value, so
// tensors that share storage (tied weights) can be recognised.
type pyStorage struct {
	dtype DType
	key   string
	numel int64
}

// pyTensor is the result of torch._utils._rebuild_tensor_v2 and friends.
type pyTensor struct {
	storage *pyStorage
	offset  int64
	size    []int64
	stride  []int64
}

var storageDTypes = map[string]DType{
	"FloatStorage":    F32,
	"HalfStorage":     F16,
	"BFloat16Storage": BF16,
	"DoubleStorage":   F64,
	"LongStorage":     I64,
	"IntStorage":      I32,
	"ShortStorage":    I16,
	"CharStorage":     I8,
	"ByteStorage":     U8,
	"BoolStorage":     BOOL,
}

// allowedGlobal is the whole vocabulary of classes and functions a checkpoint may name.
func allowedGlobal(module, name string) bool {
	switch module {
	case "collections":
		return name == "OrderedDict"
	case "torch._utils":
		switch name {
		case "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state":
			return true
		}
	case "torch._tensor":
		return name == "_rebuild_from_type_v2"
	case "torch":
		if _, ok := storageDTypes[name]; ok {
			return true
		}
		return name == "Tensor"
	case "torch.nn.parameter":
		return name == "Parameter"
	}
	return false
}

type unpickler struct {
	data     []byte
	pos      int
	stack    []any
	marks    []int
	memo     map[uint32]any
	storages map[string]*pyStorage
}

// unpickle runs a pickle program and returns the object it builds.
func unpickle(data []byte) (any, error) {
	u := &unpickler{data: data, memo: map[uint32]any{}, storages: map[string]*pyStorage{}}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("%w (byte %d): %v", errPickle, u.pos, err)
	}
	return v, nil
}

func (u *unpickler) errf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

func (u *unpickler) take(n uint64) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, u.errf("a %d-byte field runs past the end of the %d-byte pickle", n, len(u.data))
	}
	b := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) u8() (uint64, error) {
	b, err := u.take(1)
	if err != nil {
		return 0, err
	}
	return uint64(b[0]), nil
}

func (u *unpickler) u16() (uint64, error) {
	b, err := u.take(2)
	if err != nil {
		return 0, err
	}
	return uint64(binary.LittleEndian.Uint16(b)), nil
}

func (u *unpickler) u32() (uint64, error) {
	b, err := u.take(4)
	if err != nil {
		return 0, err
	}
	return uint64(binary.LittleEndian.Uint32(b)), nil
}

func (u *unpickler) u64() (uint64, error) {
	b, err := u.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// memoIndex reads the operand of the memo opcodes: a decimal line for PUT/GET, one byte for
// BINPUT/BINGET, four for LONG_BINPUT/LONG_BINGET.
func (u *unpickler) memoIndex(op uint64) (uint64, error) {
	switch op {
	case 'p', 'g':
		s, err := u.line()
		if err != nil {
			return 0, err
		}
		i, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, u.errf("bad memo index %q", s)
		}
		return i, nil
	case 'q', 'h':
		return u.u8()
	default:
		return u.u32()
	}
}

func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return "", u.errf("unterminated text line")
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, u.errf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, u.errf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) popN(n int) ([]any, error) {
	base := 0
	if len(u.marks) > 0 {
		base = u.marks[len(u.marks)-1]
	}
	if len(u.stack)-base < n {
		return nil, u.errf("stack underflow")
	}
	items := append([]any(nil), u.stack[len(u.stack)-n:]...)
	u.stack = u.stack[:len(u.stack)-n]
	return items, nil
}

func (u *unpickler) memoPut(i uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if i > math.MaxUint32 {
		return u.errf("memo index %d out of range", i)
	}
	u.memo[uint32(i)] = v
	return nil
}

func (u *unpickler) memoGet(i uint64) error {
	v, ok := u.memo[uint32(i)]
	if !ok || i > math.MaxUint32 {
		return u.errf("memo index %d was never stored", i)
	}
	u.push(v)
	return nil
}

func (u *unpickler) pushGlobal(module, name string) error {
	if !allowedGlobal(module, name) {
		return u.errf("forbidden global %s.%s: a model checkpoint may only reference torch tensor rebuild functions, storage classes and OrderedDict", module, name)
	}
	u.push(pyGlobal{module, name})
	return nil
}

// signedLE decodes a little-endian two's-complement integer of up to 8 bytes (LONG1/LONG4).
func (u *unpickler) signedLE(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > 8 {
		// Larger encodings are legal only for values that still fit (sign padding).
		ext := byte(0)
		if b[len(b)-1]&0x80 != 0 {
			ext = 0xff
		}
		for _, c := range b[8:] {
			if c != ext {
				return 0, u.errf("integer wider than 64 bits")
			}
		}
		if (b[7]&0x80 != 0) != (ext == 0xff) {
			return 0, u.errf("integer wider than 64 bits")
		}
		b = b[:8]
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		v |= ^uint64(0) << (8 * uint(len(b)))
	}
	return int64(v), nil
}

func (u *unpickler) run() (any, error) {
	for {
		op, err := u.u8()
		if err != nil {
			return nil, u.errf("pickle ends without STOP")
		}
		switch op {
		case 0x80: // PROTO
			p, err := u.u8()
			if err != nil {
				return nil, err
			}
			if p > 5 {
				return nil, u.errf("unsupported pickle protocol %d", p)
			}
		case 0x95: // FRAME: framing is only a read-ahead hint; the whole pickle is in memory
			n, err := u.u64()
			if err != nil {
				return nil, err
			}
			if n > uint64(len(u.data)-u.pos) {
				return nil, u.errf("frame of %d bytes runs past the end", n)
			}
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(': // MARK
			u.marks = append(u.marks, len(u.stack))
		case '0': // POP
			if len(u.stack) > 0 && len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1] {
				u.marks = u.marks[:len(u.marks)-1]
			} else if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'N':
			u.push(nil)
		case 0x88:
			u.push(true)
		case 0x89:
			u.push(false)
		case 'J': // BININT
			v, err := u.u32()
			if err != nil {
				return nil, err
			}
			u.push(int64(int32(uint32(v))))
		case 'K': // BININT1
			v, err := u.u8()
			if err != nil {
				return nil, err
			}
			u.push(int64(v))
		case 'M': // BININT2
			v, err := u.u16()
			if err != nil {
				return nil, err
			}
			u.push(int64(v))
		case 0x8a, 0x8b: // LONG1, LONG4
			var n uint64
			if op == 0x8a {
				n, err = u.u8()
			} else {
				n, err = u.u32()
			}
			if err != nil {
				return nil, err
			}
			b, err := u.take(n)
			if err != nil {
				return nil, err
			}
			v, err := u.signedLE(b)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'I', 'L': // INT, LONG (text)
			s, err := u.line()
			if err != nil {
				return nil, err
			}
			s = strings.TrimSuffix(s, "L")
			switch {
			case op == 'I' && s == "00":
				u.push(false)
			case op == 'I' && s == "01":
				u.push(true)
			default:
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return nil, u.errf("bad integer %q", s)
				}
				u.push(v)
			}
		case 'F': // FLOAT (text)
			s, err := u.line()
			if err != nil {
				return nil, err
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, u.errf("bad float %q", s)
			}
			u.push(v)
		case 'G': // BINFLOAT, big-endian
			b, err := u.take(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case 'X', 0x8c, 0x8d, 'T', 'U': // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
			var n uint64
			switch op {
			case 'X', 'T':
				n, err = u.u32()
			case 0x8c, 'U':
				n, err = u.u8()
			default:
				n, err = u.u64()
			}
			if err != nil {
				return nil, err
			}
			b, err := u.take(n)
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case 'B', 'C', 0x8e, 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
			var n uint64
			switch op {
			case 'B':
				n, err = u.u32()
			case 'C':
				n, err = u.u8()
			default:
				n, err = u.u64()
			}
			if err != nil {
				return nil, err
			}
			b, err := u.take(n)
			if err != nil {
				return nil, err
			}
			u.push(append([]byte(nil), b...))
		case ')':
			u.push(pyTuple{})
		case 't':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(pyTuple(items))
		case 0x85, 0x86, 0x87: // TUPLE1..3
			items, err := u.popN(int(op - 0x84))
			if err != nil {
				return nil, err
			}
			u.push(pyTuple(items))
		case ']':
			u.push(&pyList{})
		case 'l':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(&pyList{items: items})
		case 0x8f: // EMPTY_SET: kept as a list, sets carry no tensors
			u.push(&pyList{})
		case 0x91: // FROZENSET
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(&pyList{items: items})
		case 'a': // APPEND
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			l, err := u.top()
			if err != nil {
				return nil, err
			}
			pl, ok := l.(*pyList)
			if !ok {
				return nil, u.errf("APPEND to a %T", l)
			}
			pl.items = append(pl.items, v)
		case 'e', 0x90: // APPENDS, ADDITEMS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			l, err := u.top()
			if err != nil {
				return nil, err
			}
			pl, ok := l.(*pyList)
			if !ok {
				return nil, u.errf("APPENDS to a %T", l)
			}
			pl.items = append(pl.items, items...)
		case '}':
			u.push(newDict())
		case 'd':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			if len(items)%2 != 0 {
				return nil, u.errf("DICT with an odd number of items")
			}
			d := newDict()
			for i := 0; i < len(items); i += 2 {
				if err := d.set(items[i], items[i+1]); err != nil {
					return nil, err
				}
			}
			u.push(d)
		case 's': // SETITEM
			kv, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			d, err := u.top()
			if err != nil {
				return nil, err
			}
			pd, ok := d.(*pyDict)
			if !ok {
				return nil, u.errf("SETITEM on a %T", d)
			}
			if err := pd.set(kv[0], kv[1]); err != nil {
				return nil, err
			}
		case 'u': // SETITEMS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			if len(items)%2 != 0 {
				return nil, u.errf("SETITEMS with an odd number of items")
			}
			d, err := u.top()
			if err != nil {
				return nil, err
			}
			pd, ok := d.(*pyDict)
			if !ok {
				return nil, u.errf("SETITEMS on a %T", d)
			}
			for i := 0; i < len(items); i += 2 {
				if err := pd.set(items[i], items[i+1]); err != nil {
					return nil, err
				}
			}
		case 'p', 'q', 'r': // PUT (text), BINPUT, LONG_BINPUT
			i, err := u.memoIndex(op)
			if err != nil {
				return nil, err
			}
			if err := u.memoPut(i); err != nil {
				return nil, err
			}
		case 0x94: // MEMOIZE
			if err := u.memoPut(uint64(len(u.memo))); err != nil {
				return nil, err
			}
		case 'g', 'h', 'j': // GET (text), BINGET, LONG_BINGET
			i, err := u.memoIndex(op)
			if err != nil {
				return nil, err
			}
			if err := u.memoGet(i); err != nil {
				return nil, err
			}
		case 'c': // GLOBAL
			module, err := u.line()
			if err != nil {
				return nil, err
			}
			name, err := u.line()
			if err != nil {
				return nil, err
			}
			if err := u.pushGlobal(module, name); err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			mn, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			module, ok1 := mn[0].(string)
			name, ok2 := mn[1].(string)
			if !ok1 || !ok2 {
				return nil, u.errf("STACK_GLOBAL needs two strings")
			}
			if err := u.pushGlobal(module, name); err != nil {
				return nil, err
			}
		case 'R': // REDUCE
			fa, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			v, err := u.call(fa[0], fa[1])
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'b': // BUILD
			if _, err := u.pop(); err != nil {
				return nil, err
			}
			obj, err := u.top()
			if err != nil {
				return nil, err
			}
			// state_dict() is an OrderedDict carrying a _metadata attribute, and tensors may
			// carry Python attributes: neither matters for the weights, so the state is dropped.
			switch obj.(type) {
			case *pyDict, *pyTensor:
			default:
				return nil, u.errf("BUILD on a %T", obj)
			}
		case 'P', 'Q': // PERSID, BINPERSID
			var pid any
			if op == 'P' {
				s, err := u.line()
				if err != nil {
					return nil, err
				}
				pid = s
			} else if pid, err = u.pop(); err != nil {
				return nil, err
			}
			v, err := u.persistent(pid)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'i', 'o', 0x81, 0x92:
			return nil, u.errf("opcode %#x instantiates arbitrary classes and is not allowed in a checkpoint", op)
		case 0x82, 0x83, 0x84:
			return nil, u.errf("extension registry opcode %#x is not allowed in a checkpoint", op)
		case 0x97, 0x98:
			return nil, u.errf("out-of-band buffer opcode %#x is not supported", op)
		default:
			return nil, u.errf("unsupported opcode %#x", op)
		}
	}
}

// persistent resolves torch's storage references:
// ('storage', torch.FloatStorage, key, location, numel).
func (u *unpickler) persistent(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, u.errf("persistent id %v is not a torch storage reference", describe(pid))
	}
	if tag, _ := t[0].(string); tag != "storage" {
		return nil, u.errf("persistent id of kind %v is not a storage", describe(t[0]))
	}
	cls, ok := t[1].(pyGlobal)
	dt, known := storageDTypes[cls.name]
	if !ok || cls.module != "torch" || !known {
		return nil, u.errf("storage class %v is not supported", describe(t[1]))
	}
	key, ok := t[2].(string)
	if !ok || key == "" || strings.ContainsAny(key, "/\\") || key == "." || key == ".." {
		return nil, u.errf("bad storage key %v", describe(t[2]))
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, u.errf("bad storage size %v", describe(t[4]))
	}
	if s, ok := u.storages[key]; ok {
		if s.dtype != dt || s.numel != numel {
			return nil, u.errf("storage %q referenced as both %s[%d] and %s[%d]", key, s.dtype, s.numel, dt, numel)
		}
		return s, nil
	}
	s := &pyStorage{dtype: dt, key: key, numel: numel}
	u.storages[key] = s
	return s, nil
}

func (u *unpickler) call(fn, args any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, u.errf("REDUCE of a %T, not a callable", fn)
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, u.errf("REDUCE of %s with %T arguments", g, args)
	}
	switch g {
	case pyGlobal{"collections", "OrderedDict"}:
		d := newDict()
		d.ordered = true
		if len(a) > 1 {
			return nil, u.errf("OrderedDict with %d arguments", len(a))
		}
		if len(a) == 1 {
			var items []any
			switch it := a[0].(type) {
			case *pyList:
				items = it.items
			case pyTuple:
				items = it
			default:
				return nil, u.errf("OrderedDict from a %T", a[0])
			}
			for _, kv := range items {
				pair, ok := kv.(pyTuple)
				if !ok || len(pair) != 2 {
					return nil, u.errf("OrderedDict item is not a pair")
				}
				if err := d.set(pair[0], pair[1]); err != nil {
					return nil, err
				}
			}
		}
		return d, nil
	case pyGlobal{"torch._utils", "_rebuild_tensor_v2"}, pyGlobal{"torch._utils", "_rebuild_tensor"}:
		// (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
		if len(a) < 4 || len(a) > 7 {
			return nil, u.errf("%s with %d arguments", g, len(a))
		}
		st, ok := a[0].(*pyStorage)
		if !ok {
			return nil, u.errf("%s: first argument is a %T, not a storage", g, a[0])
		}
		off, ok := a[1].(int64)
		if !ok || off < 0 {
			return nil, u.errf("%s: bad storage offset %v", g, describe(a[1]))
		}
		size, err := intTuple(a[2])
		if err != nil {
			return nil, u.errf("%s: size: %v", g, err)
		}
		stride, err := intTuple(a[3])
		if err != nil {
			return nil, u.errf("%s: stride: %v", g, err)
		}
		if len(size) != len(stride) {
			return nil, u.errf("%s: size %v and stride %v differ in rank", g, size, stride)
		}
		return &pyTensor{storage: st, offset: off, size: size, stride: stride}, nil
	case pyGlobal{"torch._utils", "_rebuild_parameter"}, pyGlobal{"torch._utils", "_rebuild_parameter_with_state"}:
		if len(a) < 3 || len(a) > 4 {
			return nil, u.errf("%s with %d arguments", g, len(a))
		}
		t, ok := a[0].(*pyTensor)
		if !ok {
			return nil, u.errf("%s of a %T", g, a[0])
		}
		return t, nil
	case pyGlobal{"torch._tensor", "_rebuild_from_type_v2"}:
		// (func, new_type, args, state): a tensor subclass wrapper around func(*args).
		if len(a) != 4 {
			return nil, u.errf("%s with %d arguments", g, len(a))
		}
		typ, ok := a[1].(pyGlobal)
		if !ok || (typ != pyGlobal{"torch", "Tensor"} && typ != pyGlobal{"torch.nn.parameter", "Parameter"}) {
			return nil, u.errf("%s: tensor type %v is not supported", g, describe(a[1]))
		}
		inner, ok := a[0].(pyGlobal)
		if !ok || inner.module != "torch._utils" {
			return nil, u.errf("%s: rebuild function %v is not supported", g, describe(a[0]))
		}
		return u.call(inner, a[2])
	}
	return nil, u.errf("%s cannot be called", g)
}

func intTuple(v any) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%v is not a tuple", describe(v))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("element %d (%v) is not a non-negative integer", i, describe(x))
		}
		out[i] = n
	}
	return out, nil
}

// describe names a value for an error message without dumping checkpoint contents.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		if len(x) > 64 {
			x = x[:64] + "..."
		}
		return strconv.Quote(x)
	case int64, bool, float64:
		return fmt.Sprint(x)
	case pyGlobal:
		return x.String()
	case pyTuple:
		return fmt.Sprintf("a %d-tuple", len(x))
	}
	return fmt.Sprintf("a %T", v)
}
