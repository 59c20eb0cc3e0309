package tagging

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// Aggregation is how token predictions become entities, with Hugging Face's semantics
// (transformers v4.39.1 TokenClassificationPipeline, aggregation_strategy).
type Aggregation int

const (
	// AggregateNone reports every token that is not ignored, with its full label ("B-NAME").
	AggregateNone Aggregation = iota
	// AggregateSimple groups adjacent tokens whose tags continue one another; the score
	// is the mean of the tokens' scores. A word may be split between entities.
	AggregateSimple
	// AggregateFirst labels each word with its first token's prediction, then groups.
	AggregateFirst
	// AggregateAverage labels each word with the argmax of its tokens' mean scores.
	AggregateAverage
	// AggregateMax labels each word with the prediction of its most confident token.
	AggregateMax
)

// ParseAggregation maps "none", "simple", "first", "average", "max" to an Aggregation.
func ParseAggregation(s string) (Aggregation, error) {
	switch strings.ToLower(s) {
	case "none":
		return AggregateNone, nil
	case "simple":
		return AggregateSimple, nil
	case "first":
		return AggregateFirst, nil
	case "average":
		return AggregateAverage, nil
	case "max":
		return AggregateMax, nil
	}
	return 0, fmt.Errorf("tagging: unknown aggregation %q (want none, simple, first, average or max)", s)
}

func (a Aggregation) String() string {
	switch a {
	case AggregateNone:
		return "none"
	case AggregateSimple:
		return "simple"
	case AggregateFirst:
		return "first"
	case AggregateAverage:
		return "average"
	case AggregateMax:
		return "max"
	}
	return fmt.Sprintf("Aggregation(%d)", int(a))
}

// Entity is one tagged span of a text.
type Entity struct {
	// Label is the entity type ("NAME") when tokens are aggregated, the token's full label
	// ("B-NAME") with AggregateNone: Hugging Face's entity_group and entity.
	Label string `json:"label"`
	// Type is the entity type without its position prefix, whatever the aggregation.
	Type  string  `json:"-"`
	Score float64 `json:"score"`
	// Word is the span's tokens joined back by the tokenizer's decoder (may differ from Text:
	// "##ing", "2020 - 01 - 05").
	Word string `json:"word"`
	// Index is the token's position in its window, special tokens counted (the position
	// in the whole token sequence, as if it were one window, for windowed texts tagged
	// with MostContext); only with AggregateNone, -1 otherwise.
	Index int `json:"index"`
	// Start and End are the span in Unicode code points (Python string indices, Hugging
	// Face's start and end); ByteStart and ByteEnd in UTF-8 bytes (Go string indices).
	Start     int `json:"start"`
	End       int `json:"end"`
	ByteStart int `json:"byte_start"`
	ByteEnd   int `json:"byte_end"`
	// Text is the span of the input, text[ByteStart:ByteEnd].
	Text string `json:"text"`
}

// MarshalJSON omits index for aggregated entities.
func (e Entity) MarshalJSON() ([]byte, error) {
	type plain Entity
	if e.Index >= 0 {
		return json.Marshal(plain(e))
	}
	return json.Marshal(struct {
		plain
		Index *int `json:"index,omitempty"`
	}{plain: plain(e)})
}

// preToken is one content token with its probabilities (Hugging Face's pre_entity).
type preToken struct {
	index      int
	piece      string // vocabulary string, or the text itself for the unknown token
	start, end int    // bytes
	cstart     int    // code points
	cend       int
	scores     []float32
	subword    bool // continues the previous token's word
}

// scored is a token or a word with its decided label.
type scored struct {
	label      int
	score      float64
	index      int
	word       string
	start, end int
	cstart     int
	cend       int
}

// decider turns a probability vector into a label: argmax, or recall-biased thresholds.
type decider struct {
	outside int
	tags    []Tag
	// thresholds[i] > 0: label i wins over the outside label when P(outside) < thresholds[i]
	// and label i is the best non-outside label.
	thresholds []float64
}

func (d *decider) decide(p []float32) int {
	best := argmax(p)
	if d.thresholds == nil || d.outside < 0 || best != d.outside {
		return best
	}
	alt := -1
	for i, v := range p {
		if i != d.outside && (alt < 0 || v > p[alt]) {
			alt = i
		}
	}
	if alt >= 0 && d.thresholds[alt] > 0 && float64(p[d.outside]) < d.thresholds[alt] {
		return alt
	}
	return best
}

// argmax returns the first index of the largest value, as numpy.argmax.
func argmax(p []float32) int {
	best := 0
	for i := 1; i < len(p); i++ {
		if p[i] > p[best] {
			best = i
		}
	}
	return best
}

func maxOf(p []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range p {
		if v > m {
			m = v
		}
	}
	return m
}

// aggregator holds what aggregation needs besides the tokens.
type aggregator struct {
	labels *LabelSet
	dec    *decider
	join   func([]string) string
	ignore map[string]bool
}

