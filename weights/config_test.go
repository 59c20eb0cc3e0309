package weights

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestConfigFixtures parses every fixture's config.json and checks the typed section
// against the raw JSON, and the tensors of the checkpoint against the sizes it declares.
func TestConfigFixtures(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, err := LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			num := func(key string) int {
				v, ok := c.Raw[key].(float64)
				if !ok {
					t.Fatalf("config.json has no numeric %q", key)
				}
				return int(v)
			}
			s, err := OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			shapeOf := func(suffix string) []int {
				for _, n := range s.Names() {
					if strings.HasSuffix(n, suffix) {
						info, _ := s.Info(n)
						return info.Shape
					}
				}
				t.Fatalf("no tensor *%s", suffix)
				return nil
			}
			switch c.ModelType {
			case "bert", "roberta", "xlm-roberta":
				b := c.Bert
				if b == nil || b.HiddenSize != num("hidden_size") || b.NumHiddenLayers != num("num_hidden_layers") || b.VocabSize != num("vocab_size") {
					t.Fatalf("bert section %+v", b)
				}
				if got := shapeOf("embeddings.word_embeddings.weight"); !reflect.DeepEqual(got, []int{b.VocabSize, b.HiddenSize}) {
					t.Errorf("word embeddings %v", got)
				}
			case "xlnet":
				x := c.XLNet
				if x == nil || x.DModel != num("d_model") || x.NHead*x.DHead != x.DModel {
					t.Fatalf("xlnet section %+v", x)
				}
				if got := shapeOf("rel_attn.q"); !reflect.DeepEqual(got, []int{x.DModel, x.NHead, x.DHead}) {
					t.Errorf("rel_attn.q %v", got)
				}
			case "qwen2":
				q := c.Qwen2
				if q == nil || q.NumKeyValueHeads != num("num_key_value_heads") || q.RopeTheta != 1e6 {
					t.Fatalf("qwen2 section %+v", q)
				}
				if q.TieWordEmbeddings != (c.Raw["tie_word_embeddings"] == true) {
					t.Errorf("tie_word_embeddings %v", q.TieWordEmbeddings)
				}
				kv := q.NumKeyValueHeads * q.HiddenSize / q.NumAttentionHeads
				if got := shapeOf("layers.0.self_attn.k_proj.weight"); !reflect.DeepEqual(got, []int{kv, q.HiddenSize}) {
					t.Errorf("k_proj %v", got)
				}
			case "layoutlmv3":
				l := c.LayoutLMv3
				if l == nil || l.HiddenSize != num("hidden_size") || l.InputSize != num("input_size") {
					t.Fatalf("layoutlmv3 section %+v", l)
				}
				if got := shapeOf("patch_embed.proj.weight"); !reflect.DeepEqual(got, []int{l.HiddenSize, l.NumChannels, l.PatchSize, l.PatchSize}) {
					t.Errorf("patch embedding %v", got)
				}
			default:
				t.Fatalf("model_type %q", c.ModelType)
			}
			if n := c.NumLabels(); strings.Contains(c.Architecture(), "Classification") && n != len(c.Labels()) {
				t.Errorf("labels %d vs %d", n, len(c.Labels()))
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		json string
		want error
		text string
	}{
		{`{"model_type":"gpt2"}`, ErrUnknownArchitecture, "supported: bert"},
		{`{}`, ErrUnknownArchitecture, "no model_type"},
		{`{"model_type":"bert","architectures":["BertForPreTraining"]}`, ErrUnknownArchitecture, "BertForTokenClassification"},
		{`{"model_type":"bert","vocab_size":10,"hidden_size":30,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8}`, ErrInvalidConfig, "num_attention_heads must divide hidden_size"},
		{`{"model_type":"qwen2","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":8,"max_position_embeddings":8}`, ErrInvalidConfig, "num_key_value_heads"},
		{`{"model_type":"bert","id2label":{"5":"X"}}`, ErrInvalidConfig, "id2label"},
		{`{"model_type":`, ErrInvalidConfig, ""},
	} {
		_, err := ParseConfig([]byte(c.json))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v mentioning %q", c.json, err, c.want, c.text)
		}
	}
	c, err := ParseConfig([]byte(`{"model_type":"qwen2","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"max_position_embeddings":8}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Qwen2.NumKeyValueHeads != 4 || c.Qwen2.TieWordEmbeddings || c.NumLabels() != 2 || !reflect.DeepEqual(c.Labels(), []string{"LABEL_0", "LABEL_1"}) {
		t.Errorf("defaults: %+v labels %v", c.Qwen2, c.Labels())
	}
}
