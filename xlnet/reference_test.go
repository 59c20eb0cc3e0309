package xlnet

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/weights"
)

func fixturesDir() string {
	if d := os.Getenv("CLINFER_FIXTURES"); d != "" {
		return d
	}
	return filepath.Join("..", "testdata", "fixtures")
}

type refCase struct {
	Name    string                     `json:"name"`
	Inputs  map[string]json.RawMessage `json:"inputs"`
	Outputs map[string]json.RawMessage `json:"outputs"`
}

type refFile struct {
	Tolerance struct {
		Atol float64 `json:"atol"`
		Rtol float64 `json:"rtol"`
	} `json:"tolerance"`
	Cases []refCase `json:"cases"`
}

var weightFiles = []string{"model.safetensors", "pytorch_model.bin"}

// TestReference runs every XLNet fixture (config model_type xlnet) on every case of its
// reference.safetensors, with the weights loaded from model.safetensors and from
// pytorch_model.bin, and compares every output the case has.
func TestReference(t *testing.T) {
	root := fixturesDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	found := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		cfg, err := weights.LoadConfig(dir)
		if err != nil || cfg.ModelType != "xlnet" {
			continue
		}
		found++
		t.Run(e.Name(), func(t *testing.T) { runFixture(t, dir, cfg) })
	}
	if found == 0 {
		t.Fatalf("no xlnet fixtures under %s", root)
	}
}

func runFixture(t *testing.T, dir string, cfg *weights.Config) {
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref refFile
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("reference.json: %v", err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("reference.json lists no cases")
	}
	atol, rtol := ref.Tolerance.Atol, ref.Tolerance.Rtol
	if atol == 0 {
		atol, rtol = 3e-5, 3e-5
	}
	rs, err := weights.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()

	models := map[string]*Model{}
	for _, file := range weightFiles {
		s, err := weights.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		m, err := LoadFromStore(cfg, s)
		s.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		models[file] = m
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			in := readBatch(t, rs, c)
			for _, file := range weightFiles {
				t.Run(file, func(t *testing.T) { checkCase(t, models[file], rs, c, in, atol, rtol) })
			}
		})
	}
}

func readInts(t *testing.T, s weights.Store, name string) ([]int, []int) {
	t.Helper()
	v, shape, err := s.Int64(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, shape
}

func readBatch(t *testing.T, rs weights.Store, c refCase) Batch {
	ids, shape := readInts(t, rs, c.Name+".input_ids")
	if len(shape) != 2 {
		t.Fatalf("input_ids shape %v", shape)
	}
	b := Batch{Batch: shape[0], Length: shape[1], IDs: ids}
	for name := range c.Inputs {
		switch strings.TrimPrefix(name, c.Name+".") {
		case "input_ids":
		case "attention_mask":
			b.Mask, _ = readInts(t, rs, name)
		case "token_type_ids":
			b.TypeIDs, _ = readInts(t, rs, name)
		default:
			t.Fatalf("case input %s not understood by this test", name)
		}
	}
	return b
}

// checkCase compares every output of a case at every position, padding rows included:
// Hugging Face's padding rows are deterministic (a padded query attends to the real tokens
// and itself), and matching them checks the non_tgt_mask diagonal.
func checkCase(t *testing.T, m *Model, rs weights.Store, c refCase, in Batch, atol, rtol float64) {
	res, err := m.Forward(context.Background(), in, WithHiddenStates())
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(c.Outputs))
	for n := range c.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	checked := 0
	for _, full := range names {
		name := strings.TrimPrefix(full, c.Name+".")
		want, shape, err := rs.Float32(full)
		if err != nil {
			t.Fatal(err)
		}
		var got []float32
		switch {
		case strings.HasPrefix(name, "hidden_states."):
			var i int
			if _, err := fmt.Sscanf(strings.TrimPrefix(name, "hidden_states."), "%d", &i); err != nil || i < 0 || i >= len(res.HiddenStates) {
				t.Fatalf("%s: model has %d hidden states", name, len(res.HiddenStates))
			}
			got = res.HiddenStates[i]
		case name == "last_hidden_state":
			got = res.LastHiddenState
		case name == "logits":
			got = res.Logits
		case name == "sequence_summary":
			got = res.SequenceSummary
		default:
			t.Fatalf("output %s not understood by this test", full)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d values, want %d (shape %v)", name, len(got), len(want), shape)
		}
		worst, at := 0.0, -1
		for i := range want {
			d := math.Abs(float64(got[i]) - float64(want[i]))
			r := d / (atol + rtol*math.Abs(float64(want[i])))
			if r > worst || math.IsNaN(d) {
				worst, at = r, i
				if math.IsNaN(d) {
					worst = math.Inf(1)
				}
			}
		}
		if worst > 1 {
			t.Errorf("%s: |got-want| exceeds atol+rtol*|want| by %.3gx at flat index %d: got %g, want %g",
				name, worst, at, got[at], want[at])
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("case has no outputs")
	}
}
