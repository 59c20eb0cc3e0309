package weights

import (
	"archive/zip"
	"bytes"
	"io"
	"path/filepath"
	"testing"
)

// readAllTensors touches every tensor through every accessor; used by the fuzz targets to
// make sure whatever the parser accepts is safe to read.
func readAllTensors(t *testing.T, s Store) {
	for _, n := range s.Names() {
		info, ok := s.Info(n)
		if !ok {
			t.Fatalf("Names lists %q but Info does not know it", n)
		}
		raw, _, err := s.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		count, err := numel(info.Shape)
		if err != nil || count*info.DType.Size() != len(raw) {
			t.Fatalf("%s: %d bytes for %s%v", n, len(raw), info.DType, info.Shape)
		}
		if info.DType.IsFloat() {
			if v, _, err := s.Float32(n); err != nil || len(v) != count {
				t.Fatalf("%s: Float32: %d values, %v", n, len(v), err)
			}
		} else if _, _, err := s.Int64(n); err != nil && info.DType != U64 {
			t.Fatalf("%s: Int64: %v", n, err)
		}
	}
}

func FuzzSafetensors(f *testing.F) {
	// Seeds stay small (the fuzzer's minimiser crawls on large inputs): each fixture
	// contributes its small tensors (norm weights, biases) re-encoded with its metadata.
	matches, _ := filepath.Glob(filepath.Join(fixturesDir(), "*", "*.safetensors"))
	for _, m := range matches {
		s, err := Open(m)
		if err != nil {
			continue
		}
		var ts []NamedTensor
		for _, n := range s.Names() {
			raw, info, _ := s.Raw(n)
			if len(raw) <= 64 && len(ts) < 6 {
				ts = append(ts, NamedTensor{Name: n, DType: info.DType, Shape: info.Shape, Data: raw})
			}
		}
		if b, err := EncodeSafetensors(ts, s.(*tensorStore).metadata); err == nil && len(ts) > 0 {
			f.Add(b)
		}
		s.Close()
	}
	small, _ := EncodeSafetensors([]NamedTensor{
		{Name: "a", DType: F16, Shape: []int{2}, Data: []byte{0, 0x3c, 0, 0xc0}},
		{Name: "b", DType: I64, Shape: []int{1}, Data: make([]byte, 8)},
		{Name: "c", DType: F32, Shape: []int{0}},
	}, map[string]string{"format": "pt"})
	f.Add(small)
	f.Add(stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSafetensors("fuzz", data)
		if err != nil {
			return
		}
		readAllTensors(t, s)
		// Whatever is accepted must survive a write and a re-read unchanged.
		var ts []NamedTensor
		for _, n := range s.Names() {
			raw, info, _ := s.Raw(n)
			ts = append(ts, NamedTensor{Name: n, DType: info.DType, Shape: info.Shape, Data: raw})
		}
		enc, err := EncodeSafetensors(ts, s.metadata)
		if err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		r, err := parseSafetensors("re", enc)
		if err != nil {
			t.Fatalf("re-reading a written file: %v", err)
		}
		for _, n := range s.Names() {
			a, _, _ := s.Raw(n)
			b, _, err := r.Raw(n)
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("%q changed in a round trip", n)
			}
		}
	})
}

// fuzzStorages stand in for data/<key> members so that the pickle fuzzer reaches the
// tensor checks without building a zip archive for every input.
func fuzzArchive() *zipArchive {
	z := &zipArchive{path: "fuzz", budget: 1 << 20, cache: map[string][]byte{}, files: map[string]*zip.File{}}
	for i, key := range []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"} {
		z.cache["archive/data/"+key] = f32Bytes(seq(16 * (i + 1))...)
	}
	return z
}

func FuzzPickle(f *testing.F) {
	matches, _ := filepath.Glob(filepath.Join(fixturesDir(), "*", "pytorch_model.bin"))
	for _, m := range matches {
		zr, err := zip.OpenReader(m)
		if err != nil {
			continue
		}
		for _, zf := range zr.File {
			if filepath.Base(zf.Name) == "data.pkl" && zf.UncompressedSize64 <= 4600 {
				rc, _ := zf.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
		zr.Close()
	}
	p := newPickle()
	p.op('}').str("model_state_dict").op('}').mark()
	p.str("module.ln.gamma").tensor("FloatStorage", "0", 16, 0, []int{4}, []int{1}).op('q', 1)
	p.str("module.w").tensor("FloatStorage", "1", 32, 2, []int{3, 5}, []int{1, 3})
	p.str("module.h").tensor("HalfStorage", "2", 48, 0, []int{2, 2}, []int{2, 1})
	p.str("module.t").op('h', 1)
	p.op('u', 's')
	f.Add(p.stop())
	f.Add(newPickle().global("os", "system").str("true").op(0x85, 'R').stop())
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := unpickle(data)
		if err != nil {
			return
		}
		tensors, err := stateDict(obj, 0)
		if err != nil {
			return
		}
		names, err := mapLegacyNames(tensors)
		if err != nil {
			return
		}
		z := fuzzArchive()
		s := newTensorStore("fuzz")
		for i, nt := range tensors {
			e, err := z.tensorEntry("archive/", names[i], nt.t)
			if err != nil {
				return
			}
			s.add(e)
		}
		s.finish()
		readAllTensors(t, s)
	})
}
