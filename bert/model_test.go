package bert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/internal/reftest"
	"github.com/clinfer/clinfer/tagging"
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

func randomBatch(r *rand.Rand, B, T, vocab, types int, padID int) Batch {
	b := Batch{Batch: B, Length: T, IDs: make([]int, B*T), Mask: make([]int, B*T), TypeIDs: make([]int, B*T)}
	for i := 0; i < B; i++ {
		n := 1 + r.IntN(T)
		if i == 0 {
			n = T
		}
		for t := 0; t < T; t++ {
			j := i*T + t
			if t < n {
				b.IDs[j], b.Mask[j], b.TypeIDs[j] = 3+r.IntN(vocab-3), 1, r.IntN(types)
			} else {
				b.IDs[j] = padID
			}
		}
	}
	return b
}

// Many goroutines share one model; each result must equal the one computed alone.
func TestConcurrentForward(t *testing.T) {
	for _, fixture := range []string{"bert_token_cls", "roberta_token_cls"} {
		t.Run(fixture, func(t *testing.T) {
			m := loadFixture(t, fixture)
			r := rand.New(rand.NewPCG(1, 2))
			c := m.Config().Bert
			var batches []Batch
			var want [][]float32
			for i := 0; i < 4; i++ {
				b := randomBatch(r, 1+i%3, 5+9*i, c.VocabSize, c.TypeVocabSize, m.PadID())
				res, err := m.Forward(context.Background(), b)
				if err != nil {
					t.Fatal(err)
				}
				batches, want = append(batches, b), append(want, res.Logits)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for it := 0; it < 4; it++ {
						k := (g + it) % len(batches)
						res, err := m.Forward(context.Background(), batches[k])
						if err != nil {
							errs <- err
							return
						}
						for j := range want[k] {
							if res.Logits[j] != want[k][j] {
								errs <- fmt.Errorf("goroutine %d batch %d: logit %d = %g, alone %g", g, k, j, res.Logits[j], want[k][j])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// A sequence padded inside a batch must get the logits it gets alone (positions with mask 1).
func TestPaddingInvariance(t *testing.T) {
	m := loadFixture(t, "xlm_roberta_token_cls")
	r := rand.New(rand.NewPCG(3, 4))
	c := m.Config().Bert
	b := randomBatch(r, 3, 40, c.VocabSize, 1, m.PadID())
	all, err := m.Forward(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	n := all.NumLabels
	for i := 0; i < b.Batch; i++ {
		l := 0
		for l < b.Length && b.Mask[i*b.Length+l] == 1 {
			l++
		}
		one := Batch{Batch: 1, Length: l, IDs: b.IDs[i*b.Length : i*b.Length+l]}
		res, err := m.Forward(context.Background(), one)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < l*n; j++ {
			got, want := all.Logits[i*b.Length*n+j], res.Logits[j]
			if math.Abs(float64(got-want)) > 1e-5 {
				t.Fatalf("row %d logit %d: %g in batch, %g alone", i, j, got, want)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	m := loadFixture(t, "bert_token_cls")
	ctx := context.Background()
	c := m.Config().Bert
	ok := Batch{Batch: 1, Length: 3, IDs: []int{1, 2, 3}}
	if _, err := m.Forward(ctx, ok); err != nil {
		t.Fatalf("valid batch: %v", err)
	}
	long := make([]int, c.MaxPositionEmbeddings+1)
	cases := []struct {
		name string
		in   Batch
		want string
	}{
		{"id beyond vocab", Batch{Batch: 1, Length: 3, IDs: []int{1, c.VocabSize, 3}}, "input_ids[0][1] = 1000 outside the vocabulary"},
		{"negative id", Batch{Batch: 1, Length: 3, IDs: []int{1, -1, 3}}, "input_ids[0][1] = -1"},
		{"too long", Batch{Batch: 1, Length: len(long), IDs: long}, "exceeds the model's maximum of 128"},
		{"mask length", Batch{Batch: 1, Length: 3, IDs: []int{1, 2, 3}, Mask: []int{1, 1}}, "2 attention_mask values"},
		{"ids length", Batch{Batch: 2, Length: 3, IDs: []int{1, 2, 3}}, "3 input_ids for a batch of 2 x 3"},
		{"type id", Batch{Batch: 1, Length: 3, IDs: []int{1, 2, 3}, TypeIDs: []int{0, 2, 0}}, "token_type_ids[0][1] = 2"},
		{"mask value", Batch{Batch: 1, Length: 3, IDs: []int{1, 2, 3}, Mask: []int{1, 2, 1}}, "attention_mask[0][1] = 2"},
		{"empty", Batch{}, "batch of 0 sequences"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Forward(ctx, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := m.Forward(ctx, Batch{Batch: 1, Length: len(long), IDs: long}); !errors.Is(err, nn.ErrTooLong) {
		t.Errorf("too long: %v does not wrap nn.ErrTooLong", err)
	}
	if _, err := NewBatch([][]int{{1, 2, 3}}, [][]int{{1, 1}}, nil); err == nil || !strings.Contains(err.Error(), "attention_mask row 0 has 2 tokens, want 3") {
		t.Errorf("NewBatch with a short mask row: %v", err)
	}
	if _, err := NewBatch([][]int{{1, 2, 3}, {1, 2}}, nil, nil); err == nil {
		t.Error("NewBatch with ragged ids: no error")
	}
	if _, err := m.Logits(ctx, tagging.EncodedBatch{IDs: [][]int{{1, 2}}, Mask: [][]int{{1, 1, 1}}}); err == nil {
		t.Error("Logits with a mask longer than the ids: no error")
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Forward(ctx2, ok); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	// RoBERTa positions start after padding_idx: 130 rows leave 128 tokens.
	rm := loadFixture(t, "roberta_token_cls")
	if rm.MaxLength() != 128 {
		t.Errorf("roberta MaxLength = %d, want 128", rm.MaxLength())
	}
	ids := make([]int, 129)
	for i := range ids {
		ids[i] = 5
	}
	if _, err := rm.Forward(ctx, Batch{Batch: 1, Length: 129, IDs: ids}); err == nil || !strings.Contains(err.Error(), "maximum of 128") {
		t.Errorf("roberta 129 tokens: %v", err)
	}
}

func TestLogitsMatchesForward(t *testing.T) {
	m := loadFixture(t, "bert_token_cls")
	in := tagging.EncodedBatch{
		IDs:     [][]int{{101, 7, 8, 9, 102}, {101, 7, 102, 0, 0}},
		TypeIDs: [][]int{{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}},
		Mask:    [][]int{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}},
	}
	out, err := m.Logits(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewBatch(in.IDs, in.Mask, in.TypeIDs)
	res, err := m.Forward(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || len(out[1]) != 5 || len(out[1][4]) != len(m.Labels()) {
		t.Fatalf("Logits shape %d x %d x %d", len(out), len(out[1]), len(out[1][4]))
	}
	n := res.NumLabels
	for i := range out {
		for tk := range out[i] {
			for l, v := range out[i][tk] {
				if v != res.Logits[(i*5+tk)*n+l] {
					t.Fatalf("Logits[%d][%d][%d] = %g, Forward %g", i, tk, l, v, res.Logits[(i*5+tk)*n+l])
				}
			}
		}
	}
	if got := len(m.Labels()); got != 13 {
		t.Errorf("%d labels, want 13", got)
	}
	seq := loadFixture(t, "bert_seq_cls")
	if _, err := seq.Logits(context.Background(), in); err == nil {
		t.Error("Logits on a sequence classifier: no error")
	}
}

// A bare encoder (WithHead(HeadNone)) on the sequence classifier's weights returns the
// reference last hidden state and pooler output.
func TestBareEncoderWithPooler(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "bert_seq_cls")
	m := loadFixture(t, "bert_seq_cls", WithHead(HeadNone))
	rs, err := weights.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	in := readBatch(t, rs, reftest.Case{Name: "single", Inputs: map[string]json.RawMessage{
		"single.input_ids": nil, "single.attention_mask": nil, "single.token_type_ids": nil}})
	res, err := m.Forward(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Logits != nil || res.LastHiddenState == nil || res.Pooled == nil {
		t.Fatalf("bare encoder: logits %v, last hidden %d values, pooled %d values", res.Logits != nil, len(res.LastHiddenState), len(res.Pooled))
	}
	for _, o := range []struct {
		name string
		got  []float32
	}{{"single.last_hidden_state", res.LastHiddenState}, {"single.pooler_output", res.Pooled}} {
		want, _, err := rs.Float32(o.name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if d := math.Abs(float64(o.got[i] - want[i])); d > 3e-5+3e-5*math.Abs(float64(want[i])) {
				t.Fatalf("%s[%d] = %g, want %g", o.name, i, o.got[i], want[i])
			}
		}
	}
}

// f32Tensor encodes float32 values as a safetensors F32 tensor.
func f32Tensor(name string, shape []int, v []float32) weights.NamedTensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return weights.NamedTensor{Name: name, DType: "F32", Shape: shape, Data: b}
}

// copyCheckpoint writes a model folder with the fixture's config and tensors, edited by edit
// (which may drop or change tensors and add new ones).
func copyCheckpoint(t *testing.T, fixture string, editCfg func(string) string, edit func([]weights.NamedTensor) []weights.NamedTensor) string {
	t.Helper()
	src := filepath.Join(fixturesDir(), fixture)
	s, err := weights.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ts []weights.NamedTensor
	for _, n := range s.Names() {
		v, shape, err := s.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, f32Tensor(n, shape, v))
	}
	dir := t.TempDir()
	if err := weights.WriteSafetensors(filepath.Join(dir, "model.safetensors"), edit(ts), nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(editCfg(string(cfg))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMissingAndMisshapedTensors(t *testing.T) {
	dir := copyCheckpoint(t, "bert_token_cls", func(s string) string { return s }, func(ts []weights.NamedTensor) []weights.NamedTensor {
		var out []weights.NamedTensor
		for _, x := range ts {
			switch x.Name {
			case "bert.encoder.layer.1.attention.self.key.weight":
				continue // missing
			case "classifier.bias":
				x = f32Tensor(x.Name, []int{12}, make([]float32, 12)) // 12 instead of 13 labels
			}
			out = append(out, x)
		}
		return out
	})
	_, err := Load(dir)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"bert.encoder.layer.1.attention.self.key.weight", "classifier.bias"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if !errors.Is(err, weights.ErrMissingTensor) || !errors.Is(err, weights.ErrShape) {
		t.Errorf("error wraps neither ErrMissingTensor nor ErrShape: %v", err)
	}
}

// A CheXbert-style labeler: BERT encoder plus linear_heads.0..13 on the first token, as the
// weights package presents CheXbert's checkpoint (module. prefix and model_state_dict removed).
func TestCheXbertMultiHead(t *testing.T) {
	const H = 32
	r := rand.New(rand.NewPCG(5, 6))
	heads := make([][]float32, 14) // weight then bias, [n*H + n]
	dir := copyCheckpoint(t, "bert_seq_cls",
		func(s string) string {
			return strings.Replace(s, `"BertForSequenceClassification"`, `"BertModel"`, 1)
		},
		func(ts []weights.NamedTensor) []weights.NamedTensor {
			var out []weights.NamedTensor
			for _, x := range ts {
				if strings.HasPrefix(x.Name, "classifier.") {
					continue
				}
				out = append(out, x)
			}
			for i := range heads {
				n := 4
				if i == 13 {
					n = 2
				}
				v := make([]float32, n*H+n)
				for j := range v {
					v[j] = float32(r.NormFloat64())
				}
				heads[i] = v
				out = append(out, f32Tensor(fmt.Sprintf("linear_heads.%d.weight", i), []int{n, H}, v[:n*H]),
					f32Tensor(fmt.Sprintf("linear_heads.%d.bias", i), []int{n}, v[n*H:]))
			}
			return out
		})
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Head() != HeadMulti || len(m.HeadSizes()) != 14 || m.Labels()[13] != "No Finding" {
		t.Fatalf("head %v, sizes %v, labels %v", m.Head(), m.HeadSizes(), m.Labels())
	}
	enc, err := Load(dir, WithHead(HeadNone))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := NewBatch([][]int{{101, 5, 6, 7, 102}, {101, 9, 102, 0, 0}}, [][]int{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}, nil)
	rows, err := m.Classify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	hid, err := enc.Forward(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	preds, err := m.Predict(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for b := range rows {
		cls := hid.LastHiddenState[b*5*H : b*5*H+H]
		split, err := m.SplitHeads(rows[b])
		if err != nil {
			t.Fatal(err)
		}
		for i, lg := range split {
			n := len(lg)
			best := 0
			for c := 0; c < n; c++ {
				want := float64(heads[i][n*H+c])
				for k := 0; k < H; k++ {
					want += float64(heads[i][c*H+k]) * float64(cls[k])
				}
				if math.Abs(float64(lg[c])-want) > 1e-4 {
					t.Fatalf("sequence %d head %d class %d: %g, want %g", b, i, c, lg[c], want)
				}
				if lg[c] > lg[best] {
					best = c
				}
			}
			if preds[b][i] != best {
				t.Errorf("Predict[%d][%d] = %d, want %d", b, i, preds[b][i], best)
			}
		}
	}
}

func TestNewRandom(t *testing.T) {
	cfg := &weights.Config{ModelType: "xlm-roberta", Architectures: []string{"XLMRobertaForSequenceClassification"},
		ID2Label: map[int]string{0: "a", 1: "b"},
		Bert: &weights.BertConfig{VocabSize: 250002, HiddenSize: 32, NumHiddenLayers: 2, NumAttentionHeads: 4, IntermediateSize: 48,
			HiddenAct: "gelu", MaxPositionEmbeddings: 66, TypeVocabSize: 1, LayerNormEps: 1e-5, PadTokenID: 1}}
	m1, err := NewRandom(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := NewRandom(cfg, 7)
	in := Batch{Batch: 1, Length: 4, IDs: []int{0, 100, 200, 2}}
	a, err := m1.Forward(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m2.Forward(context.Background(), in)
	if len(a.Logits) != 2 {
		t.Fatalf("%d logits", len(a.Logits))
	}
	for i := range a.Logits {
		if a.Logits[i] != b.Logits[i] || math.IsNaN(float64(a.Logits[i])) {
			t.Fatalf("same seed, logits %v vs %v", a.Logits, b.Logits)
		}
	}
	if m1.MaxLength() != 64 {
		t.Errorf("MaxLength %d, want 64", m1.MaxLength())
	}
	if _, err := m1.Forward(context.Background(), Batch{Batch: 1, Length: 1, IDs: []int{RandomVocabRows}}); err == nil {
		t.Error("id beyond the random table: no error")
	}
}

// RoBERTa's sequence head is out_proj(tanh(dense(h[:, 0]))), with no pooler.
func TestRobertaSequenceHead(t *testing.T) {
	const H, L = 64, 13
	r := rand.New(rand.NewPCG(8, 9))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(0.1 * r.NormFloat64())
		}
		return v
	}
	dw, db, ow, ob := rnd(H*H), rnd(H), rnd(L*H), rnd(L)
	dir := copyCheckpoint(t, "roberta_token_cls",
		func(s string) string {
			return strings.Replace(s, `"RobertaForTokenClassification"`, `"RobertaForSequenceClassification"`, 1)
		},
		func(ts []weights.NamedTensor) []weights.NamedTensor {
			var out []weights.NamedTensor
			for _, x := range ts {
				if !strings.HasPrefix(x.Name, "classifier.") {
					out = append(out, x)
				}
			}
			return append(out, f32Tensor("classifier.dense.weight", []int{H, H}, dw), f32Tensor("classifier.dense.bias", []int{H}, db),
				f32Tensor("classifier.out_proj.weight", []int{L, H}, ow), f32Tensor("classifier.out_proj.bias", []int{L}, ob))
		})
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := Load(dir, WithHead(HeadNone))
	if err != nil {
		t.Fatal(err)
	}
	if m.Head() != HeadSequence {
		t.Fatalf("head %v", m.Head())
	}
	in, _ := NewBatch([][]int{{0, 5, 6, 7, 2}, {0, 9, 2, 1, 1}}, [][]int{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}, nil)
	rows, err := m.Classify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	hid, err := enc.Forward(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if hid.Pooled != nil {
		t.Error("token-classification checkpoint has no pooler, yet Pooled is set")
	}
	for b := range rows {
		cls := hid.LastHiddenState[b*5*H : b*5*H+H]
		x := make([]float64, H)
		for o := range x {
			s := float64(db[o])
			for k := 0; k < H; k++ {
				s += float64(dw[o*H+k]) * float64(cls[k])
			}
			x[o] = math.Tanh(s)
		}
		for c := 0; c < L; c++ {
			want := float64(ob[c])
			for k := 0; k < H; k++ {
				want += float64(ow[c*H+k]) * x[k]
			}
			if math.Abs(float64(rows[b][c])-want) > 1e-5 {
				t.Fatalf("sequence %d label %d: %g, want %g", b, c, rows[b][c], want)
			}
		}
	}
}
