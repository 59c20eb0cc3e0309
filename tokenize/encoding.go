package tokenize

import (
	"errors"
	"fmt"
)

// Offset is a half-open range [Start, End) into the input text. Special tokens and padding
// have {0, 0}.
type Offset struct{ Start, End int }

// Encoding is the result of encoding one text (or text pair). All slices have one entry per
// token.
type Encoding struct {
	IDs               []int
	Tokens            []string
	TypeIDs           []int
	SpecialTokensMask []int // 1 for tokens added by the post-processor (and padding)
	AttentionMask     []int // 0 for padding
	// Offsets are byte offsets into the input string (Go string indices: text[o.Start:o.End]).
	// For a pair, offsets of the second sequence index the second text. For pre-split words,
	// offsets index the word the token came from.
	Offsets []Offset
	// CharOffsets are the same ranges in Unicode code points, which is what Python's
	// offset_mapping reports.
	CharOffsets []Offset
	// WordIDs is the index of the pre-tokenizer word (or, for pre-split input, of the caller's
	// word) each token came from; -1 for special tokens and padding.
	WordIDs []int
	// SequenceIDs is 0 or 1 (first or second text of a pair), -1 for special tokens and padding.
	SequenceIDs []int
	// Overflowing holds the further windows when truncation cut the input, each already
	// post-processed (special tokens added) and padded like this one.
	Overflowing []*Encoding
}

// Len is the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// newEncoding returns an empty encoding with room for n tokens. The int and offset slices
// share two backing arrays (three allocations instead of nine); each slice is capped at n so
// that appending past n reallocates instead of spilling into its neighbor.
func newEncoding(n int) *Encoding {
	ints := make([]int, 6*n)
	offs := make([]Offset, 2*n)
	return &Encoding{
		IDs: ints[0:0:n], TypeIDs: ints[n : n : 2*n], SpecialTokensMask: ints[2*n : 2*n : 3*n],
		AttentionMask: ints[3*n : 3*n : 4*n], WordIDs: ints[4*n : 4*n : 5*n], SequenceIDs: ints[5*n : 5*n : 6*n],
		Offsets: offs[0:0:n], CharOffsets: offs[n : n : 2*n],
		Tokens: make([]string, 0, n),
	}
}

func (e *Encoding) clone() *Encoding {
	c := &Encoding{
		IDs: append([]int(nil), e.IDs...), Tokens: append([]string(nil), e.Tokens...),
		TypeIDs: append([]int(nil), e.TypeIDs...), SpecialTokensMask: append([]int(nil), e.SpecialTokensMask...),
		AttentionMask: append([]int(nil), e.AttentionMask...), Offsets: append([]Offset(nil), e.Offsets...),
		CharOffsets: append([]Offset(nil), e.CharOffsets...), WordIDs: append([]int(nil), e.WordIDs...),
		SequenceIDs: append([]int(nil), e.SequenceIDs...),
	}
	for _, o := range e.Overflowing {
		c.Overflowing = append(c.Overflowing, o.clone())
	}
	return c
}

// sub returns tokens [s, e) without overflowing.
func (e *Encoding) sub(s, t int) *Encoding {
	return &Encoding{
		IDs: append([]int(nil), e.IDs[s:t]...), Tokens: append([]string(nil), e.Tokens[s:t]...),
		TypeIDs: append([]int(nil), e.TypeIDs[s:t]...), SpecialTokensMask: append([]int(nil), e.SpecialTokensMask[s:t]...),
		AttentionMask: append([]int(nil), e.AttentionMask[s:t]...), Offsets: append([]Offset(nil), e.Offsets[s:t]...),
		CharOffsets: append([]Offset(nil), e.CharOffsets[s:t]...), WordIDs: append([]int(nil), e.WordIDs[s:t]...),
		SequenceIDs: append([]int(nil), e.SequenceIDs[s:t]...),
	}
}

