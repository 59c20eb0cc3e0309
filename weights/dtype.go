package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// DType names an element type the way safetensors does.
type DType string

// Element types known to the readers and the writer.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U64  DType = "U64"
	U32  DType = "U32"
	U16  DType = "U16"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// Size is the element size in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, BOOL:
		return 1
	}
	return 0
}

// Known reports whether d is a dtype clinfer can read.
func (d DType) Known() bool { return d.Size() != 0 }

// IsFloat reports whether d holds floating-point values.
func (d DType) IsFloat() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// nativeLittle decides whether stored little-endian float32 bytes can be viewed in place.
var nativeLittle = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// numel multiplies a shape, failing on negative dimensions and on products that do not fit
// (a hostile header must not be able to make the size wrap around to something plausible).
func numel(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt64/8/d {
			return 0, fmt.Errorf("shape %v too large", shape)
		}
		n *= d
	}
	return n, nil
}

// F16ToF32 converts IEEE 754 binary16 bits to float32 exactly (every half value is representable).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf / NaN, keep the payload
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: normalise into a float32 normal.
	e := uint32(113)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// F32ToF16 converts float32 to binary16 with round-to-nearest-even, as torch does.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the correct rounding to the next binade / inf
	}
	return sign | uint16(r)
}

// BF16ToF32 widens bfloat16 bits to float32 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 narrows float32 to bfloat16 with round-to-nearest-even (NaN stays NaN).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

var (
	f16Once sync.Once
	f16Tab  *[1 << 16]float32
)

// f16Table maps every binary16 bit pattern to its float32 value (256 KiB, built on first
// use), which converts far faster than decoding each element.
func f16Table() *[1 << 16]float32 {
	f16Once.Do(func() {
		t := new([1 << 16]float32)
		for i := range t {
			t[i] = F16ToF32(uint16(i))
		}
		f16Tab = t
	})
	return f16Tab
}

// halfBits views n little-endian 2-byte elements as uint16 (in place when possible).
func halfBits(data []byte, n int) []uint16 {
	if nativeLittle && uintptr(unsafe.Pointer(&data[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&data[0])), n)
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(data[2*i:])
	}
	return out
}

// toFloat32 decodes n little-endian elements of dtype d. F32 data is viewed in place when
// the bytes are 4-byte aligned on a little-endian machine; everything else is a fresh slice.
func toFloat32(d DType, data []byte, n int) ([]float32, error) {
	if n == 0 {
		return []float32{}, nil
	}
	switch d {
	case F32:
		if nativeLittle && uintptr(unsafe.Pointer(&data[0]))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&data[0])), n), nil
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return out, nil
	case F16:
		tab := f16Table()
		out := make([]float32, n)
		for i, h := range halfBits(data, n) {
			out[i] = tab[h]
		}
		return out, nil
	case BF16:
		out := make([]float32, n)
		for i, h := range halfBits(data, n) {
			out[i] = math.Float32frombits(uint32(h) << 16)
		}
		return out, nil
	case F64:
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s is not a floating-point type", d)
}

// toInt64 widens n little-endian integer (or bool) elements of dtype d.
func toInt64(d DType, data []byte, n int) ([]int64, error) {
	out := make([]int64, n)
	switch d {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
		}
	case U64:
		for i := range out {
			v := binary.LittleEndian.Uint64(data[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("element %d: U64 value %d overflows int64", i, v)
			}
			out[i] = int64(v)
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(data[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(data[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(data[i]))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = int64(data[i])
		}
	default:
		return nil, fmt.Errorf("dtype %s is not an integer type", d)
	}
	return out, nil
}

// Uint16s returns a 2-byte tensor (F16 or BF16) of s as its raw bit patterns, for callers
// that keep half-precision weights as they are (a zero-copy view when aligned). want
// names the dtype the caller expects; a different stored dtype is an error.
func Uint16s(s Store, name string, want DType) ([]uint16, []int, error) {
	raw, info, err := s.Raw(name)
	if err != nil {
		return nil, nil, err
	}
	if info.DType != want || want.Size() != 2 {
		return nil, nil, fmt.Errorf("weights: tensor %q is %s, not %s", name, info.DType, want)
	}
	n := len(raw) / 2
	if n == 0 {
		return []uint16{}, info.Shape, nil
	}
	if nativeLittle && uintptr(unsafe.Pointer(&raw[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&raw[0])), n), info.Shape, nil
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	return out, info.Shape, nil
}
