package tagging_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/clinfer/clinfer/internal/reftest"
	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/tagging/taggers"
)

// pipelineRefsDir holds model folders with pipeline_reference.jsonl (Hugging Face's own
// TokenClassificationPipeline output); CLINFER_PIPELINE_REFS overrides it.
func pipelineRefsDir() string {
	return reftest.Dir("CLINFER_PIPELINE_REFS", filepath.Join("..", "testdata", "models"))
}

type refEntity struct {
	Entity      string  `json:"entity"`
	EntityGroup string  `json:"entity_group"`
	Score       float64 `json:"score"`
	Word        string  `json:"word"`
	Start       int     `json:"start"`
	End         int     `json:"end"`
	ByteStart   int     `json:"byte_start"`
	ByteEnd     int     `json:"byte_end"`
	Index       *int    `json:"index"`
}

type refRecord struct {
	ID             string      `json:"id"`
	Text           string      `json:"text"`
	Strategy       string      `json:"strategy"`
	Stride         *int        `json:"stride"`
	NumTokens      int         `json:"num_tokens"`
	NumWindows     int         `json:"num_windows"`
	MinTokenMargin *float64    `json:"min_token_margin"`
	Entities       []refEntity `json:"entities"`
}

// TestPipelineReference reproduces Hugging Face's pipeline: labels, words and offsets
// exactly, scores within 1e-4. Records without stride ran Hugging Face's default
// (truncation to one window), reproduced with tagging.Truncate; records with stride use
// tagging.HFOverlap, Hugging Face's merge of overlapping windows. As the model card allows,
// a record that differs passes only if swapping the top two labels at tokens whose
// probability margin is below 1e-4 reproduces it exactly (see nearTieMatch); today every
// record matches without that.
func TestPipelineReference(t *testing.T) {
	root := pipelineRefsDir()
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("pipeline references: %v (set CLINFER_PIPELINE_REFS)", err)
	}
	found := 0
	for _, d := range dirs {
		refPath := filepath.Join(root, d.Name(), "pipeline_reference.jsonl")
		if _, err := os.Stat(refPath); err != nil {
			continue
		}
		found++
		t.Run(d.Name(), func(t *testing.T) { runPipelineRefs(t, filepath.Join(root, d.Name()), refPath) })
	}
	if found == 0 {
		t.Fatalf("no pipeline_reference.jsonl under %s", root)
	}
}