// appendEnc appends o's tokens to e (no offset shifting: each sequence keeps offsets into its
// own text, as Hugging Face does).
func (e *Encoding) appendEnc(o *Encoding) {
	e.IDs = append(e.IDs, o.IDs...)
	e.Tokens = append(e.Tokens, o.Tokens...)
	e.TypeIDs = append(e.TypeIDs, o.TypeIDs...)
	e.SpecialTokensMask = append(e.SpecialTokensMask, o.SpecialTokensMask...)
	e.AttentionMask = append(e.AttentionMask, o.AttentionMask...)
	e.Offsets = append(e.Offsets, o.Offsets...)
	e.CharOffsets = append(e.CharOffsets, o.CharOffsets...)
	e.WordIDs = append(e.WordIDs, o.WordIDs...)
	e.SequenceIDs = append(e.SequenceIDs, o.SequenceIDs...)
}

// mergeWith is Hugging Face's Encoding::merge_with: overflowing windows of both sides are
// combined so that every window of the result is a complete sequence.
func (e *Encoding) mergeWith(p *Encoding) {
	var ovs []*Encoding
	for _, so := range e.Overflowing {
		n := so.clone()
		n.mergeWith(p.withoutOverflow())
		ovs = append(ovs, n)
		for _, po := range p.Overflowing {
			n := so.clone()
			n.mergeWith(po)
			ovs = append(ovs, n)
		}
	}
	for _, po := range p.Overflowing {
		n := e.withoutOverflow().clone()
		n.mergeWith(po)
		ovs = append(ovs, n)
	}
	e.appendEnc(p)
	e.Overflowing = ovs
}

func (e *Encoding) withoutOverflow() *Encoding {
	c := *e
	c.Overflowing = nil
	return &c
}

// Direction says which side truncation or padding applies to.
type Direction int

const (
	Right Direction = iota
	Left
)

// TruncationStrategy chooses which sequence of a pair loses tokens.
type TruncationStrategy int

const (
	LongestFirst TruncationStrategy = iota
	OnlyFirst
	OnlySecond
)

// Truncation configures truncation. MaxLength counts the special tokens too (as in Hugging
// Face: the sequences are cut to MaxLength minus what the post-processor adds).
type Truncation struct {
	MaxLength int
	Stride    int // tokens repeated between consecutive overflowing windows
	Strategy  TruncationStrategy
	Direction Direction
}

// Padding configures padding. Length 0 pads to the longest encoding of the batch.
type Padding struct {
	Length     int
	MultipleOf int
	Direction  Direction
	PadID      int
	PadTypeID  int
	PadToken   string
}

// ErrSequenceTooShort is returned by OnlyFirst / OnlySecond truncation when the chosen
// sequence cannot lose enough tokens.
var ErrSequenceTooShort = errors.New("tokenize: truncation: the sequence to truncate is too short for max length")

// truncate cuts e to maxLen tokens and puts the rest in overflowing windows with stride
// (Hugging Face's Encoding::truncate).
func (e *Encoding) truncate(maxLen, stride int, dir Direction) error {
	n := len(e.IDs)
	if maxLen >= n {
		return nil
	}
	if maxLen == 0 {
		old := *e
		*e = *newEncoding(0)
		e.Overflowing = []*Encoding{&old}
		return nil
	}
	if stride >= maxLen {
		return fmt.Errorf("tokenize: truncation stride %d must be smaller than the sequence budget %d", stride, maxLen)
	}
	step := maxLen - stride
	var parts [][2]int
	if dir == Right {
		for start := 0; start < n; start += step {
			stop := min(start+maxLen, n)
			parts = append(parts, [2]int{start, stop})
			if stop == n {
				break
			}
		}
	} else {
		for stop := n; stop > 0; stop -= step {
			start := max(stop-maxLen, 0)
			parts = append(parts, [2]int{start, stop})
			if start == 0 {
				break
			}
		}
	}
	first := e.sub(parts[0][0], parts[0][1])
	for _, p := range parts[1:] {
		first.Overflowing = append(first.Overflowing, e.sub(p[0], p[1]))
	}
	*e = *first
	return nil
}

