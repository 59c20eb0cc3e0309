package benchmarks

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clinfer/clinfer/tokenize"
)

// Tokenizer encode throughput on clinical text, the Go side of tokenize-compare/bench.js
// (which measures Hugging Face's Rust tokenizers on the same corpus):
//
//	go test ./benchmarks -run XXX -bench 'Tokenize' -benchtime 5x
//
// tokens/s is wall time; tokens/cpu-s divides by the process CPU time, the figure to compare
// on a shared machine (bench.js prints both).

// tokCorpus is the findings + impression of every IU X-ray report and the OBI notes
// (testdata/text, see its README for the licenses).
func tokCorpus(tb testing.TB) []string {
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
		if s := strings.TrimSpace(r[6] + " " + r[7]); s != "" {
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

func tokCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

var tokFamilies = []string{"bert-base-uncased", "bert-base-cased", "roberta-base", "qwen2", "xlnet-base-cased"}

// BenchmarkTokenizeEncode is single-goroutine encode throughput (one Encode per text).
func BenchmarkTokenizeEncode(b *testing.B) {
	texts := tokCorpus(b)
	for _, fam := range tokFamilies {
		b.Run(fam, func(b *testing.B) {
			tok, err := tokenize.Load(filepath.Join("..", "testdata", "tokenizers", fam))
			if err != nil {
				b.Fatal(err)
			}
			ntok, nbytes := 0, 0
			for _, s := range texts { // warm-up, and the token count per pass
				e, err := tok.Encode(s)
				if err != nil {
					b.Fatal(err)
				}
				ntok += e.Len()
				nbytes += len(s)
			}
			b.SetBytes(int64(nbytes))
			c0 := tokCPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, s := range texts {
					if _, err := tok.Encode(s); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			total := float64(ntok) * float64(b.N)
			b.ReportMetric(total/b.Elapsed().Seconds(), "tokens/s")
			if c := tokCPUSeconds() - c0; c > 0 {
				b.ReportMetric(total/c, "tokens/cpu-s")
			}
		})
	}
}

// BenchmarkTokenizeEncodeBatch is all-core throughput (EncodeTexts over the corpus).
func BenchmarkTokenizeEncodeBatch(b *testing.B) {
	texts := tokCorpus(b)
	for _, fam := range tokFamilies {
		b.Run(fam, func(b *testing.B) {
			tok, err := tokenize.Load(filepath.Join("..", "testdata", "tokenizers", fam))
			if err != nil {
				b.Fatal(err)
			}
			encs, err := tok.EncodeTexts(context.Background(), texts, tokenize.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ntok := 0
			for _, e := range encs {
				ntok += e.Len()
			}
			c0 := tokCPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tok.EncodeTexts(context.Background(), texts, tokenize.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			total := float64(ntok) * float64(b.N)
			b.ReportMetric(total/b.Elapsed().Seconds(), "tokens/s")
			if c := tokCPUSeconds() - c0; c > 0 {
				b.ReportMetric(total/c, "tokens/cpu-s")
			}
		})
	}
}
