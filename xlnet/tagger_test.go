package xlnet

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/weights"
)

var xlnetTokenizerDir = filepath.Join("..", "testdata", "tokenizers", "xlnet-base-cased")

// writeNameTagger writes a tiny XLNetForTokenClassification directory (config.json,
// model.safetensors, the xlnet-base-cased tokenizer.json) whose random encoder is dominated
// by the word embeddings, and whose classifier says B-NAME for the tokens in first, I-NAME
// for those in rest, and O for everything else. The labels therefore follow the token ids
// through the whole pipeline, so a misplaced window, special token or padding shows up as a
// wrong span.
func writeNameTagger(t *testing.T, first, rest []int) string {
	t.Helper()
	dir := t.TempDir()
	const M, N, D, I, L, V = 16, 2, 8, 24, 2, 32000
	cfg := map[string]any{
		"architectures": []string{"XLNetForTokenClassification"}, "model_type": "xlnet",
		"attn_type": "bi", "bi_data": false, "clamp_len": -1, "d_model": M, "n_head": N, "d_head": D,
		"d_inner": I, "n_layer": L, "vocab_size": V, "ff_activation": "gelu", "layer_norm_eps": 1e-12,
		"pad_token_id": 5, "untie_r": true, "same_length": false,
		"id2label": map[string]string{"0": "O", "1": "B-NAME", "2": "I-NAME"},
		"label2id": map[string]int{"O": 0, "B-NAME": 1, "I-NAME": 2},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tj, err := os.ReadFile(filepath.Join(xlnetTokenizerDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	var ts []weights.NamedTensor
	add := func(name string, v []float32, shape ...int) {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		ts = append(ts, weights.NamedTensor{Name: name, DType: "F32", Shape: shape, Data: b})
	}
	randn := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(std * r.NormFloat64())
		}
		return v
	}
	fill := func(n int, x float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = x
		}
		return v
	}
	// Dimensions 0 and 1 mark B-NAME and I-NAME tokens; every other token has -1 there.
	word := randn(V*M, 1)
	for id := 0; id < V; id++ {
		word[id*M], word[id*M+1] = -1, -1
	}
	for _, id := range first {
		word[id*M] = 6
	}
	for _, id := range rest {
		word[id*M+1] = 6
	}
	add("transformer.word_embedding.weight", word, V, M)
	add("transformer.mask_emb", randn(M, 0.02), 1, 1, M)
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("transformer.layer.%d.", l)
		for _, n := range []string{"q", "k", "v", "o", "r"} {
			add(p+"rel_attn."+n, randn(M*N*D, 0.02), M, N, D)
		}
		for _, n := range []string{"r_w_bias", "r_r_bias", "r_s_bias"} {
			add(p+"rel_attn."+n, randn(N*D, 0.02), N, D)
		}
		add(p+"rel_attn.seg_embed", randn(2*N*D, 0.02), 2, N, D)
		add(p+"rel_attn.layer_norm.weight", fill(M, 1), M)
		add(p+"rel_attn.layer_norm.bias", fill(M, 0), M)
		add(p+"ff.layer_1.weight", randn(I*M, 0.02), I, M)
		add(p+"ff.layer_1.bias", randn(I, 0.02), I)
		add(p+"ff.layer_2.weight", randn(M*I, 0.02), M, I)
		add(p+"ff.layer_2.bias", randn(M, 0.02), M)
		add(p+"ff.layer_norm.weight", fill(M, 1), M)
		add(p+"ff.layer_norm.bias", fill(M, 0), M)
	}
	cls := make([]float32, 3*M)
	cls[1*M+0], cls[2*M+1] = 4, 4
	add("classifier.weight", cls, 3, M)
	add("classifier.bias", []float32{6, 0, 0}, 3)
	if err := weights.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func nameTagger(t *testing.T) (string, tagging.Tokenizer) {
	t.Helper()
	tok, err := tagging.LoadTokenizer(xlnetTokenizerDir)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := tok.Tokenize("John Smith")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 {
		t.Fatalf("\"John Smith\" is %d tokens, this test expects 2", len(toks))
	}
	return writeNameTagger(t, []int{toks[0].ID}, []int{toks[1].ID}), tok
}

// TestTaggingPipeline runs XLNet through the shared tagging pipeline end to end: LoadTagger,
// the xlnet-base-cased tokenizer, windows over a text longer than the model's maximum, and
// entity offsets that must point at the names in the text.
func TestTaggingPipeline(t *testing.T) {
	dir, tok := nameTagger(t)
	ctx := context.Background()
	sentence := "Patient John Smith was seen on 3/4 by Dr. Lee; John Smith’s wife called. "
	text := strings.Repeat(sentence, 6)
	var want []int
	for i := 0; ; {
		j := strings.Index(text[i:], "John Smith")
		if j < 0 {
			break
		}
		want = append(want, i+j)
		i += j + 1
	}

	tagger, err := LoadTagger(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The whole text in one window, and in windows of 24 tokens with the default stride.
	short, err := Load(dir, WithHead(HeadToken), WithMaxLength(24))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		m    tagging.TokenClassifier
	}{{"one-window", tagger}, {"windows-of-24", short}} {
		t.Run(c.name, func(t *testing.T) {
			p, err := tagging.New(c.m, tok, tagging.Options{Aggregation: tagging.AggregateSimple})
			if err != nil {
				t.Fatal(err)
			}
			ents, err := p.Tag(ctx, text)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != len(want) {
				t.Fatalf("%d entities, want %d: %+v", len(ents), len(want), ents)
			}
			for i, e := range ents {
				if e.Type != "NAME" || e.ByteStart != want[i] || e.ByteEnd != want[i]+len("John Smith") ||
					text[e.ByteStart:e.ByteEnd] != e.Text || e.Text != "John Smith" {
					t.Errorf("entity %d: %+v, want NAME \"John Smith\" at byte %d", i, e, want[i])
				}
			}
		})
	}
}

// TestLoadTaggerErrors: a sequence classifier directory loads as a token classifier only if
// the checkpoint has the token head.
func TestLoadTaggerErrors(t *testing.T) {
	if _, err := LoadTagger(filepath.Join(fixturesDir(), "xlnet_seq_cls")); err == nil {
		t.Fatal("LoadTagger accepted a checkpoint without classifier.weight")
	}
	if _, err := LoadTagger(t.TempDir()); err == nil {
		t.Fatal("LoadTagger accepted an empty directory")
	}
}