func runPipelineRefs(t *testing.T, dir, refPath string) {
	m, err := taggers.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Every text appears once per strategy with the same windows: run the model once.
	model := &memoModel{TokenClassifier: m, cache: map[string][][]float32{}}
	tok, err := tagging.LoadTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(refPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	pipes := map[string]*tagging.Pipeline{}
	for line := 0; sc.Scan(); line++ {
		var rec refRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		t.Run(strconv.Itoa(line), func(t *testing.T) {
			agg, err := tagging.ParseAggregation(rec.Strategy)
			if err != nil {
				t.Fatal(err)
			}
			opts := tagging.Options{Aggregation: agg, Windowing: tagging.Truncate}
			if rec.Stride != nil {
				opts.Windowing, opts.Stride = tagging.HFOverlap, *rec.Stride
				if *rec.Stride == 0 {
					opts.Stride = -1
				}
			}
			key := rec.Strategy + "/" + opts.Windowing.String() + "/" + strconv.Itoa(opts.Stride)
			p := pipes[key]
			if p == nil {
				if p, err = tagging.New(model, tok, opts); err != nil {
					t.Fatal(err)
				}
				pipes[key] = p
			}
			got, err := p.Tag(context.Background(), rec.Text)
			if err != nil {
				t.Fatal(err)
			}
			msg := compareRef(rec, got)
			if msg == "" {
				return
			}
			if nearTieMatch(t, model, tok, opts, rec) {
				return
			}
			t.Error(msg)
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// compareRef returns the first difference between got and the reference, or "".
func compareRef(rec refRecord, got []tagging.Entity) string {
	for i := range min(len(got), len(rec.Entities)) {
		w, g := rec.Entities[i], got[i]
		label := w.EntityGroup
		if label == "" {
			label = w.Entity
		}
		index := -1
		if w.Index != nil {
			index = *w.Index
		}
		if g.Label != label || g.Word != w.Word || g.Start != w.Start || g.End != w.End ||
			g.ByteStart != w.ByteStart || g.ByteEnd != w.ByteEnd || g.Index != index ||
			math.Abs(g.Score-w.Score) > 1e-4 || g.Text != rec.Text[w.ByteStart:w.ByteEnd] {
			return fmt.Sprintf("%s %s: entity %d\n got %s %.6f %q [%d,%d) bytes [%d,%d) index %d\nwant %s %.6f %q [%d,%d) bytes [%d,%d) index %d",
				rec.ID, rec.Strategy, i, g.Label, g.Score, g.Word, g.Start, g.End, g.ByteStart, g.ByteEnd, g.Index,
				label, w.Score, w.Word, w.Start, w.End, w.ByteStart, w.ByteEnd, index)
		}
	}
	if len(got) != len(rec.Entities) {
		return fmt.Sprintf("%s %s stride %v: %d entities, want %d", rec.ID, rec.Strategy, rec.Stride, len(got), len(rec.Entities))
	}
	return ""
}

// nearTie is the probability margin under which the model card allows a float32
// implementation summing in another order to pick the other label (1e-4, plus slack for
// our margin differing from Hugging Face's by rounding).
const nearTie = 1.1e-4

// nearTieMatch re-runs a mismatching record with the top two labels swapped at tokens whose
// margin is a near tie, in every combination (up to 6 such tokens): the reference is
// matched "only there" if some combination reproduces it exactly.
func nearTieMatch(t *testing.T, model tagging.TokenClassifier, tok tagging.Tokenizer, opts tagging.Options, rec refRecord) bool {
	fm := &flipModel{TokenClassifier: model, seen: map[tieKey]bool{}}
	p, err := tagging.New(fm, tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Tag(context.Background(), rec.Text); err != nil {
		t.Fatal(err)
	}
	ties := fm.ties
	if len(ties) == 0 || len(ties) > 6 {
		return false
	}
	for mask := 1; mask < 1<<len(ties); mask++ {
		fm.flip = map[tieKey]bool{}
		for i, k := range ties {
			if mask&(1<<i) != 0 {
				fm.flip[k] = true
			}
		}
		got, err := p.Tag(context.Background(), rec.Text)
		if err != nil {
			t.Fatal(err)
		}
		if compareRef(rec, got) == "" {
			var pos []int
			for k := range fm.flip {
				pos = append(pos, k.pos)
			}
			t.Logf("%s %s: matches with the top two labels swapped at %d near-tie token(s), window positions %v", rec.ID, rec.Strategy, len(pos), pos)
			return true
		}
	}
	return false
}

type tieKey struct {
	window string
	pos    int
}

// flipModel records near-tie tokens and swaps the two largest logits of those in flip.
type flipModel struct {
	tagging.TokenClassifier
	mu   sync.Mutex
	seen map[tieKey]bool
	ties []tieKey
	flip map[tieKey]bool
}

func (m *flipModel) Logits(ctx context.Context, in tagging.EncodedBatch) ([][][]float32, error) {
	res, err := m.TokenClassifier.Logits(ctx, in)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][][]float32, len(res))
	for b, rows := range res {
		w := fmt.Sprint(in.IDs[b], in.Mask[b])
		out[b] = make([][]float32, len(rows))
		for p, row := range rows {
			out[b][p] = row
			if in.Mask[b][p] == 0 {
				continue
			}
			i1, i2 := top2(row)
			k := tieKey{w, p}
			if probGap(row, i1, i2) < nearTie && !m.seen[k] {
				m.seen[k] = true
				m.ties = append(m.ties, k)
			}
			if m.flip[k] {
				r := append([]float32(nil), row...)
				r[i1], r[i2] = r[i2], r[i1]
				out[b][p] = r
			}
		}
	}
	return out, nil
}

func top2(row []float32) (int, int) {
	i1, i2 := 0, -1
	for i := 1; i < len(row); i++ {
		switch {
		case row[i] > row[i1]:
			i1, i2 = i, i1
		case i2 < 0 || row[i] > row[i2]:
			i2 = i
		}
	}
	return i1, i2
}

// probGap is the difference of the softmax probabilities of labels i and j.
func probGap(row []float32, i, j int) float64 {
	m := float64(row[i])
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	return (1 - math.Exp(float64(row[j])-m)) / sum
}

// memoModel caches logits per window (keyed by its ids and mask).
type memoModel struct {
	tagging.TokenClassifier
	mu    sync.Mutex
	cache map[string][][]float32
}

func (m *memoModel) Logits(ctx context.Context, in tagging.EncodedBatch) ([][][]float32, error) {
	keys := make([]string, len(in.IDs))
	out := make([][][]float32, len(in.IDs))
	m.mu.Lock()
	missing := false
	for b := range in.IDs {
		keys[b] = fmt.Sprint(in.IDs[b], in.Mask[b], in.TypeIDs[b])
		out[b] = m.cache[keys[b]]
		missing = missing || out[b] == nil
	}
	m.mu.Unlock()
	if !missing {
		return out, nil
	}
	res, err := m.TokenClassifier.Logits(ctx, in)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	for b := range res {
		m.cache[keys[b]] = res[b]
	}
	m.mu.Unlock()
	return res, nil
}
