// Package reftest holds the helpers the reference tests of the model and tokenizer packages
// share: finding the fixture folders (with their environment overrides), reading a fixture's
// reference.json and reference.safetensors, and comparing outputs within atol/rtol.
package reftest

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/weights"
)

// Dir returns the environment variable env when set, otherwise def (a path relative to the
// test's package, e.g. "../testdata/fixtures").
func Dir(env, def string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	return def
}

// FixturesDir is the model fixtures folder: CLINFER_FIXTURES or ../testdata/fixtures.
func FixturesDir() string {
	return Dir("CLINFER_FIXTURES", filepath.Join("..", "testdata", "fixtures"))
}

// Fixture is one model folder of the fixtures.
type Fixture struct {
	Name   string // the folder's base name, used as the subtest name
	Dir    string
	Config *weights.Config
}

// Fixtures lists the folders under FixturesDir whose config.json has one of modelTypes, in
// directory order; folders weights cannot parse are skipped (another architecture's). It
// fails the test when none is found, so a wrong path cannot pass silently.
func Fixtures(t testing.TB, modelTypes ...string) []Fixture {
	t.Helper()
	root := FixturesDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	var out []Fixture
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		cfg, err := weights.LoadConfig(dir)
		if err != nil || !slices.Contains(modelTypes, cfg.ModelType) {
			continue
		}
		out = append(out, Fixture{Name: e.Name(), Dir: dir, Config: cfg})
	}
	if len(out) == 0 {
		t.Fatalf("no %v fixtures under %s", modelTypes, root)
	}
	return out
}

// Case is one case of reference.json: the names of its input and output tensors in
// reference.safetensors ("<case>.<name>").
type Case struct {
	Name    string                     `json:"name"`
	Inputs  map[string]json.RawMessage `json:"inputs"`
	Outputs map[string]json.RawMessage `json:"outputs"`
}

// Reference is a fixture's reference.json with its reference.safetensors opened.
type Reference struct {
	Atol, Rtol float64
	Cases      []Case
	Store      weights.Store // closed when the test that loaded it ends
}

// DefaultTol is the atol and rtol used when reference.json states none.
const DefaultTol = 3e-5

// Load reads dir's reference.json (failing on a file that lists no case) and opens its
// reference.safetensors.
func Load(t testing.TB, dir string) *Reference {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tolerance struct {
			Atol float64 `json:"atol"`
			Rtol float64 `json:"rtol"`
		} `json:"tolerance"`
		Cases []Case `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("reference.json: %v", err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("reference.json lists no cases")
	}
	r := &Reference{Atol: f.Tolerance.Atol, Rtol: f.Tolerance.Rtol, Cases: f.Cases}
	if r.Atol == 0 {
		r.Atol, r.Rtol = DefaultTol, DefaultTol
	}
	st, err := weights.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.Store = st
	return r
}

// Ints reads an integer tensor as ints, with its shape.
func Ints(t testing.TB, s weights.Store, name string) ([]int, []int) {
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

// Floats reads a float tensor as float32, with its shape.
func Floats(t testing.TB, s weights.Store, name string) ([]float32, []int) {
	t.Helper()
	v, shape, err := s.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, shape
}

// Close checks |got-want| <= atol + rtol·|want| everywhere but at masked positions, and
// returns the worst ratio |got-want| / (atol + rtol·|want|) (+Inf for a NaN). mask, when
// not nil, has one entry per position (e.g. an attention mask, [B*T]); the values are
// split evenly over the positions (len(want)/len(mask) values each) and those of a
// position whose mask is 0 are skipped. On failure it reports how many values are out, the
// worst flat index, got and want.
func Close(t testing.TB, name string, got, want []float32, atol, rtol float64, mask []int) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return math.Inf(1)
	}
	width := 1
	if mask != nil {
		if len(mask) == 0 || len(want)%len(mask) != 0 {
			t.Errorf("%s: %d values do not split over a mask of %d positions", name, len(want), len(mask))
			return math.Inf(1)
		}
		width = len(want) / len(mask)
	}
	worst, at, bad := 0.0, -1, 0
	for i := range want {
		if mask != nil && mask[i/width] == 0 {
			continue
		}
		d := math.Abs(float64(got[i]) - float64(want[i]))
		r := d / (atol + rtol*math.Abs(float64(want[i])))
		if math.IsNaN(r) {
			r = math.Inf(1)
		}
		if r > 1 {
			bad++
		}
		if r > worst || at < 0 && r == worst {
			worst, at = r, i
		}
	}
	if worst > 1 {
		t.Errorf("%s: %d value(s) exceed atol+rtol*|want| (atol %g, rtol %g); worst by %.3gx at flat index %d: got %g, want %g",
			name, bad, atol, rtol, worst, at, got[at], want[at])
	}
	return worst
}

// Tokens is a case's token inputs, flat [Batch*Length].
type Tokens struct {
	Batch, Length      int
	IDs, Mask, TypeIDs []int // Mask and TypeIDs nil when the case has none
}

// ReadTokens reads a case's input_ids ([B, T]) and, when the case lists them,
// attention_mask and token_type_ids; any other input fails the test, so a fixture with
// inputs a test does not feed cannot pass unnoticed.
func ReadTokens(t testing.TB, s weights.Store, c Case) Tokens {
	t.Helper()
	ids, shape := Ints(t, s, c.Name+".input_ids")
	if len(shape) != 2 {
		t.Fatalf("input_ids shape %v", shape)
	}
	in := Tokens{Batch: shape[0], Length: shape[1], IDs: ids}
	for name := range c.Inputs {
		switch strings.TrimPrefix(name, c.Name+".") {
		case "input_ids":
		case "attention_mask":
			in.Mask, _ = Ints(t, s, name)
		case "token_type_ids":
			in.TypeIDs, _ = Ints(t, s, name)
		default:
			t.Fatalf("case input %s not understood by this test", name)
		}
	}
	return in
}

// OutputNames lists a case's output names without the "<case>." prefix, sorted.
func (c Case) OutputNames() []string {
	names := make([]string, 0, len(c.Outputs))
	for n := range c.Outputs {
		names = append(names, strings.TrimPrefix(n, c.Name+"."))
	}
	sort.Strings(names)
	return names
}

// WeightFiles are the checkpoints every model fixture holds, loaded and checked separately.
var WeightFiles = []string{"model.safetensors", "pytorch_model.bin"}

// Run runs every case of every fixture of modelTypes against a model loaded from each of
// WeightFiles, as subtests <fixture>/<case>/<weight file>. load builds a model from the
// fixture's config and one weight file (the store is closed after it returns); check
// compares one case.
func Run[M any](t *testing.T, modelTypes []string, load func(*weights.Config, weights.Store) (M, error),
	check func(t *testing.T, m M, ref *Reference, c Case)) {
	for _, fx := range Fixtures(t, modelTypes...) {
		t.Run(fx.Name, func(t *testing.T) {
			ref := Load(t, fx.Dir)
			models := map[string]M{}
			for _, file := range WeightFiles {
				s, err := weights.Open(filepath.Join(fx.Dir, file))
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				m, err := load(fx.Config, s)
				s.Close()
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				models[file] = m
			}
			for _, c := range ref.Cases {
				t.Run(c.Name, func(t *testing.T) {
					for _, file := range WeightFiles {
						t.Run(file, func(t *testing.T) { check(t, models[file], ref, c) })
					}
				})
			}
		})
	}
}
