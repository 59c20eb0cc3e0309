package weights

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"sort"
	"strings"
)

// PyTorch zip checkpoints (torch.save since 1.6): <prefix>/data.pkl is a pickle whose
// tensors refer to raw little-endian storages <prefix>/data/<key>. torch writes the archive
// uncompressed with 64-byte aligned entries, so contiguous tensors are served as views of
// the memory-mapped file, like safetensors.

// materializeBudget bounds the memory a checkpoint can make the loader allocate (inflated
// entries plus copies of non-contiguous tensors) relative to the archive size: a stride-0
// tensor or a deflate bomb must not turn a small file into gigabytes.
func materializeBudget(archiveSize int) int64 {
	return 4*int64(archiveSize) + 64<<20
}

func openPyTorch(p string) (Store, error) {
	buf, unmap, err := loadFile(p)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	s, err := parsePyTorch(p, buf)
	if err != nil {
		unmap()
		return nil, err
	}
	s.closers = append(s.closers, unmap)
	return s, nil
}

type zipArchive struct {
	path   string
	buf    []byte
	files  map[string]*zip.File
	budget int64
	cache  map[string][]byte
}

// entry returns the bytes of one archive member: a view of buf when stored, inflated
// within the budget when compressed; the CRC is checked either way.
func (z *zipArchive) entry(name string) ([]byte, error) {
	if b, ok := z.cache[name]; ok {
		return b, nil
	}
	f, ok := z.files[name]
	if !ok {
		return nil, fmt.Errorf("archive has no %s", name)
	}
	var b []byte
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if f.CompressedSize64 != f.UncompressedSize64 || off < 0 || uint64(off) > uint64(len(z.buf)) || f.UncompressedSize64 > uint64(len(z.buf))-uint64(off) {
			return nil, fmt.Errorf("%s: entry of %d bytes at offset %d lies outside the %d-byte archive", name, f.UncompressedSize64, off, len(z.buf))
		}
		b = z.buf[off : off+int64(f.UncompressedSize64) : off+int64(f.UncompressedSize64)]
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return nil, fmt.Errorf("%s: CRC mismatch, the archive is corrupted", name)
		}
	case zip.Deflate:
		if f.UncompressedSize64 > uint64(z.budget) {
			return nil, fmt.Errorf("%s: inflates to %d bytes, more than the loader allows for a %d-byte archive", name, f.UncompressedSize64, len(z.buf))
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		b, err = io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if uint64(len(b)) != f.UncompressedSize64 {
			return nil, fmt.Errorf("%s: inflated to %d bytes, header says %d", name, len(b), f.UncompressedSize64)
		}
		z.budget -= int64(len(b))
	default:
		return nil, fmt.Errorf("%s: unsupported zip compression method %d", name, f.Method)
	}
	z.cache[name] = b
	return b, nil
}

func parsePyTorch(p string, buf []byte) (*tensorStore, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("weights: %s: pytorch checkpoint: %s: %w", p, fmt.Sprintf(format, args...), ErrFormat)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		return nil, fail("not a readable zip archive: %v", err)
	}
	z := &zipArchive{path: p, buf: buf, files: map[string]*zip.File{}, budget: materializeBudget(len(buf)), cache: map[string][]byte{}}
	var pkls []string
	for _, f := range zr.File {
		if _, dup := z.files[f.Name]; dup {
			return nil, fail("archive lists %s twice", f.Name)
		}
		z.files[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			pkls = append(pkls, f.Name)
		}
	}
	if len(pkls) != 1 {
		return nil, fail("want exactly one <prefix>/data.pkl, found %d (is this a torch.save zip checkpoint?)", len(pkls))
	}
	prefix := strings.TrimSuffix(pkls[0], "data.pkl")
	if bo, ok := z.files[prefix+"byteorder"]; ok {
		b, err := z.entry(bo.Name)
		if err != nil {
			return nil, fail("%v", err)
		}
		if strings.TrimSpace(string(b)) != "little" {
			return nil, fail("byteorder %q is not supported, only little-endian checkpoints", b)
		}
	}
	pkl, err := z.entry(pkls[0])
	if err != nil {
		return nil, fail("%v", err)
	}
	obj, err := unpickle(pkl)
	if err != nil {
		return nil, fail("%s: %v", pkls[0], err)
	}
	tensors, err := stateDict(obj, 0)
	if err != nil {
		return nil, fail("%s: %v", pkls[0], err)
	}
	names, err := mapLegacyNames(tensors)
	if err != nil {
		return nil, fail("%v", err)
	}
	s := newTensorStore(p)
	for i, nt := range tensors {
		name := names[i]
		e, err := z.tensorEntry(prefix, name, nt.t)
		if err != nil {
			return nil, fail("tensor %q: %v", name, err)
		}
		s.add(e)
	}
	s.finish()
	return s, nil
}

type namedPyTensor struct {
	name string
	t    *pyTensor
}

// stateDictKeys are the keys training scripts commonly nest a model's state dict under.
var stateDictKeys = []string{"state_dict", "model_state_dict", "model", "module", "net", "network"}