// aggregate turns one sequence of tokens into entities: Hugging Face's aggregate followed by
// its ignore_labels filter.
func (a *aggregator) aggregate(pre []preToken, strategy Aggregation, text string) ([]Entity, error) {
	var items []scored
	switch strategy {
	case AggregateNone, AggregateSimple:
		items = make([]scored, len(pre))
		for i, t := range pre {
			l := a.dec.decide(t.scores)
			items[i] = scored{label: l, score: float64(t.scores[l]), index: t.index, word: t.piece,
				start: t.start, end: t.end, cstart: t.cstart, cend: t.cend}
		}
	case AggregateFirst, AggregateAverage, AggregateMax:
		items = a.aggregateWords(pre, strategy)
	default:
		return nil, fmt.Errorf("tagging: invalid aggregation %d", int(strategy))
	}
	var out []Entity
	if strategy == AggregateNone {
		for _, it := range items {
			lab := a.labels.Labels[it.label]
			typ := a.labels.Tags[it.label].Type
			if a.ignore[lab] || a.ignore[typ] {
				continue
			}
			out = append(out, Entity{Label: lab, Type: typ, Score: it.score, Word: it.word, Index: it.index,
				Start: it.cstart, End: it.cend, ByteStart: it.start, ByteEnd: it.end, Text: text[it.start:it.end]})
		}
		return out, nil
	}
	for lo := 0; lo < len(items); {
		hi := lo + 1
		for hi < len(items) && continues(a.labels.Tags[items[hi-1].label], a.labels.Tags[items[hi].label]) {
			hi++
		}
		typ := a.labels.Tags[items[lo].label].Type
		if !a.ignore[typ] {
			var sum float64
			words := make([]string, hi-lo)
			for i, it := range items[lo:hi] {
				sum += it.score
				words[i] = it.word
			}
			first, last := items[lo], items[hi-1]
			out = append(out, Entity{Label: typ, Type: typ, Score: sum / float64(hi-lo), Word: a.join(words), Index: -1,
				Start: first.cstart, End: last.cend, ByteStart: first.start, ByteEnd: last.end, Text: text[first.start:last.end]})
		}
		lo = hi
	}
	return out, nil
}

// aggregateWords gives every word one label (Hugging Face's aggregate_words): a word is a
// token that is not a subword followed by its subwords.
func (a *aggregator) aggregateWords(pre []preToken, strategy Aggregation) []scored {
	var out []scored
	for lo := 0; lo < len(pre); {
		hi := lo + 1
		for hi < len(pre) && pre[hi].subword {
			hi++
		}
		w := pre[lo:hi]
		pieces := make([]string, len(w))
		for i, t := range w {
			pieces[i] = t.piece
		}
		var label int
		var score float64
		switch strategy {
		case AggregateFirst:
			label = a.dec.decide(w[0].scores)
			score = float64(w[0].scores[label])
		case AggregateMax:
			best := 0
			bestMax := maxOf(w[0].scores)
			for i := 1; i < len(w); i++ {
				if m := maxOf(w[i].scores); m > bestMax {
					best, bestMax = i, m
				}
			}
			label = a.dec.decide(w[best].scores)
			score = float64(w[best].scores[label])
		case AggregateAverage:
			// float32 accumulation and division, as numpy's nanmean over a float32 stack.
			avg := make([]float32, len(w[0].scores))
			for _, t := range w {
				for j, v := range t.scores {
					avg[j] += v
				}
			}
			for j := range avg {
				avg[j] /= float32(len(w))
			}
			label = a.dec.decide(avg)
			score = float64(avg[label])
		}
		out = append(out, scored{label: label, score: score, index: -1, word: a.join(pieces),
			start: w[0].start, end: w[len(w)-1].end, cstart: w[0].cstart, cend: w[len(w)-1].cend})
		lo = hi
	}
	return out
}

// isSubword is Hugging Face's test for a token that continues a word. With a
// continuing-subword prefix (WordPiece) a token is a subword when its vocabulary string
// and its text differ in length (in code points); otherwise (byte-level BPE, Unigram) when
// it starts inside the text and neither it nor the character before it is a space.
func isSubword(piece, text string, start, end int, prefix string) bool {
	if prefix != "" {
		return utf8.RuneCountInString(piece) != utf8.RuneCountInString(text[start:end])
	}
	if start == 0 {
		return false
	}
	// Python's sentence[start-1:start+1]: the character before the token and its first one.
	if prev, _ := utf8.DecodeLastRuneInString(text[:start]); prev == ' ' {
		return false
	}
	if r, _ := utf8.DecodeRuneInString(text[start:]); r == ' ' {
		return false
	}
	return true
}

// mergeOverlapping is Hugging Face's aggregate_overlapping_entities, applied to the
// entities of all windows of a text: entities sorted by start (stably); an entity that
// starts inside the one kept before it replaces that one when it is longer, or as long and
// with a higher score.
func mergeOverlapping(ents []Entity) []Entity {
	if len(ents) == 0 {
		return ents
	}
	sort.SliceStable(ents, func(i, j int) bool { return ents[i].Start < ents[j].Start })
	var out []Entity
	prev := ents[0]
	for _, e := range ents {
		if prev.Start <= e.Start && e.Start < prev.End {
			cur, prevLen := e.End-e.Start, prev.End-prev.Start
			if cur > prevLen || (cur == prevLen && e.Score > prev.Score) {
				prev = e
			}
		} else {
			out = append(out, prev)
			prev = e
		}
	}
	return append(out, prev)
}
