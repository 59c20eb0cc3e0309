package tagging

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

var entLabels = []string{"O", "B-ENT", "I-ENT", "B-NAME", "I-NAME"}

// microsoft is Hugging Face's documentation example: "Microsoft company" where the
// tokens of one word disagree.
func microsoftModel() *fakeModel {
	n := len(entLabels)
	return &fakeModel{labels: entLabels, maxLen: 64, table: map[int][]float32{
		fakeID("Micr"):   logitsFor(n, 1, 0.9),
		fakeID("##osof"): logitsFor(n, 4, 0.6),
		fakeID("##t"):    logitsFor(n, 2, 0.7),
		fakeID("comp"):   logitsFor(n, 2, 0.8),
		fakeID("##any"):  logitsFor(n, 2, 0.5),
	}}
}

func mustNew(t *testing.T, m TokenClassifier, opts Options) *Pipeline {
	t.Helper()
	p, err := New(m, fakeTok{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type want struct {
	label      string
	score      float64
	word       string
	start, end int
	index      int
}

func checkEntities(t *testing.T, text string, got []Entity, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d entities %+v, want %d", len(got), got, len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Label != w.label || g.Word != w.word || g.ByteStart != w.start || g.ByteEnd != w.end || g.Index != w.index ||
			math.Abs(g.Score-w.score) > 1e-6 || g.Text != text[w.start:w.end] {
			t.Errorf("entity %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestAggregationStrategies(t *testing.T) {
	const text = "Microsoft company"
	avgMicro := (0.9 + 0.1 + 0.075) / 3
	cases := []struct {
		agg  Aggregation
		want []want
	}{
		{AggregateNone, []want{
			{"B-ENT", 0.9, "Micr", 0, 4, 1},
			{"I-NAME", 0.6, "##osof", 4, 8, 2},
			{"I-ENT", 0.7, "##t", 8, 9, 3},
			{"I-ENT", 0.8, "comp", 10, 14, 4},
			{"I-ENT", 0.5, "##any", 14, 17, 5},
		}},
		{AggregateSimple, []want{
			{"ENT", 0.9, "Micr", 0, 4, -1},
			{"NAME", 0.6, "##osof", 4, 8, -1},
			{"ENT", (0.7 + 0.8 + 0.5) / 3, "##t company", 8, 17, -1},
		}},
		{AggregateFirst, []want{{"ENT", (0.9 + 0.8) / 2, "Microsoft company", 0, 17, -1}}},
		{AggregateMax, []want{{"ENT", (0.9 + 0.8) / 2, "Microsoft company", 0, 17, -1}}},
		{AggregateAverage, []want{{"ENT", (avgMicro + 0.65) / 2, "Microsoft company", 0, 17, -1}}},
	}
	for _, c := range cases {
		t.Run(c.agg.String(), func(t *testing.T) {
			p := mustNew(t, microsoftModel(), Options{Aggregation: c.agg})
			got, err := p.Tag(context.Background(), text)
			if err != nil {
				t.Fatal(err)
			}
			checkEntities(t, text, got, c.want)
		})
	}
}

func TestIgnoreLabels(t *testing.T) {
	const text = "Microsoft company"
	p := mustNew(t, microsoftModel(), Options{Aggregation: AggregateSimple, IgnoreLabels: []string{"O", "NAME"}})
	got, err := p.Tag(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	checkEntities(t, text, got, []want{
		{"ENT", 0.9, "Micr", 0, 4, -1},
		{"ENT", (0.7 + 0.8 + 0.5) / 3, "##t company", 8, 17, -1},
	})
	// A type also filters token-level labels; an empty list keeps the outside label.
	p = mustNew(t, microsoftModel(), Options{Aggregation: AggregateNone, IgnoreLabels: []string{"ENT"}})
	got, err = p.Tag(context.Background(), text+" x")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Label != "I-NAME" || got[1].Label != "O" || got[1].Word != "x" {
		t.Fatalf("got %+v", got)
	}
}

func TestUnknownTokenAndOffsets(t *testing.T) {
	n := len(entLabels)
	m := &fakeModel{labels: entLabels, maxLen: 64, table: map[int][]float32{
		fakeUnk:        logitsFor(n, 3, 0.8),
		fakeID("Zoëa"): logitsFor(n, 3, 0.7),
		fakeID("##b"):  logitsFor(n, 4, 0.6),
	}}
	// "?ab" is unknown: its word is the text itself and it starts a word; "Zoëab" is two
	// pieces; offsets are in bytes and code points.
	const text = "é ?ab Zoëab ."
	p := mustNew(t, m, Options{Aggregation: AggregateFirst})
	got, err := p.Tag(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Label != "NAME" || got[0].Word != "?ab" || got[0].ByteStart != 3 || got[0].ByteEnd != 6 || got[0].Start != 2 || got[0].End != 5 {
		t.Errorf("unknown token entity %+v", got[0])
	}
	if got[1].Label != "NAME" || got[1].Word != "Zoëab" || got[1].ByteStart != 7 || got[1].ByteEnd != 13 || got[1].Start != 6 || got[1].End != 11 {
		t.Errorf("multi-piece entity %+v", got[1])
	}
	p = mustNew(t, m, Options{Aggregation: AggregateSimple})
	got, err = p.Tag(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	// B-NAME(?ab) then B-NAME(Zoëa): B starts a new group; I-NAME(##b) continues it.
	if len(got) != 2 || got[1].Word != "Zoëab" || math.Abs(got[1].Score-0.65) > 1e-6 {
		t.Fatalf("got %+v", got)
	}
}

func TestIsSubwordWithoutPrefix(t *testing.T) {
	const text = "New York,ok  x"
	cases := []struct {
		start int
		want  bool
	}{{0, false}, {4, false}, {5, true}, {8, true}, {9, true}, {12, false}, {13, false}, {14, true}}
	for _, c := range cases {
		if got := isSubword("zz", text, c.start, min(c.start+1, len(text)), ""); got != c.want {
			t.Errorf("start %d: got %v want %v", c.start, got, c.want)
		}
	}
	// With a prefix the lengths decide.
	if !isSubword("##ab", "xab", 1, 3, "##") || isSubword("ab", "xab", 1, 3, "##") {
		t.Error("prefix rule")
	}
}

func TestWindowsLikeHuggingFace(t *testing.T) {
	m := &fakeModel{labels: entLabels, maxLen: 512}
	p := mustNew(t, m, Options{Aggregation: AggregateSimple, Windowing: HFOverlap, Stride: 64})
	for _, c := range []struct{ n, windows int }{{0, 1}, {1, 1}, {510, 1}, {511, 2}, {956, 2}, {957, 3}, {1507, 4}, {2527, 6}} {
		ws := p.windows(c.n)
		if len(ws) != c.windows {
			t.Errorf("%d tokens: %d windows, want %d", c.n, len(ws), c.windows)
			continue
		}
		for i, w := range ws {
			if w.lo != i*446 || w.hi != min(w.lo+510, c.n) {
				t.Errorf("%d tokens: window %d = %v", c.n, i, w)
			}
		}
	}
	p = mustNew(t, m, Options{Windowing: Truncate, Stride: 64})
	if ws := p.windows(2000); len(ws) != 1 || ws[0] != (window{0, 510}) {
		t.Errorf("truncate: %v", ws)
	}
	if _, err := New(m, fakeTok{}, Options{Stride: 510}); err == nil {
		t.Error("stride as long as the window accepted")
	}
	if _, err := New(m, fakeTok{}, Options{Windowing: HFOverlap}); err == nil {
		t.Error("HFOverlap with aggregation none accepted")
	}
}

// randomNote builds a text of n words where some words are entity tokens of the table.
func randomNote(r *rand.Rand, n int) string {
	words := []string{"the", "patient", "was", "seen", "by", "Smith", "Johnson", "on", "March", "Boston", "in", "clinic", "follow-up", "MRN", "12345678", ",", ".", "Zoë", "Kim", "?x"}
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString([]string{" ", " ", " ", "\n", "  "}[r.IntN(5)])
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

func noteTable() map[int][]float32 {
	n := len(entLabels)
	return map[int][]float32{
		fakeID("Smit"): logitsFor(n, 3, 0.8), fakeID("##h"): logitsFor(n, 4, 0.55),
		fakeID("John"): logitsFor(n, 3, 0.7), fakeID("##son"): logitsFor(n, 4, 0.45),
		fakeID("Marc"): logitsFor(n, 1, 0.6), fakeID("Bost"): logitsFor(n, 1, 0.9), fakeID("##on"): logitsFor(n, 2, 0.5),
		fakeID("1234"): logitsFor(n, 2, 0.7), fakeID("##5678"): logitsFor(n, 2, 0.4),
		fakeID("Zoë"): logitsFor(n, 3, 0.9), fakeID("Kim"): logitsFor(n, 4, 0.35), fakeUnk: logitsFor(n, 2, 0.3),
		fakeID("-"): logitsFor(n, 4, 0.3),
	}
}

// With a model whose predictions do not depend on context, windowing with MostContext must
// give exactly what one window over the whole text gives.
func TestMostContextMatchesOneWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 5 {
		text := randomNote(r, 150+trial*40)
		for agg := AggregateNone; agg <= AggregateMax; agg++ {
			whole := mustNew(t, &fakeModel{labels: entLabels, maxLen: 4096, table: noteTable()}, Options{Aggregation: agg})
			small := &fakeModel{labels: entLabels, maxLen: 12 + trial, table: noteTable()}
			win := mustNew(t, small, Options{Aggregation: agg, Stride: 3, BatchSize: 3})
			a, err := whole.Tag(context.Background(), text)
			if err != nil {
				t.Fatal(err)
			}
			b, err := win.Tag(context.Background(), text)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) == 0 || !reflect.DeepEqual(a, b) {
				t.Fatalf("trial %d %v: one window gives %d entities, windows give %d\n%+v\n%+v", trial, agg, len(a), len(b), a, b)
			}
			if small.windows.Load() < 10 {
				t.Fatalf("only %d windows", small.windows.Load())
			}
		}
	}
}

// A model that flags tokens at window edges shows which window each prediction came from:
// with MostContext only the text's own first and last tokens sit at an edge.
func TestMostContextPicksInnerWindow(t *testing.T) {
	words := make([]string, 60)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", i)
	}
	text := strings.Join(words, " ")
	newModel := func() *fakeModel {
		return &fakeModel{labels: entLabels, maxLen: 12, edge: 2, edgeLabel: 1}
	}
	p := mustNew(t, newModel(), Options{Stride: 6})
	got, err := p.Tag(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Word != "w0" || got[1].Word != "w59" || got[0].Index != 1 || got[1].Index != 60 {
		t.Fatalf("got %+v", got)
	}
	// Hugging Face's merge keeps window-edge predictions.
	p = mustNew(t, newModel(), Options{Aggregation: AggregateSimple, Windowing: HFOverlap, Stride: 6})
	got, err = p.Tag(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) <= 2 {
		t.Fatalf("HFOverlap got %+v", got)
	}
	p = mustNew(t, newModel(), Options{Windowing: Truncate})
	got, err = p.Tag(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Word != "w0" || got[1].Word != "w9" {
		t.Fatalf("Truncate got %+v", got)
	}
}

func TestMergeOverlapping(t *testing.T) {
	e := func(s, end int, score float64, label string) Entity {
		return Entity{Label: label, Start: s, End: end, Score: score}
	}
	got := mergeOverlapping([]Entity{
		e(10, 12, 0.5, "a"), e(0, 4, 0.9, "b"), e(2, 8, 0.1, "c"), // c starts inside b and is longer
		e(10, 12, 0.7, "d"),  // same span as a, higher score
		e(11, 12, 0.99, "e"), // inside d, shorter
		e(20, 22, 0.5, "f"),
	})
	var labels []string
	for _, g := range got {
		labels = append(labels, g.Label)
	}
	if strings.Join(labels, "") != "cdf" {
		t.Errorf("merged %v", labels)
	}
	// Hugging Face's loop compares the first entity with itself; an empty first entity is
	// therefore reported twice. Kept for exactness.
	got = mergeOverlapping([]Entity{e(3, 3, 0.5, "z"), e(5, 6, 0.5, "y")})
	if len(got) != 3 {
		t.Errorf("zero-length first entity: %+v", got)
	}
}

func TestThresholds(t *testing.T) {
	n := len(entLabels)
	row := []float32{0, 0, 0, 0, 0}
	// P(O)=0.6, P(B-NAME)=0.3, the others 0.1/3.
	for i, p := range []float64{0.6, 0.1 / 3, 0.1 / 3, 0.3, 0.1 / 3} {
		row[i] = float32(math.Log(p))
	}
	m := &fakeModel{labels: entLabels, maxLen: 32, table: map[int][]float32{fakeID("Ann"): row, fakeID("Bo"): logitsFor(n, 0, 0.95)}}
	const text = "Ann Bo"
	for _, c := range []struct {
		opts Options
		want int
	}{
		{Options{}, 0},
		{Options{Threshold: 0.5}, 0},
		{Options{Threshold: 0.7}, 1},
		{Options{Thresholds: map[string]float64{"NAME": 0.7}}, 1},
		{Options{Threshold: 0.7, Thresholds: map[string]float64{"NAME": 0.5}}, 0},
		{Options{Threshold: 0.99}, 2}, // Bo: P(O)=0.95 < 0.99
		{Options{Thresholds: map[string]float64{"NAME": 0.5, "B-NAME": 0.7}}, 1},
		{Options{Thresholds: map[string]float64{"NAME": 0.7, "B-NAME": 0.5}}, 0},
	} {
		p := mustNew(t, m, c.opts)
		got, err := p.Tag(context.Background(), text)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("%+v: got %+v", c.opts, got)
		}
		if len(got) > 0 && (got[0].Label != "B-NAME" || math.Abs(got[0].Score-0.3) > 1e-6) {
			t.Errorf("%+v: got %+v", c.opts, got[0])
		}
	}
	for _, bad := range []Options{
		{Thresholds: map[string]float64{"PHONE": 0.5}},
		{Thresholds: map[string]float64{"O": 0.5}},
		{Threshold: 1.5},
		{Thresholds: map[string]float64{"NAME": -1}},
	} {
		if _, err := New(m, fakeTok{}, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	noO := &fakeModel{labels: []string{"B-X", "I-X"}, maxLen: 32}
	if _, err := New(noO, fakeTok{}, Options{Threshold: 0.5}); err == nil {
		t.Error("threshold without an O label accepted")
	}
}

func TestSchemes(t *testing.T) {
	for _, c := range []struct {
		labels []string
		want   Scheme
	}{
		{[]string{"O", "B-X", "I-X"}, BIO},
		{[]string{"O", "B-X"}, BIO},
		{[]string{"O", "I-X", "I-Y"}, IO},
		{[]string{"O", "PATIENT", "DATE"}, IO},
		{[]string{"O", "B-X", "I-X", "E-X", "S-X"}, BIOES},
		{[]string{"O", "B-X", "I-X", "L-X", "U-X"}, BILOU},
		{[]string{"O", "b-x", "i-x"}, BIO},
	} {
		ls, err := ParseLabels(c.labels)
		if err != nil {
			t.Errorf("%v: %v", c.labels, err)
			continue
		}
		if ls.Scheme != c.want {
			t.Errorf("%v: %v, want %v", c.labels, ls.Scheme, c.want)
		}
	}
	for _, bad := range [][]string{
		nil,
		{"O", "B-X", "E-X", "L-X"},
		{"O", "X-NAME"},
		{"O", "B-"},
		{"LABEL_0", "LABEL_1"},
		{"O", "B-X", "O"},
		{"O", ""},
	} {
		if _, err := ParseLabels(bad); !errors.Is(err, ErrUnknownScheme) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
	if _, err := New(&fakeModel{labels: []string{"O", "Q-X"}, maxLen: 8}, fakeTok{}, Options{}); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("New with unknown scheme: %v", err)
	}
}

func TestBIOESGrouping(t *testing.T) {
	labels := []string{"O", "B-X", "I-X", "E-X", "S-X"}
	n := len(labels)
	m := &fakeModel{labels: labels, maxLen: 64, table: map[int][]float32{
		fakeID("s"): logitsFor(n, 4, 0.9), fakeID("b"): logitsFor(n, 1, 0.9),
		fakeID("i"): logitsFor(n, 2, 0.9), fakeID("e"): logitsFor(n, 3, 0.9),
	}}
	p := mustNew(t, m, Options{Aggregation: AggregateSimple})
	got, err := p.Tag(context.Background(), "s s b i e i b e o e")
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for _, g := range got {
		words = append(words, g.Word)
	}
	if strings.Join(words, "|") != "s|s|b i e|i|b e|e" {
		t.Errorf("groups %q", words)
	}
}

func TestEmptyAndInvalidInput(t *testing.T) {
	m := microsoftModel()
	p := mustNew(t, m, Options{Aggregation: AggregateSimple})
	for _, text := range []string{"", " ", " \t\r\n  \n"} {
		got, err := p.Tag(context.Background(), text)
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", text, got, err)
		}
	}
	if m.calls.Load() != 0 {
		t.Errorf("model called %d times for empty texts", m.calls.Load())
	}
	if _, err := p.Tag(context.Background(), "Micr\xffosoft"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestModelErrors(t *testing.T) {
	boom := errors.New("boom")
	m := &fakeModel{labels: entLabels, maxLen: 16, fail: boom}
	p := mustNew(t, m, Options{})
	if _, err := p.Tag(context.Background(), "a b c"); !errors.Is(err, boom) {
		t.Errorf("model error not wrapped: %v", err)
	}
	bad := &shapeModel{fakeModel{labels: entLabels, maxLen: 16}}
	p = mustNew(t, bad, Options{})
	if _, err := p.Tag(context.Background(), "a b c"); err == nil || !strings.Contains(err.Error(), "logits") {
		t.Errorf("wrong logits shape: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = mustNew(t, microsoftModel(), Options{})
	if _, err := p.Tag(ctx, "a b c"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// shapeModel returns one logit too few per token.
type shapeModel struct{ fakeModel }

func (m *shapeModel) Logits(ctx context.Context, in EncodedBatch) ([][][]float32, error) {
	out, err := m.fakeModel.Logits(ctx, in)
	for _, w := range out {
		for t := range w {
			w[t] = w[t][1:]
		}
	}
	return out, err
}

func TestConcurrentTag(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	texts := make([]string, 8)
	for i := range texts {
		texts[i] = randomNote(r, 80+i*10)
	}
	p := mustNew(t, &fakeModel{labels: entLabels, maxLen: 20, table: noteTable()}, Options{Aggregation: AggregateAverage})
	wantAll := make([][]Entity, len(texts))
	for i, text := range texts {
		var err error
		if wantAll[i], err = p.Tag(context.Background(), text); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 4 {
				i := (g + k) % len(texts)
				got, err := p.Tag(context.Background(), texts[i])
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, wantAll[i]) {
					errs <- fmt.Errorf("text %d differs under concurrency", i)
					return
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

// TestJoinWordPiece checks the fake tokenizer's WordPiece join and the real adapter's
// (tokenize's WordPiece decoder, through LoadTokenizer) on the same cases.
func TestJoinWordPiece(t *testing.T) {
	demo, err := LoadTokenizer(filepath.Join("..", "testdata", "models", "deid-demo-en"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pieces []string
		want   string
	}{
		{[]string{"##ys", "##ici"}, "##ysici"},
		{[]string{"March", "3", ",", "2021"}, "March 3, 2021"},
		{[]string{"2020", "-", "01"}, "2020 - 01"},
		{[]string{"Smith", "⊛"}, "Smith ⊛"},
		{[]string{"don", "'", "t", "!"}, "don ' t!"},
		{nil, ""},
	} {
		if got := joinWordPiece(c.pieces, "##", true); got != c.want {
			t.Errorf("%q: %q, want %q", c.pieces, got, c.want)
		}
		if got := demo.JoinPieces(c.pieces); got != c.want {
			t.Errorf("demo tokenizer: %q: %q, want %q", c.pieces, got, c.want)
		}
	}
}

// TagMany batches windows of several texts together and must give what Tag gives per text.
func TestTagManyMatchesTag(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	texts := []string{"", randomNote(r, 5), "  ", randomNote(r, 60), randomNote(r, 3), randomNote(r, 25)}
	for _, opts := range []Options{
		{Aggregation: AggregateFirst, Stride: 3, BatchSize: 3},
		{Aggregation: AggregateSimple, Windowing: HFOverlap, Stride: 4, BatchSize: 2},
		{Aggregation: AggregateNone, Windowing: Truncate, BatchSize: 4},
	} {
		m := &fakeModel{labels: entLabels, maxLen: 14, table: noteTable(), edge: 1, edgeLabel: 4}
		p := mustNew(t, m, opts)
		many, err := p.TagMany(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range texts {
			one, err := p.Tag(context.Background(), text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(one, many[i]) {
				t.Errorf("%+v text %d: TagMany %+v\nTag %+v", opts, i, many[i], one)
			}
		}
	}
	p := mustNew(t, microsoftModel(), Options{})
	if _, err := p.TagMany(context.Background(), []string{"ok", "bad\xff"}); !errors.Is(err, ErrInvalidUTF8) || !strings.Contains(err.Error(), "text 1") {
		t.Errorf("invalid text: %v", err)
	}
}
