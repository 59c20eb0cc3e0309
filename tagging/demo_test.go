package tagging_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/tagging/taggers"
)

var longNote = flag.Bool("long", false, "also tag a 1 MB note with the demo model (slow)")

var demoDir = filepath.Join("..", "testdata", "models", "deid-demo-en")

var (
	demoOnce  sync.Once
	demoModel tagging.TokenClassifier
	demoTok   tagging.Tokenizer
	demoErr   error
)

func demo(t testing.TB) (tagging.TokenClassifier, tagging.Tokenizer) {
	t.Helper()
	demoOnce.Do(func() {
		if demoModel, demoErr = taggers.LoadModel(demoDir); demoErr != nil {
			return
		}
		demoTok, demoErr = tagging.LoadTokenizer(demoDir)
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoModel, demoTok
}

// demoTexts returns the distinct texts of the demo model's pipeline references, in order.
func demoTexts(t testing.TB) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(demoDir, "pipeline_reference.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r struct{ ID, Text string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[r.ID] = r.Text
	}
	return out
}

// bigNote concatenates the reference notes until the text has at least n bytes.
func bigNote(t testing.TB, n int) string {
	texts := demoTexts(t)
	var b strings.Builder
	for b.Len() < n {
		for i := 1; i <= len(texts) && b.Len() < n; i++ {
			b.WriteString(texts[fmt.Sprintf("s%03d", i)])
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// checkWhole checks that a long note was tagged whole: entities in order, disjoint, inside
// the text, some in its last tenth; and that de-identification keeps every other byte.
func checkWhole(t *testing.T, note string, ents []tagging.Entity) {
	t.Helper()
	last := 0
	tail := false
	for i, e := range ents {
		if e.ByteStart < last || e.ByteEnd < e.ByteStart || e.ByteEnd > len(note) || e.Text != note[e.ByteStart:e.ByteEnd] {
			t.Fatalf("entity %d out of order or place: %+v", i, e)
		}
		last = e.ByteEnd
		tail = tail || e.ByteStart > len(note)*9/10
	}
	if !tail {
		t.Fatalf("no entity in the last tenth of a %d-byte note: truncated?", len(note))
	}
	reps, err := tagging.Plan(note, ents, tagging.DeidOptions{Mode: tagging.Redact})
	if err != nil {
		t.Fatal(err)
	}
	out := tagging.Apply(note, reps)
	pos, opos := 0, 0
	for _, r := range reps {
		gap := note[pos:r.ByteStart]
		if !strings.HasPrefix(out[opos:], gap+r.With) {
			t.Fatalf("non-PHI bytes before %d changed", r.ByteStart)
		}
		opos += len(gap) + len(r.With)
		pos = r.ByteEnd
	}
	if out[opos:] != note[pos:] {
		t.Fatal("tail changed")
	}
}

// A 64 KB note (about 20,000 tokens, ~50 windows; 16 KB under the race detector) is tagged
// whole with the demo model; with -long, a 1 MB one (~300,000 tokens) too.
func TestLongNote(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	m, tok := demo(t)
	p, err := tagging.New(m, tok, tagging.Options{Aggregation: tagging.AggregateFirst, BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{64 << 10}
	if raceEnabled {
		sizes[0] = 16 << 10
	}
	if *longNote {
		sizes = append(sizes, 1<<20)
	}
	for _, n := range sizes {
		note := bigNote(t, n)
		ents, err := p.Tag(context.Background(), note)
		if err != nil {
			t.Fatal(err)
		}
		checkWhole(t, note, ents)
		t.Logf("%d bytes: %d entities", len(note), len(ents))
	}
}

// Many goroutines share one pipeline and one model (run with -race).
func TestConcurrentDemo(t *testing.T) {
	m, tok := demo(t)
	p, err := tagging.New(m, tok, tagging.Options{Aggregation: tagging.AggregateAverage, Stride: 32})
	if err != nil {
		t.Fatal(err)
	}
	texts := demoTexts(t)
	ids := []string{"s001", "s003", "s007", "s013", "s032"} // s032: 511 tokens, two windows
	want := map[string][]tagging.Entity{}
	for _, id := range ids {
		if want[id], err = p.Tag(context.Background(), texts[id]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 {
				id := ids[(g+k)%len(ids)]
				got, err := p.Tag(context.Background(), texts[id])
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want[id]) {
					errs <- fmt.Errorf("%s: different entities under concurrency", id)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkPipelineDemo measures notes per second through the whole pipeline (tokenize,
// windows, model, aggregation) on the demo model: a short note (149 tokens, one window) and
// a discharge summary (996 tokens, three windows with the default stride).
func BenchmarkPipelineDemo(b *testing.B) {
	m, tok := demo(b)
	p, err := tagging.New(m, tok, tagging.Options{Aggregation: tagging.AggregateFirst})
	if err != nil {
		b.Fatal(err)
	}
	texts := demoTexts(b)
	for _, c := range []struct{ name, id string }{{"short149tok", "s001"}, {"discharge996tok", "s020"}} {
		text := texts[c.id]
		toks, err := tok.Tokenize(text)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Tag(context.Background(), text); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/s, "notes/s")
			b.ReportMetric(float64(b.N*len(toks))/s, "tokens/s")
		})
	}
	// Eight short notes per TagMany call: their windows share model calls.
	notes := make([]string, 8)
	ntok := 0
	for i := range notes {
		notes[i] = texts[[]string{"s001", "s003", "s007", "s009", "s012", "s013", "s018", "s024"}[i]]
		toks, _ := tok.Tokenize(notes[i])
		ntok += len(toks)
	}
	b.Run("many8short", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.TagMany(context.Background(), notes); err != nil {
				b.Fatal(err)
			}
		}
		s := b.Elapsed().Seconds()
		b.ReportMetric(float64(b.N*len(notes))/s, "notes/s")
		b.ReportMetric(float64(b.N*ntok)/s, "tokens/s")
	})
}

func TestDemoTokenizerAdapter(t *testing.T) {
	_, tok := demo(t)
	ids, types, special := tok.Frame([]int{7, 8})
	if !reflect.DeepEqual(ids, []int{101, 7, 8, 102}) || !reflect.DeepEqual(types, []int{0, 0, 0, 0}) ||
		!reflect.DeepEqual(special, []bool{true, false, false, true}) {
		t.Errorf("Frame: %v %v %v", ids, types, special)
	}
	if tok.UnkID() != 100 || tok.PadID() != 0 || tok.SubwordPrefix() != "##" || tagging.TokenizerMaxLength(tok) != 512 {
		t.Errorf("unk %d pad %d prefix %q max %d", tok.UnkID(), tok.PadID(), tok.SubwordPrefix(), tagging.TokenizerMaxLength(tok))
	}
	const text = "Zoë Reacher\x00 [UNK]"
	toks, err := tok.Tokenize(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Start < 0 || tk.End > len(text) || tk.Start >= tk.End {
			t.Fatalf("token %+v", tk)
		}
	}
	if toks[0].Piece != "Z" || toks[len(toks)-1].ID != 100 || text[toks[len(toks)-1].Start:toks[len(toks)-1].End] != "[UNK]" {
		t.Errorf("tokens %+v", toks)
	}
	if got := tok.JoinPieces([]string{"Re", "##ache", "##r", ","}); got != "Reacher," {
		t.Errorf("JoinPieces %q", got)
	}
	if _, err := tok.Tokenize("a\xffb"); err == nil {
		t.Error("invalid UTF-8 accepted by the tokenizer")
	}
}
