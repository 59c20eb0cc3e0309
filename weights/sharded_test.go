package weights

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// splitFixture writes the tensors of a fixture's model.safetensors as shards of the given
// format plus an index, returning the folder.
func splitFixture(t *testing.T, fixture string, shards int) (dir string, names []string) {
	t.Helper()
	s, err := Open(filepath.Join(fixturesDir(), fixture, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir = t.TempDir()
	names = s.Names()
	parts := make([][]NamedTensor, shards)
	weightMap := map[string]string{}
	for i, n := range names {
		raw, info, _ := s.Raw(n)
		k := i % shards
		parts[k] = append(parts[k], NamedTensor{Name: n, DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), raw...)})
		weightMap[n] = shardName(k, shards)
	}
	for k, p := range parts {
		if err := WriteSafetensors(filepath.Join(dir, shardName(k, shards)), p, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	writeIndex(t, filepath.Join(dir, "model.safetensors.index.json"), weightMap)
	return dir, names
}

func shardName(k, n int) string {
	return "model-0000" + string(rune('1'+k)) + "-of-0000" + string(rune('0'+n)) + ".safetensors"
}

func writeIndex(t *testing.T, path string, weightMap map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"metadata":{"total_size":0},"weight_map":{`)
	first := true
	for k, v := range weightMap {
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":"` + v + `"`)
	}
	b.WriteString("}}")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSharded(t *testing.T) {
	dir, names := splitFixture(t, "qwen25_gqa_causal_lm", 3)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !reflect.DeepEqual(s.Names(), names) {
		t.Fatalf("names differ")
	}
	ref, _ := Open(filepath.Join(fixturesDir(), "qwen25_gqa_causal_lm", "model.safetensors"))
	defer ref.Close()
	for _, n := range names {
		a, _, _ := ref.Float32(n)
		b, shape, err := s.Float32(n)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%s differs: %v", n, err)
		}
		if _, err := Expect(s, n, shape...); err != nil {
			t.Fatal(err)
		}
	}
	checkStore(t, s)
}

func TestShardedPyTorch(t *testing.T) {
	// A one-shard pytorch_model.bin.index.json pointing at the fixture checkpoint.
	dir := t.TempDir()
	src := filepath.Join(fixturesDir(), "qwen15_causal_lm", "pytorch_model.bin")
	b, _ := os.ReadFile(src)
	os.WriteFile(filepath.Join(dir, "pytorch_model-00001-of-00001.bin"), b, 0o644)
	pt, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer pt.Close()
	wm := map[string]string{}
	for _, n := range pt.Names() {
		wm[n] = "pytorch_model-00001-of-00001.bin"
	}
	writeIndex(t, filepath.Join(dir, "pytorch_model.bin.index.json"), wm)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !reflect.DeepEqual(s.Names(), pt.Names()) {
		t.Fatal("names differ")
	}
	if got := Aliases(s); len(got) != 1 || !reflect.DeepEqual(got[0], []string{"lm_head.weight", "model.embed_tokens.weight"}) {
		t.Errorf("Aliases = %v", got)
	}
}

func TestShardedHostile(t *testing.T) {
	dir, names := splitFixture(t, "bert_seq_cls", 2)
	index := filepath.Join(dir, "model.safetensors.index.json")
	cases := map[string]map[string]string{
		"traversal": {names[0]: "../../etc/passwd"},
		"absolute":  {names[0]: "/etc/passwd"},
		"backslash": {names[0]: `..\x.safetensors`},
		"missing":   {"no.such.tensor": shardName(0, 2)},
		"wrong":     {names[0]: shardName(1, 2), names[1]: shardName(0, 2)},
		"nofile":    {names[0]: "model-00009-of-00009.safetensors"},
	}
	for name, wm := range cases {
		writeIndex(t, index, wm)
		s, err := Open(index)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if !strings.Contains(err.Error(), "safetensors") {
			t.Errorf("%s: %v", name, err)
		}
		if name == "missing" && !errors.Is(err, ErrMissingTensor) {
			t.Errorf("missing: %v, want ErrMissingTensor", err)
		}
	}
	os.WriteFile(index, []byte(`{"weight_map": 3}`), 0o644)
	if _, err := Open(index); !errors.Is(err, ErrFormat) {
		t.Errorf("bad JSON: %v", err)
	}
}