// truncatePair applies the strategy to one or two encodings.
func truncatePair(a, b *Encoding, t Truncation) error {
	if t.MaxLength == 0 {
		if err := a.truncate(0, t.Stride, t.Direction); err != nil {
			return err
		}
		if b != nil {
			return b.truncate(0, t.Stride, t.Direction)
		}
		return nil
	}
	total := a.Len()
	if b != nil {
		total += b.Len()
	}
	if total <= t.MaxLength {
		return nil
	}
	toRemove := total - t.MaxLength
	switch t.Strategy {
	case LongestFirst:
		if b == nil {
			return a.truncate(total-toRemove, t.Stride, t.Direction)
		}
		n1, n2 := a.Len(), b.Len()
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > t.MaxLength {
			n2 = n1
		} else {
			n2 = max(n1, t.MaxLength-n1)
		}
		if n1+n2 > t.MaxLength {
			n1 = t.MaxLength / 2
			n2 = n1 + t.MaxLength%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		if err := a.truncate(n1, t.Stride, t.Direction); err != nil {
			return err
		}
		return b.truncate(n2, t.Stride, t.Direction)
	default:
		target := a
		if t.Strategy == OnlySecond {
			if b == nil {
				return errors.New("tokenize: truncation OnlySecond needs a pair")
			}
			target = b
		}
		if target.Len() <= toRemove {
			return ErrSequenceTooShort
		}
		return target.truncate(target.Len()-toRemove, t.Stride, t.Direction)
	}
}

// pad pads e (and its overflowing windows) to length.
func (e *Encoding) pad(length int, p Padding) {
	for _, o := range e.Overflowing {
		o.pad(length, p)
	}
	n := length - e.Len()
	if n <= 0 {
		return
	}
	ids, types, toks := make([]int, n), make([]int, n), make([]string, n)
	zeros, ones, neg := make([]int, n), make([]int, n), make([]int, n)
	offs := make([]Offset, n)
	for i := 0; i < n; i++ {
		ids[i], types[i], toks[i], ones[i], neg[i] = p.PadID, p.PadTypeID, p.PadToken, 1, -1
	}
	if p.Direction == Left {
		e.IDs = append(ids, e.IDs...)
		e.TypeIDs = append(types, e.TypeIDs...)
		e.Tokens = append(toks, e.Tokens...)
		e.WordIDs = append(append([]int(nil), neg...), e.WordIDs...)
		e.SequenceIDs = append(neg, e.SequenceIDs...)
		e.AttentionMask = append(zeros, e.AttentionMask...)
		e.SpecialTokensMask = append(ones, e.SpecialTokensMask...)
		e.Offsets = append(offs, e.Offsets...)
		e.CharOffsets = append(append([]Offset(nil), offs...), e.CharOffsets...)
		return
	}
	e.IDs = append(e.IDs, ids...)
	e.TypeIDs = append(e.TypeIDs, types...)
	e.Tokens = append(e.Tokens, toks...)
	e.WordIDs = append(e.WordIDs, neg...)
	e.SequenceIDs = append(e.SequenceIDs, neg...)
	e.AttentionMask = append(e.AttentionMask, zeros...)
	e.SpecialTokensMask = append(e.SpecialTokensMask, ones...)
	e.Offsets = append(e.Offsets, offs...)
	e.CharOffsets = append(e.CharOffsets, offs...)
}

// padBatch pads every encoding to the batch target (Hugging Face's pad_encodings).
func padBatch(encs []*Encoding, p Padding) {
	target := p.Length
	if target == 0 {
		for _, e := range encs {
			target = max(target, e.Len())
		}
	}
	if p.MultipleOf > 0 && target%p.MultipleOf != 0 {
		target += p.MultipleOf - target%p.MultipleOf
	}
	for _, e := range encs {
		e.pad(target, p)
	}
}
