package xlnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/internal/reftest"
	"github.com/clinfer/clinfer/weights"
)

func loadFixture(t *testing.T, name string, opts ...Option) *Model {
	t.Helper()
	m, err := Load(filepath.Join(fixturesDir(), name), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// seqBatch builds B sequences in XLNet's layout (left padding, <sep> <cls> at the end) of
// lengths lens, padded to the longest.
func seqBatch(lens []int, seed int) Batch {
	T := 0
	for _, n := range lens {
		T = max(T, n)
	}
	b := Batch{Batch: len(lens), Length: T}
	for i, n := range lens {
		for t := 0; t < T; t++ {
			switch {
			case t < T-n:
				b.IDs, b.Mask, b.TypeIDs = append(b.IDs, 5), append(b.Mask, 0), append(b.TypeIDs, 3)
			case t == T-1:
				b.IDs, b.Mask, b.TypeIDs = append(b.IDs, 3), append(b.Mask, 1), append(b.TypeIDs, 2)
			case t == T-2:
				b.IDs, b.Mask, b.TypeIDs = append(b.IDs, 4), append(b.Mask, 1), append(b.TypeIDs, 0)
			default:
				b.IDs, b.Mask, b.TypeIDs = append(b.IDs, 6+(t*31+i*7+seed*13)%990), append(b.Mask, 1), append(b.TypeIDs, 0)
			}
		}
	}
	return b
}

// TestConcurrentForward runs one model from many goroutines on batches of several shapes
// (so graphs of several buckets are compiled and pooled concurrently) and checks every result
// against the same batch run alone.
func TestConcurrentForward(t *testing.T) {
	for _, fixture := range []string{"xlnet_token_cls", "xlnet_seq_cls"} {
		t.Run(fixture, func(t *testing.T) {
			m := loadFixture(t, fixture)
			ctx := context.Background()
			batches := []Batch{seqBatch([]int{9}, 1), seqBatch([]int{30, 12, 5}, 2), seqBatch([]int{70, 66}, 3), seqBatch([]int{17}, 4)}
			want := make([][]float32, len(batches))
			for i, b := range batches {
				res, err := m.Forward(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				want[i] = res.Logits
			}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for r := 0; r < 4; r++ {
						i := (g + r) % len(batches)
						res, err := m.Forward(ctx, batches[i])
						if err != nil {
							errs <- err
							return
						}
						for k, w := range want[i] {
							if d := math.Abs(float64(res.Logits[k] - w)); d > 1e-6+1e-6*math.Abs(float64(w)) {
								errs <- fmt.Errorf("goroutine %d batch %d logit %d: %g, alone %g", g, i, k, res.Logits[k], w)
								return
							}
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestPaddingInvariance: a sequence's outputs do not depend on the padding around it (bucket
// padding, batch padding), as Hugging Face's XLNet guarantees with its masks.
func TestPaddingInvariance(t *testing.T) {
	m := loadFixture(t, "xlnet_seq_cls")
	ctx := context.Background()
	alone, err := m.Classify(ctx, seqBatch([]int{21}, 5))
	if err != nil {
		t.Fatal(err)
	}
	b := seqBatch([]int{40, 21}, 5)
	// Row 1 of b is row 0 of the alone batch with 19 padding tokens on the left; rebuild its
	// content from the alone batch so that the ids match.
	one := seqBatch([]int{21}, 5)
	copy(b.IDs[b.Length+19:], one.IDs)
	got, err := m.Classify(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range alone[0] {
		if d := math.Abs(float64(got[1][k] - w)); d > 1e-5 {
			t.Errorf("logit %d: padded %g, alone %g", k, got[1][k], w)
		}
	}
}

func TestForwardErrors(t *testing.T) {
	m := loadFixture(t, "xlnet_token_cls", WithMaxLength(32))
	ctx := context.Background()
	cases := []struct {
		name string
		in   Batch
		want string
	}{
		{"id outside vocabulary", Batch{Batch: 1, Length: 2, IDs: []int{3, 1000}}, "input_ids[0][1] = 1000"},
		{"negative id", Batch{Batch: 1, Length: 2, IDs: []int{-1, 3}}, "input_ids[0][0] = -1"},
		{"mask value", Batch{Batch: 1, Length: 2, IDs: []int{3, 4}, Mask: []int{1, 2}}, "attention_mask[0][1] = 2"},
		{"short ids", Batch{Batch: 2, Length: 2, IDs: []int{3, 4}}, "2 input_ids for a batch of 2 x 2"},
		{"short types", Batch{Batch: 1, Length: 2, IDs: []int{3, 4}, TypeIDs: []int{0}}, "token_type_ids"},
		{"empty", Batch{}, "batch of 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Forward(ctx, c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	long := seqBatch([]int{33}, 0)
	if _, err := m.Forward(ctx, long); !errors.Is(err, nn.ErrTooLong) {
		t.Fatalf("33 tokens with maximum 32: %v, want ErrTooLong", err)
	}
	if _, err := m.Forward(ctx, seqBatch([]int{32}, 0)); err != nil {
		t.Fatalf("32 tokens with maximum 32: %v", err)
	}
	if _, err := m.Classify(ctx, seqBatch([]int{4}, 0)); err == nil {
		t.Fatal("Classify on a token classifier succeeded")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "xlnet_token_cls")
	cfg, err := weights.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := weights.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// A sequence head on a token-classification checkpoint: every missing tensor is named.
	_, err = LoadFromStore(cfg, s, WithHead(HeadSequence))
	if !errors.Is(err, weights.ErrMissingTensor) || !strings.Contains(err.Error(), "logits_proj.weight") ||
		!strings.Contains(err.Error(), "sequence_summary.summary.weight") {
		t.Fatalf("sequence head on a token checkpoint: %v", err)
	}
	// Wrong dimensions in config: shape errors name the tensor.
	bad := *cfg
	xc := *cfg.XLNet
	xc.DInner = 40
	bad.XLNet = &xc
	_, err = LoadFromStore(&bad, s)
	if !errors.Is(err, weights.ErrShape) || !strings.Contains(err.Error(), "transformer.layer.0.ff.layer_1.weight") {
		t.Fatalf("d_inner mismatch: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*weights.XLNetConfig)
	}{
		{"uni", func(c *weights.XLNetConfig) { c.AttnType = "uni" }},
		{"bi_data", func(c *weights.XLNetConfig) { c.BiData = true }},
		{"odd d_model", func(c *weights.XLNetConfig) { c.DModel = 47 }},
		{"activation", func(c *weights.XLNetConfig) { c.FFActivation = "nope" }},
		{"pad", func(c *weights.XLNetConfig) { c.PadTokenID = 1000 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := *cfg
			xc := *cfg.XLNet
			c.edit(&xc)
			bad.XLNet = &xc
			if _, err := LoadFromStore(&bad, s); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := LoadFromStore(&weights.Config{ModelType: "bert"}, s); err == nil {
		t.Fatal("accepted a config without an XLNet section")
	}
}

// TestNoTokenTypes: without token_type_ids Hugging Face drops the segment term; with all
// types equal the term is the same for every key, which softmax cancels, so both agree.
func TestNoTokenTypes(t *testing.T) {
	m := loadFixture(t, "xlnet_token_cls")
	ctx := context.Background()
	b := seqBatch([]int{12, 9}, 7)
	b.TypeIDs = nil
	none, err := m.Forward(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	b.TypeIDs = make([]int, len(b.IDs))
	zeros, err := m.Forward(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for k := range none.Logits {
		if d := math.Abs(float64(none.Logits[k] - zeros.Logits[k])); d > 1e-5 {
			t.Fatalf("logit %d: without types %g, with zeros %g", k, none.Logits[k], zeros.Logits[k])
		}
	}
}

// TestClampLen: with clamp_len > 0 every distance beyond it uses the clamped distance's
// encoding (pos_seq.clamp(-clamp_len, clamp_len)); without, every distance differs.
func TestClampLen(t *testing.T) {
	const M, maxLen, clamp = 8, 10, 3
	pe := positionalEmbedding(M, maxLen, clamp)
	row := func(d int) []float32 { g := maxLen - d; return pe[g*M : (g+1)*M] }
	for d := -maxLen + 1; d <= maxLen; d++ {
		c := max(-clamp, min(clamp, d))
		for i, v := range row(d) {
			if v != row(c)[i] {
				t.Fatalf("distance %d column %d: %g, clamped distance %d has %g", d, i, v, c, row(c)[i])
			}
		}
	}
	free := positionalEmbedding(M, maxLen, -1)
	g4, g5 := (maxLen-4)*M, (maxLen-5)*M
	if free[g4] == free[g5] {
		t.Fatal("unclamped distances 4 and 5 share an encoding")
	}
	// Row for distance d starts with sin(d) (inv_freq[0] = 1) and has cos(d) at d_model/2.
	if got, want := free[g4], float32(math.Sin(4)); got != want {
		t.Fatalf("sin(4) = %g, want %g", got, want)
	}
	if got, want := free[g4+M/2], float32(math.Cos(4)); got != want {
		t.Fatalf("cos(4) = %g, want %g", got, want)
	}
}

// TestBareEncoder: the same checkpoint as a bare XLNetModel returns the hidden states the
// token classifier's reference lists as last_hidden_state.
func TestBareEncoder(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "xlnet_token_cls")
	m := loadFixture(t, "xlnet_token_cls", WithHead(HeadNone))
	if m.Labels() != nil {
		t.Fatalf("bare encoder has labels %v", m.Labels())
	}
	rs, err := weights.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	c := reftest.Case{Name: "pair", Inputs: map[string]json.RawMessage{"pair.input_ids": nil, "pair.attention_mask": nil, "pair.token_type_ids": nil}}
	in := readBatch(t, rs, c)
	res, err := m.Forward(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := rs.Float32("pair.last_hidden_state")
	if err != nil {
		t.Fatal(err)
	}
	if res.Logits != nil || len(res.LastHiddenState) != len(want) {
		t.Fatalf("bare encoder: %d logits, %d hidden values, want 0 and %d", len(res.Logits), len(res.LastHiddenState), len(want))
	}
	for i, w := range want {
		if d := math.Abs(float64(res.LastHiddenState[i] - w)); d > 3e-5+3e-5*math.Abs(float64(w)) {
			t.Fatalf("last_hidden_state[%d] = %g, want %g", i, res.LastHiddenState[i], w)
		}
	}
}
