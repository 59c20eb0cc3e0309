package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/weights"
)

func fixturesDir() string {
	if d := os.Getenv("CLINFER_FIXTURES"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "testdata", "fixtures")
}

// sameTensors fails unless a and b hold the same names with identical dtypes, shapes and bytes.
func sameTensors(t *testing.T, a, b weights.Store) {
	t.Helper()
	if !reflect.DeepEqual(a.Names(), b.Names()) {
		t.Fatalf("names differ:\n%v\n%v", a.Names(), b.Names())
	}
	for _, n := range a.Names() {
		ra, ia, err := a.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		rb, ib, err := b.Raw(n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ia, ib) || !bytes.Equal(ra, rb) {
			t.Errorf("%s: %v vs %v or bytes differ", n, ia, ib)
		}
	}
}

func TestReference(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(fixturesDir(), "*", "pytorch_model.bin"))
	if len(dirs) == 0 {
		t.Fatalf("no fixtures in %s", fixturesDir())
	}
	for _, bin := range dirs {
		dir := filepath.Dir(bin)
		for _, in := range []string{"pytorch_model.bin", "model.safetensors"} {
			t.Run(filepath.Base(dir)+"/"+in, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "model.safetensors")
				res, err := Convert(filepath.Join(dir, in), out)
				if err != nil {
					t.Fatal(err)
				}
				got, err := weights.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer got.Close()
				want, err := weights.Open(filepath.Join(dir, "model.safetensors"))
				if err != nil {
					t.Fatal(err)
				}
				defer want.Close()
				sameTensors(t, got, want)
				if filepath.Base(dir) == "qwen15_causal_lm" && in == "pytorch_model.bin" && !reflect.DeepEqual(res.Dropped, []string{"lm_head.weight"}) {
					t.Errorf("dropped %v, want [lm_head.weight]", res.Dropped)
				}
			})
		}
	}
}

// With tie_word_embeddings false the shared tensor is written under both names.
func TestUntiedConfigKeepsBoth(t *testing.T) {
	src := filepath.Join(fixturesDir(), "qwen15_causal_lm")
	dir := t.TempDir()
	bin, err := os.ReadFile(filepath.Join(src, "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), bin, 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"qwen2","tie_word_embeddings":false}`), 0o644)
	out := filepath.Join(dir, "model.safetensors")
	res, err := Convert(dir, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dropped) != 0 {
		t.Fatalf("dropped %v", res.Dropped)
	}
	s, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _, _ := s.Raw("lm_head.weight")
	b, _, _ := s.Raw("model.embed_tokens.weight")
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("lm_head.weight missing or different")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "pytorch_model.bin")
	os.WriteFile(bad, []byte("PK\x03\x04 definitely not a checkpoint"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-in", bad, "-out", filepath.Join(dir, "out.safetensors")}, &stdout, &stderr)
	if code == 0 {
		t.Fatal("bad input converted")
	}
	msg := stderr.String()
	if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "convert: ") || !strings.Contains(msg, bad) {
		t.Errorf("error output %q: want one line naming the file", msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.safetensors")); err == nil {
		t.Error("output written for a bad input")
	}
	if code := run([]string{"-in", bad}, &stdout, &stderr); code != 2 {
		t.Errorf("missing -out: exit %d", code)
	}
	stdout.Reset()
	in := filepath.Join(fixturesDir(), "bert_seq_cls", "pytorch_model.bin")
	if code := run([]string{"-in", in, "-out", filepath.Join(dir, "ok.safetensors")}, &stdout, &stderr); code != 0 {
		t.Errorf("good input: exit %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "wrote ") {
		t.Errorf("stdout %q", stdout.String())
	}
}

// A sharded set converts to the same single file.
func TestShardedInput(t *testing.T) {
	src, err := weights.Open(filepath.Join(fixturesDir(), "xlnet_seq_cls", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dir := t.TempDir()
	parts := map[string][]weights.NamedTensor{}
	index := `{"metadata":{},"weight_map":{`
	for i, n := range src.Names() {
		raw, info, _ := src.Raw(n)
		shard := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i%2]
		parts[shard] = append(parts[shard], weights.NamedTensor{Name: n, DType: info.DType, Shape: info.Shape, Data: raw})
		if i > 0 {
			index += ","
		}
		index += `"` + n + `":"` + shard + `"`
	}
	for shard, ts := range parts {
		if err := weights.WriteSafetensors(filepath.Join(dir, shard), ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(index+"}}"), 0o644)
	out := filepath.Join(t.TempDir(), "model.safetensors")
	if _, err := Convert(filepath.Join(dir, "model.safetensors.index.json"), out); err != nil {
		t.Fatal(err)
	}
	got, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	sameTensors(t, got, src)
}
