package tokenize

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// postProcessor adds special tokens around the encoded sequences.
type postProcessor interface {
	addedTokens(isPair bool) int
	// process combines a (and b for a pair); words is true for pre-split input.
	process(a, b *Encoding, addSpecial, words bool) (*Encoding, error)
}

// specialEnc builds an encoding of special tokens.
func specialEnc(ids []int, toks []string, typeID int) *Encoding {
	e := newEncoding(len(ids))
	for i := range ids {
		e.IDs = append(e.IDs, ids[i])
		e.Tokens = append(e.Tokens, toks[i])
		e.TypeIDs = append(e.TypeIDs, typeID)
		e.SpecialTokensMask = append(e.SpecialTokensMask, 1)
		e.AttentionMask = append(e.AttentionMask, 1)
		e.Offsets = append(e.Offsets, Offset{})
		e.CharOffsets = append(e.CharOffsets, Offset{})
		e.WordIDs = append(e.WordIDs, -1)
		e.SequenceIDs = append(e.SequenceIDs, -1)
	}
	return e
}

func setType(e *Encoding, typeID int) {
	for i := range e.TypeIDs {
		e.TypeIDs[i] = typeID
	}
	for _, o := range e.Overflowing {
		setType(o, typeID)
	}
}

// mergeAll concatenates encodings with Hugging Face's overflow combination.
func mergeAll(parts []*Encoding) *Encoding {
	n := 0
	for _, p := range parts {
		n += p.Len()
	}
	out := newEncoding(n)
	for _, p := range parts {
		out.mergeWith(p)
	}
	return out
}

// ---- TemplateProcessing ----

type templatePiece struct {
	special string // special token name; "" for a sequence
	seqB    bool
	typeID  int
}

type templateSpecial struct {
	ids    []int
	tokens []string
}

type templateProcessing struct {
	single, pair []templatePiece
	specials     map[string]templateSpecial
}

func (tp *templateProcessing) addedTokens(isPair bool) int {
	tpl := tp.single
	if isPair {
		tpl = tp.pair
	}
	n := 0
	for _, p := range tpl {
		if p.special != "" {
			n += len(tp.specials[p.special].ids)
		}
	}
	return n
}

func (tp *templateProcessing) process(a, b *Encoding, addSpecial, _ bool) (*Encoding, error) {
	tpl := tp.single
	if b != nil {
		tpl = tp.pair
	}
	var parts []*Encoding
	for _, p := range tpl {
		if p.special == "" {
			e := a
			if p.seqB {
				e = b
			}
			if e == nil {
				return nil, fmt.Errorf("tokenize: template references sequence B but no pair was given")
			}
			setType(e, p.typeID)
			parts = append(parts, e)
			continue
		}
		if !addSpecial {
			continue
		}
		s := tp.specials[p.special]
		parts = append(parts, specialEnc(s.ids, s.tokens, p.typeID))
	}
	return mergeAll(parts), nil
}

// ---- BertProcessing ----

type bertProcessing struct {
	cls, sep     string
	clsID, sepID int
}

func (bp *bertProcessing) addedTokens(isPair bool) int {
	if isPair {
		return 3
	}
	return 2
}

func (bp *bertProcessing) process(a, b *Encoding, addSpecial, _ bool) (*Encoding, error) {
	if !addSpecial {
		return defaultProcess(a, b), nil
	}
	setType(a, 0)
	parts := []*Encoding{specialEnc([]int{bp.clsID}, []string{bp.cls}, 0), a, specialEnc([]int{bp.sepID}, []string{bp.sep}, 0)}
	if b != nil {
		setType(b, 1)
		parts = append(parts, b, specialEnc([]int{bp.sepID}, []string{bp.sep}, 1))
	}
	return mergeAll(parts), nil
}

// ---- RobertaProcessing ----

type robertaProcessing struct {
	cls, sep       string
	clsID, sepID   int
	trimOffsets    bool
	addPrefixSpace bool
}

func (rp *robertaProcessing) addedTokens(isPair bool) int {
	if isPair {
		return 4
	}
	return 2
}

