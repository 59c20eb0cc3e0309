// Package benchmarks holds the speed benchmarks of every model (go test -bench) and the shapes
// they share with the side-by-side tool in benchmarks/sidebyside.
package benchmarks

import (
	"fmt"

	"github.com/clinfer/clinfer/bert"
	"github.com/clinfer/clinfer/weights"
)

// BertBase is bert-base with a 13-label token-classification head, the shape of
// obi/deid_bert_i2b2 and torch_anchor.py's "bert" model (RoBERTa-base costs the same).
func BertBase() *weights.Config {
	return &weights.Config{ModelType: "bert", Architectures: []string{"BertForTokenClassification"},
		ID2Label: LabelMap(13),
		Bert: &weights.BertConfig{VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
			IntermediateSize: 3072, HiddenAct: "gelu", MaxPositionEmbeddings: 512, TypeVocabSize: 2,
			LayerNormEps: 1e-12, PositionEmbeddingType: "absolute"}}
}

// XLMRLarge is XLM-RoBERTa-large with a 17-label token head (CLIN-X's shape). NewRandom keeps
// only bert.RandomVocabRows rows of the 250002-row embedding table.
func XLMRLarge() *weights.Config {
	return &weights.Config{ModelType: "xlm-roberta", Architectures: []string{"XLMRobertaForTokenClassification"},
		ID2Label: LabelMap(17),
		Bert: &weights.BertConfig{VocabSize: 250002, HiddenSize: 1024, NumHiddenLayers: 24, NumAttentionHeads: 16,
			IntermediateSize: 4096, HiddenAct: "gelu", MaxPositionEmbeddings: 514, TypeVocabSize: 1,
			LayerNormEps: 1e-5, PadTokenID: 1, PositionEmbeddingType: "absolute"}}
}

func LabelMap(n int) map[int]string {
	m := make(map[int]string, n)
	for i := 0; i < n; i++ {
		m[i] = fmt.Sprintf("L%d", i)
	}
	return m
}

// BenchBatch is B sequences of T tokens of deterministic ids below bert.RandomVocabRows,
// starting with id 0 and avoiding the pad id 1.
func BenchBatch(B, T int) bert.Batch {
	in := bert.Batch{Batch: B, Length: T, IDs: make([]int, B*T)}
	for i := range in.IDs {
		in.IDs[i] = 2 + (i*7919)%(bert.RandomVocabRows-2)
	}
	return in
}

// EncoderFLOPs counts the multiply-adds of the encoder's matrix products (2 flops each):
// QKV, attention output, FFN, and the two attention products.
func EncoderFLOPs(c *weights.BertConfig, B, T int) float64 {
	H, I, L := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.NumHiddenLayers)
	tok := float64(B * T)
	linear := 2 * tok * (3*H*H + H*H + 2*H*I)
	attn := 2 * 2 * float64(B) * float64(T) * float64(T) * H
	return L * (linear + attn)
}
