package benchmarks

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/clinfer/clinfer/qwen"
	"github.com/clinfer/clinfer/weights"
)

// qwen05B is the Qwen1.5-0.5B shape (random weights).
var qwen05B = weights.Qwen2Config{
	VocabSize: 151936, HiddenSize: 1024, IntermediateSize: 2816, NumHiddenLayers: 24,
	NumAttentionHeads: 16, NumKeyValueHeads: 16, HiddenAct: "silu", MaxPositionEmbeddings: 32768,
	RMSNormEps: 1e-6, RopeTheta: 1e6, TieWordEmbeddings: true, SlidingWindow: 32768, MaxWindowLayers: 21,
}

// One model at a time: the F32 one alone holds about 2.5 GB.
var benchModel struct {
	dt qwen.DType
	m  *qwen.Model
}

func qwenModel(b *testing.B, dt qwen.DType) *qwen.Model {
	b.Helper()
	if benchModel.m != nil && benchModel.dt == dt {
		return benchModel.m
	}
	benchModel.m = nil
	m, err := qwen.NewRandom(&qwen05B, dt, 1)
	if err != nil {
		b.Fatal(err)
	}
	benchModel.dt, benchModel.m = dt, m
	return m
}

// weightBytes is what one decoding step streams from memory: every Linear once (the
// embedding lookup reads one row).
func weightBytes(m *qwen.Model) float64 {
	n := m.W.LMHead.Bytes()
	for _, l := range m.W.Layers {
		n += l.Attn.QKV.Bytes() + l.Attn.O.Bytes() + l.MLP.GateUp.Bytes() + l.MLP.Down.Bytes()
	}
	return float64(n)
}

func benchPrompt(n, seed int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = (seed*7919 + i*104729) % 150000
	}
	return p
}

// cpuTime is the process's user+system CPU time. On a shared machine, tokens per CPU-second
// (times the thread count) hints at the quiet-machine rate better than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchDTypes = []qwen.DType{qwen.F32, qwen.BF16, qwen.Int8}

// BenchmarkQwenPrefill256 measures a 256-token prompt through the GEMM path (plus the
// lm_head row of its last token).
func BenchmarkQwenPrefill256(b *testing.B) {
	for _, dt := range benchDTypes {
		b.Run(dt.String(), func(b *testing.B) {
			m := qwenModel(b, dt)
			prompt := [][]int{benchPrompt(256, 1)}
			opt := qwen.GenerateOptions{MaxNewTokens: 1, StopTokenIDs: []int{}}
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := m.Generate(context.Background(), prompt, opt); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(256*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(256*float64(b.N)/cpu.Seconds(), "tokens/cpu-s")
		})
	}
}

// BenchmarkQwenDecode measures generated tokens after the prompt (timed from the first to
// the last streamed token, so the prefill is excluded), at batch 1 and 8.
func BenchmarkQwenDecode(b *testing.B) {
	const promptLen, newTokens = 16, 33
	for _, dt := range benchDTypes {
		for _, batch := range []int{1, 8} {
			b.Run(fmt.Sprintf("%v/batch%d", dt, batch), func(b *testing.B) {
				m := qwenModel(b, dt)
				prompts := make([][]int, batch)
				for i := range prompts {
					prompts[i] = benchPrompt(promptLen+i%3, i)
				}
				var decodeTime, decodeCPU time.Duration
				steps := 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var first, last time.Time
					var cpuFirst, cpuLast time.Duration
					opt := qwen.GenerateOptions{MaxNewTokens: newTokens, StopTokenIDs: []int{}, Stream: func(ev qwen.Event) bool {
						if ev.Index == 0 && first.IsZero() {
							first, cpuFirst = time.Now(), cpuTime()
						}
						if ev.Index == newTokens-1 {
							last, cpuLast = time.Now(), cpuTime()
						}
						return true
					}}
					if _, err := m.Generate(context.Background(), prompts, opt); err != nil {
						b.Fatal(err)
					}
					decodeTime += last.Sub(first)
					decodeCPU += cpuLast - cpuFirst
					steps += newTokens - 1
				}
				stepsPerSec := float64(steps) / decodeTime.Seconds()
				b.ReportMetric(stepsPerSec*float64(batch), "tokens/s")
				b.ReportMetric(stepsPerSec*weightBytes(m)/1e9, "GB/s")
				b.ReportMetric(float64(steps*batch)/decodeCPU.Seconds(), "tokens/cpu-s")
			})
		}
	}
}
