package qwen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/internal/reftest"
	"github.com/clinfer/clinfer/weights"
)

const refTol = 1e-4 // atol = rtol for Qwen2 (fixtures README)

func fixturesDir() string { return reftest.FixturesDir() }

// qwenFixtures lists the fixture folders whose config.json has model_type qwen2.
func qwenFixtures(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, fx := range reftest.Fixtures(t, "qwen2") {
		out = append(out, fx.Dir)
	}
	return out
}

// loadFrom builds a model from dir's config and one weight file of it.
func loadFrom(dir, file string, dt DType) (*Model, error) {
	wc, err := weights.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	gen, err := readGenerationConfig(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil, err
	}
	st, err := weights.Open(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return New(wc, gen, st, Options{DType: dt})
}

type refCase struct {
	name      string
	ids       [][]int
	mask      [][]int
	positions [][]int
	generated [][]int // nil for forward-only cases
	b, t      int
}

type refSet struct {
	st    weights.Store
	cases []refCase
}

func loadRefs(t *testing.T, dir string) *refSet {
	t.Helper()
	ref := reftest.Load(t, dir)
	st := ref.Store
	rs := &refSet{st: st}
	for _, c := range ref.Cases {
		rc := refCase{name: c.Name}
		rc.ids, rc.b, rc.t = ints2(t, st, c.Name+".input_ids")
		if _, ok := st.Info(c.Name + ".attention_mask"); ok {
			rc.mask, _, _ = ints2(t, st, c.Name+".attention_mask")
		}
		if _, ok := st.Info(c.Name + ".position_ids"); ok {
			rc.positions, _, _ = ints2(t, st, c.Name+".position_ids")
		}
		if _, ok := st.Info(c.Name + ".generated_ids"); ok {
			rc.generated, _, _ = ints2(t, st, c.Name+".generated_ids")
		}
		rs.cases = append(rs.cases, rc)
	}
	return rs
}

func ints2(t *testing.T, st weights.Store, name string) ([][]int, int, int) {
	t.Helper()
	v, shape := reftest.Ints(t, st, name)
	if len(shape) != 2 {
		t.Fatalf("%s: shape %v, want 2-D", name, shape)
	}
	out := make([][]int, shape[0])
	for i := range out {
		out[i] = v[i*shape[1] : (i+1)*shape[1] : (i+1)*shape[1]]
	}
	return out, shape[0], shape[1]
}

// prompts strips the left padding of each row.
func (c *refCase) prompts() [][]int {
	out := make([][]int, c.b)
	for i, row := range c.ids {
		for j, id := range row {
			if c.mask == nil || c.mask[i][j] == 1 {
				out[i] = append(out[i], id)
			}
		}
	}
	return out
}

// compareRows checks got [B, T, W] against want at positions with mask == 1 and returns the
// worst |got-want| / (atol + rtol·|want|).
func compareRows(t *testing.T, what string, got, want []float32, c *refCase) float64 {
	t.Helper()
	var mask []int
	if c.mask != nil {
		mask = make([]int, 0, c.b*c.t)
		for _, row := range c.mask {
			mask = append(mask, row...)
		}
	}
	return reftest.Close(t, what, got, want, refTol, refTol, mask)
}

func TestReference(t *testing.T) {
	for _, dir := range qwenFixtures(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			refs := loadRefs(t, dir)
			models := map[string]*Model{}
			loadErr := map[string]error{}
			for _, f := range []string{"model.safetensors", "pytorch_model.bin"} {
				models[f], loadErr[f] = loadFrom(dir, f, F32)
			}
			for _, rc := range refs.cases {
				t.Run(rc.name, func(t *testing.T) {
					for _, f := range []string{"model.safetensors", "pytorch_model.bin"} {
						t.Run(f, func(t *testing.T) {
							if err := loadErr[f]; err != nil {
								t.Fatalf("load %s: %v", f, err)
							}
							checkCase(t, models[f], refs, &rc)
						})
					}
				})
			}
		})
	}
}

