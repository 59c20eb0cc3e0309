package sentencepiece

import (
	"strings"
	"sync"
	"testing"
)

// xlnetWords returns the Metaspace pre-tokens of the XLNet reference texts (ASCII-normalized
// enough for a throughput figure: split on spaces, ▁ prepended).
func xlnetWords(t testing.TB) []string {
	var words []string
	for _, r := range loadRecords(t, "xlnet-base-cased") {
		for _, w := range strings.Fields(r.Text) {
			words = append(words, "\u2581"+w)
		}
	}
	return words
}

func TestUnigramConcurrent(t *testing.T) {
	f := loadXLNet(t)
	u, err := NewUnigram(f.vocab, f.unkID, false)
	if err != nil {
		t.Fatal(err)
	}
	words := xlnetWords(t)
	want := make([][]Token, len(words))
	for i, w := range words {
		if want[i], err = u.Encode(w, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, w := range words {
				got, err := u.Encode(w, nil)
				if err != nil || len(got) != len(want[i]) {
					t.Errorf("word %d: concurrent encode differs", i)
					return
				}
				for k := range got {
					if got[k] != want[i][k] {
						t.Errorf("word %d: concurrent encode differs", i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkUnigramXLNet(b *testing.B) {
	f := loadXLNet(b)
	u, err := NewUnigram(f.vocab, f.unkID, false)
	if err != nil {
		b.Fatal(err)
	}
	words := xlnetWords(b)
	var toks []Token
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, w := range words {
			toks, _ = u.Encode(w, toks[:0])
			n += len(toks)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkCharsMapXLNet(b *testing.B) {
	f := loadXLNet(b)
	cm, err := ParseCharsMap(f.charsmap)
	if err != nil {
		b.Fatal(err)
	}
	var texts []string
	bytes := 0
	for _, r := range loadRecords(b, "xlnet-base-cased") {
		texts = append(texts, r.Text)
		bytes += len(r.Text)
	}
	var edits []Edit
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range texts {
			edits, _ = cm.Edits(s, edits[:0])
		}
	}
}