func (rp *robertaProcessing) process(a, b *Encoding, addSpecial, words bool) (*Encoding, error) {
	aps := rp.addPrefixSpace || words
	if rp.trimOffsets {
		trimOffsets(a, aps)
		if b != nil {
			trimOffsets(b, aps)
		}
	}
	setType(a, 0)
	if b != nil {
		setType(b, 0)
	}
	if !addSpecial {
		return defaultProcess(a, b), nil
	}
	cls := func() *Encoding { return specialEnc([]int{rp.clsID}, []string{rp.cls}, 0) }
	sep := func() *Encoding { return specialEnc([]int{rp.sepID}, []string{rp.sep}, 0) }
	parts := []*Encoding{cls(), a, sep()}
	if b != nil {
		parts = append(parts, sep(), b, sep())
	}
	return mergeAll(parts), nil
}

// ---- ByteLevel post-processor ----

type byteLevelPost struct {
	trimOffsets    bool
	addPrefixSpace bool
}

func (bl *byteLevelPost) addedTokens(bool) int { return 0 }

func (bl *byteLevelPost) process(a, b *Encoding, _, words bool) (*Encoding, error) {
	if bl.trimOffsets {
		trimOffsets(a, bl.addPrefixSpace || words)
		if b != nil {
			trimOffsets(b, bl.addPrefixSpace || words)
		}
	}
	return defaultProcess(a, b), nil
}

// ---- Sequence ----

type sequencePost []postProcessor

func (s sequencePost) addedTokens(isPair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(isPair)
	}
	return n
}

func (s sequencePost) process(a, b *Encoding, addSpecial, words bool) (*Encoding, error) {
	// Hugging Face runs each processor on the encodings in turn; only the last may merge a
	// pair, so every earlier one here must be an offset trimmer (ByteLevel).
	for i, p := range s {
		if i == len(s)-1 {
			return p.process(a, b, addSpecial, words)
		}
		bl, ok := p.(*byteLevelPost)
		if !ok {
			return nil, fmt.Errorf("tokenize: post-processor sequence: only ByteLevel may precede the last processor")
		}
		if bl.trimOffsets {
			trimOffsets(a, bl.addPrefixSpace || words)
			if b != nil {
				trimOffsets(b, bl.addPrefixSpace || words)
			}
		}
	}
	return defaultProcess(a, b), nil
}

// trimOffsets removes leading and trailing spaces ('Ġ' or whitespace) of each token from its
// offsets, as Hugging Face's byte-level process_offsets does. Counts are taken in characters
// for CharOffsets and in original bytes for Offsets.
func trimOffsets(e *Encoding, addPrefixSpace bool) {
	for i, tok := range e.Tokens {
		leadC, leadB := 0, 0
		for _, r := range tok {
			if r == 'Ġ' {
				leadB++
			} else if unicode.IsSpace(r) {
				leadB += utf8.RuneLen(r)
			} else {
				break
			}
			leadC++
		}
		trailC, trailB := 0, 0
		for s := tok; len(s) > 0; {
			r, size := utf8.DecodeLastRuneInString(s)
			if r == 'Ġ' {
				trailB++
			} else if unicode.IsSpace(r) {
				trailB += size
			} else {
				break
			}
			trailC++
			s = s[:len(s)-size]
		}
		if leadC == 0 && trailC == 0 {
			continue
		}
		o, c := &e.Offsets[i], &e.CharOffsets[i]
		if leadC > 0 {
			isFirst := i == 0 || o.Start == 0
			if !(isFirst && addPrefixSpace && leadC == 1) {
				o.Start = min(o.Start+leadB, o.End)
				c.Start = min(c.Start+leadC, c.End)
			}
		}
		if trailC > 0 {
			if o.End >= trailB {
				o.End = max(o.End-trailB, o.Start)
			}
			if c.End >= trailC {
				c.End = max(c.End-trailC, c.Start)
			}
		}
	}
	for _, ov := range e.Overflowing {
		trimOffsets(ov, addPrefixSpace)
	}
}
