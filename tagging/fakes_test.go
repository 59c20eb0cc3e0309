package tagging

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// fakeTok is a small WordPiece-like tokenizer: words are runs of letters and digits, every
// other non-space character is a word of its own, and words split into pieces of at most
// four characters, continuations prefixed with "##". A word containing '?' is unknown.
type fakeTok struct{}

const (
	fakePad = 0
	fakeUnk = 1
	fakeCLS = 2
	fakeSEP = 3
)

func fakeID(piece string) int {
	h := fnv.New32a()
	h.Write([]byte(piece))
	return 10 + int(h.Sum32()%1_000_000)
}

func (fakeTok) Tokenize(text string) ([]Token, error) {
	var out []Token
	emitWord := func(start, end int) {
		w := text[start:end]
		if strings.ContainsRune(w, '?') {
			out = append(out, Token{ID: fakeUnk, Piece: "[UNK]", Start: start, End: end})
			return
		}
		pos, n := start, 0
		for i := start; i < end; {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			n++
			if n == 4 || i == end {
				piece := text[pos:i]
				if pos > start {
					piece = "##" + piece
				}
				out = append(out, Token{ID: fakeID(piece), Piece: piece, Start: pos, End: i})
				pos, n = i, 0
			}
		}
	}
	wordStart := -1
	for i, r := range text {
		alnum := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '?'
		if alnum {
			if wordStart < 0 {
				wordStart = i
			}
			continue
		}
		if wordStart >= 0 {
			emitWord(wordStart, i)
			wordStart = -1
		}
		if !unicode.IsSpace(r) {
			emitWord(i, i+utf8.RuneLen(r))
		}
	}
	if wordStart >= 0 {
		emitWord(wordStart, len(text))
	}
	return out, nil
}

func (fakeTok) Frame(content []int) ([]int, []int, []bool) {
	ids := append(append([]int{fakeCLS}, content...), fakeSEP)
	special := make([]bool, len(ids))
	special[0], special[len(ids)-1] = true, true
	return ids, make([]int, len(ids)), special
}

func (fakeTok) PadID() int            { return fakePad }
func (fakeTok) UnkID() int            { return fakeUnk }
func (fakeTok) SubwordPrefix() string { return "##" }

func (fakeTok) JoinPieces(pieces []string) string { return joinWordPiece(pieces, "##", true) }

// fakeModel returns fixed logits per token id: table[id] when present, else a confident O
// (label 0). With edge > 0, a token within edge positions of its window's real edges gets
// label edgeLabel instead, which lets tests see which window a prediction came from.
type fakeModel struct {
	labels    []string
	maxLen    int
	table     map[int][]float32
	edge      int
	edgeLabel int
	calls     atomic.Int64
	windows   atomic.Int64
	fail      error
}

func (m *fakeModel) Labels() []string { return m.labels }
func (m *fakeModel) MaxLength() int   { return m.maxLen }

func (m *fakeModel) Logits(ctx context.Context, in EncodedBatch) ([][][]float32, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	m.calls.Add(1)
	m.windows.Add(int64(len(in.IDs)))
	out := make([][][]float32, len(in.IDs))
	for b, ids := range in.IDs {
		if len(ids) > m.maxLen {
			return nil, fmt.Errorf("fake: window of %d > %d", len(ids), m.maxLen)
		}
		real := 0
		for _, v := range in.Mask[b] {
			real += v
		}
		out[b] = make([][]float32, len(ids))
		for t, id := range ids {
			row := make([]float32, len(m.labels))
			switch v, ok := m.table[id]; {
			case m.edge > 0 && in.Mask[b][t] == 1 && min(t, real-1-t) < m.edge:
				row[m.edgeLabel] = 8
			case ok:
				copy(row, v)
			default:
				row[0] = 6
			}
			out[b][t] = row
		}
	}
	return out, nil
}

// logitsFor returns a logit row that makes label idx most likely with probability close
// to p (the other labels share the rest equally).
func logitsFor(n, idx int, p float64) []float32 {
	row := make([]float32, n)
	rest := (1 - p) / float64(n-1)
	for i := range row {
		if i == idx {
			row[i] = float32(math.Log(p))
		} else {
			row[i] = float32(math.Log(rest))
		}
	}
	return row
}

// joinWordPiece is Hugging Face's WordPiece decoder (fakeTok's JoinPieces): pieces after the first lose their
// prefix or get a space before them, then (with cleanup) each piece's " ." " ," and the like
// lose their space.
func joinWordPiece(pieces []string, prefix string, cleanup bool) string {
	var b strings.Builder
	for i, p := range pieces {
		if i > 0 {
			if strings.HasPrefix(p, prefix) {
				p = strings.Replace(p, prefix, "", 1)
			} else {
				p = " " + p
			}
		}
		if cleanup {
			for _, r := range wordPieceCleanup {
				p = strings.ReplaceAll(p, r[0], r[1])
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

var wordPieceCleanup = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
	{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}