// stateDict finds the {name: tensor} mapping in a checkpoint: the top-level dict when it
// holds tensors (other values such as _metadata or an epoch counter are ignored), else the
// first nested dict under a conventional key.
func stateDict(obj any, depth int) ([]namedPyTensor, error) {
	d, ok := obj.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("checkpoint holds %s, not a state dict", describe(obj))
	}
	var out []namedPyTensor
	for i, k := range d.keys {
		if t, ok := d.vals[i].(*pyTensor); ok {
			name, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("tensor under non-string key %v", describe(k))
			}
			out = append(out, namedPyTensor{name, t})
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if depth < 3 {
		for _, k := range stateDictKeys {
			if v, ok := d.get(k); ok {
				if _, isDict := v.(*pyDict); isDict {
					return stateDict(v, depth+1)
				}
			}
		}
	}
	var keys []string
	for _, k := range d.keys {
		if len(keys) == 10 {
			keys = append(keys, "...")
			break
		}
		keys = append(keys, describe(k))
	}
	return nil, fmt.Errorf("no tensors found (top-level keys: %s)", strings.Join(keys, ", "))
}

// mapLegacyNames renames as transformers does when loading old checkpoints: a trailing
// gamma/beta (TF-era LayerNorm) becomes weight/bias, and a "module." prefix that every key
// carries (torch DataParallel) is dropped. A rename that collides with an existing name is
// an error rather than a silent overwrite.
func mapLegacyNames(ts []namedPyTensor) ([]string, error) {
	stripModule := len(ts) > 0
	for _, t := range ts {
		if !strings.HasPrefix(t.name, "module.") {
			stripModule = false
			break
		}
	}
	names := make([]string, len(ts))
	seen := make(map[string]string, len(ts))
	for i, t := range ts {
		n := t.name
		if stripModule {
			n = strings.TrimPrefix(n, "module.")
		}
		if strings.HasSuffix(n, ".gamma") || n == "gamma" {
			n = strings.TrimSuffix(n, "gamma") + "weight"
		} else if strings.HasSuffix(n, ".beta") || n == "beta" {
			n = strings.TrimSuffix(n, "beta") + "bias"
		}
		if prev, ok := seen[n]; ok {
			return nil, fmt.Errorf("tensors %q and %q both map to %q", prev, t.name, n)
		}
		seen[n] = t.name
		names[i] = n
	}
	return names, nil
}

// tensorEntry checks a tensor's view against its storage and returns its bytes: a view when
// the tensor is contiguous, else a contiguous copy charged to the budget.
func (z *zipArchive) tensorEntry(prefix, name string, t *pyTensor) (*entry, error) {
	st := t.storage
	es := int64(st.dtype.Size())
	raw, err := z.entry(prefix + "data/" + st.key)
	if err != nil {
		return nil, err
	}
	if int64(len(raw))%es != 0 {
		return nil, fmt.Errorf("storage %s holds %d bytes, not a whole number of %s elements", st.key, len(raw), st.dtype)
	}
	if st.numel > int64(len(raw))/es {
		return nil, fmt.Errorf("storage %s claims %d %s elements but holds %d bytes", st.key, st.numel, st.dtype, len(raw))
	}
	shape := make([]int, len(t.size))
	n := int64(1)
	for i, d := range t.size {
		if d != 0 && n > math.MaxInt64/8/d {
			return nil, fmt.Errorf("size %v too large", t.size)
		}
		n *= d
		shape[i] = int(d)
	}
	info := TensorInfo{Name: name, DType: st.dtype, Shape: shape}
	if n == 0 {
		return &entry{info: info, n: 0, data: []byte{}, file: z.path}, nil
	}
	// The highest storage element the view touches must exist.
	last := t.offset
	for i, d := range t.size {
		step := (d - 1) * t.stride[i]
		if t.stride[i] != 0 && step/t.stride[i] != d-1 || last > math.MaxInt64-step {
			return nil, fmt.Errorf("size %v with stride %v overflows", t.size, t.stride)
		}
		last += step
	}
	if last >= st.numel {
		return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reaches element %d of storage %s, which has %d", t.offset, t.size, t.stride, last, st.key, st.numel)
	}
	id := fmt.Sprintf("%s@%d%v%v", st.key, t.offset, t.size, t.stride)
	if contiguous(t.size, t.stride) {
		return &entry{info: info, n: int(n), data: raw[t.offset*es : (t.offset+n)*es : (t.offset+n)*es], file: z.path, storage: id}, nil
	}
	if n*es > z.budget {
		return nil, fmt.Errorf("non-contiguous view of %d elements needs more memory than the loader allows for a %d-byte archive", n, len(z.buf))
	}
	z.budget -= n * es
	out := make([]byte, n*es)
	idx := make([]int64, len(t.size))
	src := t.offset
	for i := int64(0); i < n; i++ {
		copy(out[i*es:(i+1)*es], raw[src*es:(src+1)*es])
		// Advance the multi-index in row-major order, moving src by the strides.
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			src += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			src -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	return &entry{info: info, n: int(n), data: out, file: z.path, storage: id}, nil
}

// contiguous reports whether strides describe a dense row-major layout; dimensions of
// size 1 may carry any stride, as in torch.
func contiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] == 1 {
			continue
		}
		if stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// Aliases returns the groups of tensor names in s that are the same view of the same
// stored bytes (tied weights saved by torch), each group sorted, groups sorted by first
// name. Formats that cannot express sharing (safetensors) have none.
func Aliases(s Store) [][]string {
	var groups map[string][]string
	collect := func(ts *tensorStore) {
		for _, n := range ts.names {
			if id := ts.entries[n].storage; id != "" {
				if groups == nil {
					groups = map[string][]string{}
				}
				key := ts.path + "\x00" + id
				groups[key] = append(groups[key], n)
			}
		}
	}
	switch x := s.(type) {
	case *tensorStore:
		collect(x)
	case *shardedStore:
		for _, sh := range x.shards {
			collect(sh)
		}
	}
	var out [][]string
	for _, g := range groups {
		if len(g) > 1 {
			sort.Strings(g)
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
