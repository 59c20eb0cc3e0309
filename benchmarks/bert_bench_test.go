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

func benchEncoder(b *testing.B, cfg *weights.Config, shapes [][2]int) {
	m, err := bert.NewRandom(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range shapes {
		B, T := s[0], s[1]
		b.Run(fmt.Sprintf("b%dx%d", B, T), func(b *testing.B) {
			in := BenchBatch(B, T)
			benchForward(b, B*T, EncoderFLOPs(cfg.Bert, B, T), func(ctx context.Context) error {
				_, err := m.Forward(ctx, in)
				return err
			})
		})
	}
}

// BenchmarkBertBase: bert-base token classifier at batch 1 x 128, 1 x 512 and 8 x 128 tokens.
// Compare with `torch_anchor.py --models bert` at the same thread count (GOMAXPROCS).
func BenchmarkBertBase(b *testing.B) {
	benchEncoder(b, BertBase(), [][2]int{{1, 128}, {1, 512}, {8, 128}})
}

// BenchmarkXLMRLarge: XLM-R-large token classifier at batch 1 x 128.
// Compare with `torch_anchor.py --models xlmr`.
func BenchmarkXLMRLarge(b *testing.B) {
	benchEncoder(b, XLMRLarge(), [][2]int{{1, 128}})
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
