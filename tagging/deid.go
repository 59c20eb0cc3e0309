package tagging

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DeidMode is how PHI spans are replaced.
type DeidMode int

const (
	// Redact replaces a span with its type in brackets: "[DATE]".
	Redact DeidMode = iota
	// Mask replaces every character of a span that is not white space with MaskRune
	// ('*' by default); white space (line breaks included) stays, so the layout is kept.
	Mask
	// Surrogate replaces a span with a realistic fake, consistent within the document:
	// the same name gets the same fake name, every date moves by one per-document offset
	// and keeps its format. See Surrogator.
	Surrogate
)

// ParseDeidMode maps "redact", "mask", "surrogate" to a DeidMode.
func ParseDeidMode(s string) (DeidMode, error) {
	switch strings.ToLower(s) {
	case "redact":
		return Redact, nil
	case "mask":
		return Mask, nil
	case "surrogate":
		return Surrogate, nil
	}
	return 0, fmt.Errorf("tagging: unknown de-identification mode %q (want redact, mask or surrogate)", s)
}

func (m DeidMode) String() string {
	switch m {
	case Redact:
		return "redact"
	case Mask:
		return "mask"
	case Surrogate:
		return "surrogate"
	}
	return fmt.Sprintf("DeidMode(%d)", int(m))
}

// DeidOptions configure Deidentify.
type DeidOptions struct {
	Mode     DeidMode
	MaskRune rune // for Mask; 0 means '*'
	// Seed makes surrogates reproducible: the same seed, text and spans give the same
	// output. Give every document its own seed (e.g. a hash of a secret and the document id)
	// so that date offsets differ between documents.
	Seed uint64
	// ShiftDays, when not 0, is the date offset in days instead of one drawn from Seed.
	ShiftDays int
}

// Replacement is one span of the input and what replaces it.
type Replacement struct {
	ByteStart, ByteEnd int
	Type               string
	With               string
}

// ErrBadSpan is returned for entities whose offsets do not fit the text.
var ErrBadSpan = errors.New("tagging: entity span does not fit the text")

// Spans normalizes entities into sorted, disjoint PHI spans: overlapping entities are
// united (keeping the first one's type), and touching entities of one type are joined, so
// that "01/" + "02/1950" becomes one date. It checks offsets against the text.
func Spans(text string, ents []Entity) ([]Replacement, error) {
	sorted := make([]Entity, len(ents))
	copy(sorted, ents)
	sortEntities(sorted)
	var out []Replacement
	for i, e := range sorted {
		if e.ByteStart < 0 || e.ByteEnd < e.ByteStart || e.ByteEnd > len(text) {
			return nil, fmt.Errorf("%w: entity %d spans bytes [%d, %d) of %d", ErrBadSpan, i, e.ByteStart, e.ByteEnd, len(text))
		}
		if !boundary(text, e.ByteStart) || !boundary(text, e.ByteEnd) {
			return nil, fmt.Errorf("%w: entity %d spans bytes [%d, %d), which splits a character", ErrBadSpan, i, e.ByteStart, e.ByteEnd)
		}
		if e.ByteStart == e.ByteEnd {
			continue
		}
		typ := e.Type
		if typ == "" {
			typ = e.Label
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if e.ByteStart < last.ByteEnd || (e.ByteStart == last.ByteEnd && typ == last.Type) {
				last.ByteEnd = max(last.ByteEnd, e.ByteEnd)
				continue
			}
		}
		out = append(out, Replacement{ByteStart: e.ByteStart, ByteEnd: e.ByteEnd, Type: typ})
	}
	return out, nil
}

func boundary(text string, i int) bool {
	return i == len(text) || utf8.RuneStart(text[i])
}

// Plan decides the replacement of every PHI span of text.
func Plan(text string, ents []Entity, opts DeidOptions) ([]Replacement, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	spans, err := Spans(text, ents)
	if err != nil {
		return nil, err
	}
	var sur *Surrogator
	if opts.Mode == Surrogate {
		sur = NewSurrogator(opts.Seed)
		if opts.ShiftDays != 0 {
			sur.ShiftDays = opts.ShiftDays
		}
	}
	mask := opts.MaskRune
	if mask == 0 {
		mask = '*'
	}
	for i := range spans {
		s := &spans[i]
		orig := text[s.ByteStart:s.ByteEnd]
		switch opts.Mode {
		case Redact:
			s.With = "[" + s.Type + "]"
		case Mask:
			s.With = strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return r
				}
				return mask
			}, orig)
		case Surrogate:
			beforeName := false
			if i+1 < len(spans) && categoryOf[strings.ToUpper(spans[i+1].Type)] == catName {
				gap := text[s.ByteEnd:spans[i+1].ByteStart]
				beforeName = gap != "" && strings.Trim(gap, " \t") == ""
			}
			s.With = sur.replace(s.Type, orig, beforeName)
		default:
			return nil, fmt.Errorf("tagging: invalid de-identification mode %d", int(opts.Mode))
		}
	}
	return spans, nil
}

// Apply writes text with the replacements (sorted, disjoint, as Plan returns them) made;
// every other byte is copied unchanged.
func Apply(text string, reps []Replacement) string {
	var b strings.Builder
	b.Grow(len(text))
	pos := 0
	for _, r := range reps {
		b.WriteString(text[pos:r.ByteStart])
		b.WriteString(r.With)
		pos = r.ByteEnd
	}
	b.WriteString(text[pos:])
	return b.String()
}

// Deidentify replaces the PHI spans of text (entities from Pipeline.Tag) as opts say.
// Bytes outside the spans are preserved exactly.
func Deidentify(text string, ents []Entity, opts DeidOptions) (string, error) {
	reps, err := Plan(text, ents, opts)
	if err != nil {
		return "", err
	}
	return Apply(text, reps), nil
}

// sortEntities orders entities by byte start, then end.
func sortEntities(ents []Entity) {
	sort.SliceStable(ents, func(i, j int) bool {
		if ents[i].ByteStart != ents[j].ByteStart {
			return ents[i].ByteStart < ents[j].ByteStart
		}
		return ents[i].ByteEnd < ents[j].ByteEnd
	})
}
