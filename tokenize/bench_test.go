package tokenize

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"unicode/utf8"
)

// cpuSeconds is the process's user+system CPU time: on a shared machine tokens per CPU second
// is steadier than tokens per wall second, and it is what the Node comparison also reports.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// clinicalTexts returns the benchmark corpus: findings + impression of every IU X-ray report and
// the OBI notes (testdata/text; see its README for licenses).
func clinicalTexts(tb testing.TB) []string {
	tb.Helper()
	dir := filepath.Join("..", "testdata", "text")
	f, err := os.Open(filepath.Join(dir, "iu_xray_reports.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	var texts []string
	for _, r := range rows[1:] {
		s := strings.TrimSpace(r[6] + " " + r[7])
		if s != "" {
			texts = append(texts, s)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "obi_notes.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var n struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			tb.Fatal(err)
		}
		texts = append(texts, n.Text)
	}
	return texts
}

func benchTokenizer(b *testing.B, name string) *Tokenizer {
	tok, err := Load(filepath.Join("..", "testdata", "tokenizers", name))
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

var benchFamilies = []string{"bert-base-uncased", "bert-base-cased", "roberta-base", "qwen2", "xlnet-base-cased"}

// BenchmarkEncode measures single-goroutine encode throughput over the clinical corpus.
func BenchmarkEncode(b *testing.B) {
	texts := clinicalTexts(b)
	for _, fam := range benchFamilies {
		b.Run(fam, func(b *testing.B) {
			tok := benchTokenizer(b, fam)
			var ntok, nbytes int
			for _, s := range texts {
				e, err := tok.Encode(s)
				if err != nil {
					b.Fatal(err)
				}
				ntok += e.Len()
				nbytes += len(s)
			}
			b.SetBytes(int64(nbytes))
			c0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, s := range texts {
					if _, err := tok.Encode(s); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(ntok)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			if c := cpuSeconds() - c0; c > 0 {
				b.ReportMetric(float64(ntok)*float64(b.N)/c, "tokens/cpu-s")
			}
		})
	}
}

// BenchmarkEncodeParallel measures all-core throughput with EncodeBatch.
func BenchmarkEncodeParallel(b *testing.B) {
	texts := clinicalTexts(b)
	for _, fam := range benchFamilies {
		b.Run(fam, func(b *testing.B) {
			tok := benchTokenizer(b, fam)
			var ntok atomic.Int64
			c0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				encs, err := tok.EncodeTexts(context.Background(), texts, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range encs {
					ntok.Add(int64(e.Len()))
				}
			}
			b.ReportMetric(float64(ntok.Load())/b.Elapsed().Seconds(), "tokens/s")
			if c := cpuSeconds() - c0; c > 0 {
				b.ReportMetric(float64(ntok.Load())/c, "tokens/cpu-s")
			}
		})
	}
}

// BenchmarkEncodeLarge encodes one long document of growing size: ns/byte staying flat shows
// the pipeline is linear (no quadratic step on megabyte inputs).
func BenchmarkEncodeLarge(b *testing.B) {
	texts := clinicalTexts(b)
	doc := strings.Join(texts, "\n")
	for len(doc) < 1<<20 {
		doc += "\n" + doc
	}
	for _, fam := range []string{"bert-base-uncased", "roberta-base", "qwen2", "xlnet-base-cased"} {
		tok := benchTokenizer(b, fam)
		for _, size := range []int{1 << 16, 1 << 18, 1 << 20} {
			s := doc[:size]
			for !utf8.ValidString(s) {
				s = s[:len(s)-1]
			}
			b.Run(fmt.Sprintf("%s/%dKiB", fam, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(s)))
				for i := 0; i < b.N; i++ {
					if _, err := tok.Encode(s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