func checkCase(t *testing.T, m *Model, refs *refSet, rc *refCase) {
	c := &m.Config
	out, err := m.Forward(context.Background(), ForwardInput{IDs: rc.ids, Mask: rc.mask, Positions: rc.positions, Hidden: true})
	if err != nil {
		t.Fatal(err)
	}
	want := func(name string) []float32 {
		v, _, err := refs.st.Float32(rc.name + "." + name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	worst := compareRows(t, "logits", out.Logits, want("logits"), rc)
	if len(out.Hidden) != c.NumHiddenLayers+1 {
		t.Fatalf("%d hidden states, want %d", len(out.Hidden), c.NumHiddenLayers+1)
	}
	for i, h := range out.Hidden {
		compareRows(t, fmt.Sprintf("hidden_states.%d", i), h, want(fmt.Sprintf("hidden_states.%d", i)), rc)
	}
	compareRows(t, "last_hidden_state", out.Hidden[len(out.Hidden)-1], want("last_hidden_state"), rc)

	if rc.generated == nil {
		t.Logf("worst |got-want|/(atol+rtol|want|): logits %.3g", worst)
		return
	}
	newTokens := len(rc.generated[0]) - rc.t
	stepLogits := make([]float32, rc.b*newTokens*c.VocabSize)
	opt := GenerateOptions{MaxNewTokens: newTokens}
	opt.logitsHook = func(seq, step int, logits []float32) {
		copy(stepLogits[(seq*newTokens+step)*c.VocabSize:], logits)
	}
	res, err := m.Generate(context.Background(), rc.prompts(), opt)
	if err != nil {
		t.Fatal(err)
	}
	for b, r := range res {
		wantToks := rc.generated[b][rc.t:]
		if !slices.Equal(r.Tokens, wantToks) {
			t.Errorf("sequence %d: generated %v, want %v (reason %v)", b, r.Tokens, wantToks, r.Reason)
		}
	}
	full := &refCase{b: rc.b, t: newTokens}
	worstStep := compareRows(t, "next_token_logits", stepLogits, want("next_token_logits"), full)
	t.Logf("worst |got-want|/(atol+rtol|want|): logits %.3g, next_token_logits %.3g", worst, worstStep)
}

// TestQuantizedDrift measures BF16 and int8 weights against the float32 references: the
// largest logit difference and whether greedy tokens agree. Only finiteness is asserted; the
// figures are logged for the issue report.
func TestQuantizedDrift(t *testing.T) {
	for _, dir := range qwenFixtures(t) {
		refs := loadRefs(t, dir)
		for _, dt := range []DType{BF16, Int8} {
			m, err := loadFrom(dir, "model.safetensors", dt)
			if err != nil {
				t.Fatal(err)
			}
			maxDiff := 0.0
			agree, total := 0, 0
			for _, rc := range refs.cases {
				out, err := m.Forward(context.Background(), ForwardInput{IDs: rc.ids, Mask: rc.mask, Positions: rc.positions})
				if err != nil {
					t.Fatal(err)
				}
				want, _, err := refs.st.Float32(rc.name + ".logits")
				if err != nil {
					t.Fatal(err)
				}
				v := m.Config.VocabSize
				for b := 0; b < rc.b; b++ {
					for p := 0; p < rc.t; p++ {
						if rc.mask != nil && rc.mask[b][p] == 0 {
							continue
						}
						for i := 0; i < v; i++ {
							g := float64(out.Logits[(b*rc.t+p)*v+i])
							if math.IsNaN(g) || math.IsInf(g, 0) {
								t.Fatalf("%s %v %s: non-finite logit", filepath.Base(dir), dt, rc.name)
							}
							maxDiff = max(maxDiff, math.Abs(g-float64(want[(b*rc.t+p)*v+i])))
						}
					}
				}
				if rc.generated == nil {
					continue
				}
				res, err := m.Generate(context.Background(), rc.prompts(), GenerateOptions{MaxNewTokens: len(rc.generated[0]) - rc.t})
				if err != nil {
					t.Fatal(err)
				}
				for b, r := range res {
					total++
					if slices.Equal(r.Tokens, rc.generated[b][rc.t:]) {
						agree++
					}
				}
			}
			t.Logf("%s %v: max |logit - float32 reference| = %.4g; greedy sequences identical: %d/%d",
				filepath.Base(dir), dt, maxDiff, agree, total)
		}
	}
}

func TestLoadDir(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "qwen15_causal_lm")
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if !slices.Equal(c.EOSTokenIDs, []int{999}) || c.PadTokenID != 999 || c.BOSTokenID != 998 || c.Window != 128 || !c.TieWordEmbeddings || c.HeadDim != 16 {
		t.Errorf("config: eos %v pad %d bos %d window %d tied %v head_dim %d", c.EOSTokenIDs, c.PadTokenID, c.BOSTokenID, c.Window, c.TieWordEmbeddings, c.HeadDim)
	}
}

// hidingStore drops one tensor from a store.
type hidingStore struct {
	weights.Store
	hide string
}

func (h hidingStore) Info(name string) (weights.TensorInfo, bool) {
	if name == h.hide {
		return weights.TensorInfo{}, false
	}
	return h.Store.Info(name)
}

func TestLoadErrorsNameTheTensor(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "qwen25_gqa_causal_lm")
	wc, err := weights.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := weights.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const name = "model.layers.1.self_attn.k_proj.bias"
	_, err = New(wc, nil, hidingStore{st, name}, Options{})
	if !errors.Is(err, weights.ErrMissingTensor) || !strings.Contains(err.Error(), name) {
		t.Errorf("missing %s: err = %v", name, err)
	}
	bad := *wc
	q := *wc.Qwen2
	q.IntermediateSize++
	bad.Qwen2 = &q
	_, err = New(&bad, nil, st, Options{})
	if !errors.Is(err, weights.ErrShape) || !strings.Contains(err.Error(), "gate_proj") {
		t.Errorf("wrong intermediate_size: err = %v", err)
	}
}
