package benchmarks

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/clinfer/clinfer/bert"
	"github.com/clinfer/clinfer/weights"
)

// bertBase is bert-base with a 13-label token-classification head, the shape of
// obi/deid_bert_i2b2 and torch_anchor.py's "bert" model (RoBERTa-base costs the same).
func bertBase() *weights.Config {
	return &weights.Config{ModelType: "bert", Architectures: []string{"BertForTokenClassification"},
		ID2Label: labelMap(13),
		Bert: &weights.BertConfig{VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
			IntermediateSize: 3072, HiddenAct: "gelu", MaxPositionEmbeddings: 512, TypeVocabSize: 2,
			LayerNormEps: 1e-12, PositionEmbeddingType: "absolute"}}
}

// xlmrLarge is XLM-RoBERTa-large with a 17-label token head (CLIN-X's shape). NewRandom keeps
// only bert.RandomVocabRows rows of the 250002-row embedding table.
func xlmrLarge() *weights.Config {
	return &weights.Config{ModelType: "xlm-roberta", Architectures: []string{"XLMRobertaForTokenClassification"},
		ID2Label: labelMap(17),
		Bert: &weights.BertConfig{VocabSize: 250002, HiddenSize: 1024, NumHiddenLayers: 24, NumAttentionHeads: 16,
			IntermediateSize: 4096, HiddenAct: "gelu", MaxPositionEmbeddings: 514, TypeVocabSize: 1,
			LayerNormEps: 1e-5, PadTokenID: 1, PositionEmbeddingType: "absolute"}}
}

func labelMap(n int) map[int]string {
	m := make(map[int]string, n)
	for i := 0; i < n; i++ {
		m[i] = fmt.Sprintf("L%d", i)
	}
	return m
}

// benchBatch is B sequences of T tokens of deterministic ids below bert.RandomVocabRows,
// starting with id 0 and avoiding the pad id 1.
func benchBatch(B, T int) bert.Batch {
	in := bert.Batch{Batch: B, Length: T, IDs: make([]int, B*T)}
	for i := range in.IDs {
		in.IDs[i] = 2 + (i*7919)%(bert.RandomVocabRows-2)
	}
	return in
}

// encoderFLOPs counts the multiply-adds of the encoder's matrix products (2 flops each):
// QKV, attention output, FFN, and the two attention products.
func encoderFLOPs(c *weights.BertConfig, B, T int) float64 {
	H, I, L := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.NumHiddenLayers)
	tok := float64(B * T)
	linear := 2 * tok * (3*H*H + H*H + 2*H*I)
	attn := 2 * 2 * float64(B) * float64(T) * float64(T) * H
	return L * (linear + attn)
}

func benchEncoder(b *testing.B, cfg *weights.Config, shapes [][2]int) {
	m, err := bert.NewRandom(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range shapes {
		B, T := s[0], s[1]
		b.Run(fmt.Sprintf("b%dx%d", B, T), func(b *testing.B) {
			in := benchBatch(B, T)
			benchForward(b, B*T, encoderFLOPs(cfg.Bert, B, T), func(ctx context.Context) error {
				_, err := m.Forward(ctx, in)
				return err
			})
		})
	}
}

// BenchmarkBertBase: bert-base token classifier at batch 1 x 128, 1 x 512 and 8 x 128 tokens.
// Compare with `torch_anchor.py --models bert` at the same thread count (GOMAXPROCS).
func BenchmarkBertBase(b *testing.B) {
	benchEncoder(b, bertBase(), [][2]int{{1, 128}, {1, 512}, {8, 128}})
}

// BenchmarkXLMRLarge: XLM-R-large token classifier at batch 1 x 128.
// Compare with `torch_anchor.py --models xlmr`.
func BenchmarkXLMRLarge(b *testing.B) {
	benchEncoder(b, xlmrLarge(), [][2]int{{1, 128}})
}

// benchForward times forward (after one untimed call that compiles the graph) and reports
// ms/op, cpu-ms/op, tokens/s and GFLOP/s for a batch of tokens tokens costing flops.
func benchForward(b *testing.B, tokens int, flops float64, forward func(context.Context) error) {
	ctx := context.Background()
	if err := forward(ctx); err != nil {
		b.Fatal(err)
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := forward(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec*1e3, "ms/op")
	b.ReportMetric((processCPU()-cpu0).Seconds()*1e3/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(tokens)/sec, "tokens/s")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
}

// processCPU is the process's user+system CPU time. On a shared machine cpu-ms/op (all threads
// together) is steadier than wall time; on an idle one wall ~ cpu / threads when the work
// parallelizes.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
