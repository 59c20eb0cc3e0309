package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// pk writes pickle opcodes by hand, the way torch.save (protocol 2) lays them out, so that
// tests can build both well-formed and hostile checkpoints without Python.
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte) *pk { p.Write(b); return p }
func (p *pk) raw(s string) *pk { p.WriteString(s); return p }
func (p *pk) mark() *pk        { return p.op('(') }
func (p *pk) str(s string) *pk {
	p.op('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}
func (p *pk) int(v int) *pk {
	if v != int(int32(v)) {
		p.op(0x8a, 8)
		binary.Write(&p.Buffer, binary.LittleEndian, int64(v))
		return p
	}
	p.op('J')
	binary.Write(&p.Buffer, binary.LittleEndian, int32(v))
	return p
}
func (p *pk) global(module, name string) *pk {
	p.op('c')
	p.WriteString(module + "\n" + name + "\n")
	return p
}
func (p *pk) ints(v ...int) *pk {
	p.mark()
	for _, x := range v {
		p.int(x)
	}
	return p.op('t')
}

// tensor emits torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
func (p *pk) tensor(storageClass, key string, numel, offset int, size, stride []int) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.mark()
	p.mark().str("storage").global("torch", storageClass).str(key).str("cpu").int(numel).op('t', 'Q')
	p.int(offset).ints(size...).ints(stride...).op(0x89)
	p.global("collections", "OrderedDict").op(')', 'R')
	return p.op('t', 'R')
}

func (p *pk) stop() []byte { p.op('.'); return append([]byte(nil), p.Bytes()...) }

func newPickle() *pk { p := &pk{}; p.op(0x80, 2); return p }

// zipCheckpoint lays out a torch-style archive (stored, not compressed).
func zipCheckpoint(t testing.TB, prefix string, pkl []byte, storages map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add(prefix+"/data.pkl", pkl)
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(prefix+"/data/"+k, storages[k])
	}
	add(prefix+"/version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func f32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func seq(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i) + 0.5
	}
	return v
}
