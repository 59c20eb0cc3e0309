package weights

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// fixturesDir is the reference fixture folder, overridable as the other reference tests are.
func fixturesDir() string {
	if d := os.Getenv("CLINFER_FIXTURES"); d != "" {
		return d
	}
	return filepath.Join("..", "testdata", "fixtures")
}

func fixtureDirs(t testing.TB) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(fixturesDir(), "*", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatalf("no fixtures under %s", fixturesDir())
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	return dirs
}

// checkStore reads every tensor through each accessor and checks that the decoded values
// agree bit for bit with the raw little-endian bytes.
func checkStore(t *testing.T, s Store) {
	t.Helper()
	names := s.Names()
	if len(names) == 0 {
		t.Fatal("store has no tensors")
	}
	if !sort.StringsAreSorted(names) {
		t.Error("Names() is not sorted")
	}
	for _, name := range names {
		info, ok := s.Info(name)
		if !ok || info.Name != name {
			t.Fatalf("Info(%q) = %v, %v", name, info, ok)
		}
		raw, rinfo, err := s.Raw(name)
		if err != nil {
			t.Fatalf("Raw(%q): %v", name, err)
		}
		n, _ := numel(rinfo.Shape)
		if len(raw) != n*rinfo.DType.Size() {
			t.Fatalf("%s: %d raw bytes for shape %v %s", name, len(raw), rinfo.Shape, rinfo.DType)
		}
		switch info.DType {
		case F32:
			v, shape, err := s.Float32(name)
			if err != nil {
				t.Fatalf("Float32(%q): %v", name, err)
			}
			if !equalShape(shape, info.Shape) || len(v) != n {
				t.Fatalf("%s: shape %v len %d, info %v", name, shape, len(v), info.Shape)
			}
			for i := range v {
				if math.Float32bits(v[i]) != binary.LittleEndian.Uint32(raw[4*i:]) {
					t.Fatalf("%s[%d] = %v does not match its bytes", name, i, v[i])
				}
			}
			if _, err := Expect(s, name, info.Shape...); err != nil {
				t.Fatalf("Expect(%q): %v", name, err)
			}
			if _, err := Expect(s, name, append(info.Shape, 1)...); !errors.Is(err, ErrShape) {
				t.Fatalf("Expect(%q) with a wrong shape: %v, want ErrShape", name, err)
			}
			if _, _, err := s.Int64(name); err == nil {
				t.Fatalf("Int64(%q) of an F32 tensor succeeded", name)
			}
		case I64:
			v, _, err := s.Int64(name)
			if err != nil {
				t.Fatalf("Int64(%q): %v", name, err)
			}
			for i := range v {
				if uint64(v[i]) != binary.LittleEndian.Uint64(raw[8*i:]) {
					t.Fatalf("%s[%d] = %v does not match its bytes", name, i, v[i])
				}
			}
		case U8:
			v, _, err := s.Int64(name)
			if err != nil {
				t.Fatalf("Int64(%q): %v", name, err)
			}
			for i := range v {
				if v[i] != int64(raw[i]) {
					t.Fatalf("%s[%d] = %v does not match its byte", name, i, v[i])
				}
			}
		default:
			t.Fatalf("%s: unexpected dtype %s in a fixture", name, info.DType)
		}
	}
	if _, _, err := s.Float32("no.such.tensor"); !errors.Is(err, ErrMissingTensor) {
		t.Errorf("missing tensor: %v, want ErrMissingTensor", err)
	}
	if _, err := Expect(s, "no.such.tensor", 1); !errors.Is(err, ErrMissingTensor) {
		t.Errorf("Expect missing tensor: %v, want ErrMissingTensor", err)
	}
}

func TestFixturesSafetensors(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		for _, file := range []string{"model.safetensors", "reference.safetensors"} {
			t.Run(filepath.Base(dir)+"/"+file, func(t *testing.T) {
				s, err := Open(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				checkStore(t, s)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.Float32(s.Names()[0]); !errors.Is(err, ErrClosed) {
					t.Errorf("read after Close: %v, want ErrClosed", err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
			})
		}
	}
}

func TestOpenDirPrefersSafetensors(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "bert_seq_cls")
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := Expect(s, "bert.embeddings.word_embeddings.weight", 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 32000 {
		t.Fatalf("len = %d", len(w))
	}
	if s2, err := Open(dir); err != nil || !equalShape([]int{len(s2.Names())}, []int{len(s.Names())}) {
		t.Errorf("Open(folder): %v", err)
	} else {
		s2.Close()
	}
	if _, err := OpenDir(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty dir: %v, want ErrNotExist", err)
	}
}

func TestF32ViewIsZeroCopy(t *testing.T) {
	s, err := Open(filepath.Join(fixturesDir(), "bert_seq_cls", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := "bert.embeddings.word_embeddings.weight"
	raw, _, _ := s.Raw(name)
	v, _, _ := s.Float32(name)
	if len(raw) == 0 || len(v) == 0 {
		t.Fatal("empty tensor")
	}
	if nativeLittle && uintptrOf(raw) != uintptrOfF32(v) {
		t.Error("F32 view of an aligned tensor is a copy")
	}
}
