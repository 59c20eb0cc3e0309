package tagging

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownScheme is returned for an id2label whose labels follow no tag scheme the
// pipeline knows (IO, BIO, BIOES, BILOU).
var ErrUnknownScheme = errors.New("tagging: unknown tag scheme")

// Scheme is a token tagging scheme.
type Scheme int

const (
	// IO: every entity token is I-TYPE (or a bare TYPE); adjacent tokens of a type join.
	IO Scheme = iota + 1
	// BIO: B-TYPE begins an entity, I-TYPE continues it.
	BIO
	// BIOES: also E-TYPE (last token) and S-TYPE (single-token entity).
	BIOES
	// BILOU: also L-TYPE (last token) and U-TYPE (unit, single-token entity).
	BILOU
)

func (s Scheme) String() string {
	switch s {
	case IO:
		return "IO"
	case BIO:
		return "BIO"
	case BIOES:
		return "BIOES"
	case BILOU:
		return "BILOU"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// Outside is the label of tokens that belong to no entity.
const Outside = "O"

// Tag is one label split into its position prefix and entity type.
type Tag struct {
	// Prefix is 'B', 'I', 'E', 'S', 'L' or 'U'; 'O' for the outside label. A bare label
	// (no prefix) gets 'I', as Hugging Face's pipeline treats it.
	Prefix byte
	Type   string // "NAME" for "B-NAME"; "O" for the outside label
}

// begins reports whether the tag always starts a new entity.
func (t Tag) begins() bool { return t.Prefix == 'B' || t.Prefix == 'S' || t.Prefix == 'U' }

// ends reports whether the tag always closes its entity.
func (t Tag) ends() bool {
	return t.Prefix == 'E' || t.Prefix == 'S' || t.Prefix == 'L' || t.Prefix == 'U'
}

// continues reports whether a token tagged next may join the entity of a token tagged
// prev. For BIO this is Hugging Face's rule (same type and not B-); the other schemes
// add that E-/S-/L-/U- close an entity.
func continues(prev, next Tag) bool {
	return next.Type == prev.Type && !next.begins() && !prev.ends()
}

// LabelSet is a model's id2label parsed into tags.
type LabelSet struct {
	Labels  []string
	Tags    []Tag
	Scheme  Scheme
	Outside int // index of the "O" label, -1 when the model has none
	types   map[string]bool
}

// ParseLabels parses id2label (in id order) and detects its scheme. It fails with
// ErrUnknownScheme for labels that mix schemes (E- with L-), use an unknown one-letter
// prefix ("X-NAME"), have an empty type, or are the untrained default names (LABEL_0...).
func ParseLabels(labels []string) (*LabelSet, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("%w: no labels", ErrUnknownScheme)
	}
	ls := &LabelSet{Labels: labels, Tags: make([]Tag, len(labels)), Outside: -1, types: map[string]bool{}}
	var seen [256]bool
	defaults := 0
	for i, l := range labels {
		if l == Outside {
			if ls.Outside >= 0 {
				return nil, fmt.Errorf("%w: label %q appears twice (ids %d and %d)", ErrUnknownScheme, l, ls.Outside, i)
			}
			ls.Outside = i
			ls.Tags[i] = Tag{Prefix: 'O', Type: Outside}
			continue
		}
		if l == "" {
			return nil, fmt.Errorf("%w: label %d is empty", ErrUnknownScheme, i)
		}
		if isDefaultLabel(l) {
			defaults++
		}
		var t Tag
		if len(l) >= 2 && l[1] == '-' && isASCIILetter(l[0]) {
			p := l[0] &^ 0x20 // upper case
			if !strings.ContainsRune("BIESLU", rune(p)) {
				return nil, fmt.Errorf("%w: label %d %q has unknown prefix %q", ErrUnknownScheme, i, l, l[:1])
			}
			if len(l) == 2 {
				return nil, fmt.Errorf("%w: label %d %q has no entity type", ErrUnknownScheme, i, l)
			}
			t = Tag{Prefix: p, Type: l[2:]}
		} else {
			t = Tag{Prefix: 'I', Type: l}
		}
		ls.Tags[i] = t
		ls.types[t.Type] = true
		seen[t.Prefix] = true
	}
	if defaults > 0 && defaults == len(labels)-boolInt(ls.Outside >= 0) {
		return nil, fmt.Errorf("%w: id2label holds the untrained default names (%s...); the checkpoint has no tag set", ErrUnknownScheme, labels[0])
	}
	hasES, hasLU := seen['E'] || seen['S'], seen['L'] || seen['U']
	switch {
	case hasES && hasLU:
		return nil, fmt.Errorf("%w: labels mix BIOES (E-/S-) and BILOU (L-/U-) prefixes", ErrUnknownScheme)
	case hasES:
		ls.Scheme = BIOES
	case hasLU:
		ls.Scheme = BILOU
	case seen['B']:
		ls.Scheme = BIO
	default:
		ls.Scheme = IO
	}
	return ls, nil
}

// Types returns the entity types, in label order, without the outside label.
func (ls *LabelSet) Types() []string {
	var out []string
	seen := map[string]bool{}
	for i, t := range ls.Tags {
		if i == ls.Outside || seen[t.Type] {
			continue
		}
		seen[t.Type] = true
		out = append(out, t.Type)
	}
	return out
}

// HasType reports whether some label has entity type typ.
func (ls *LabelSet) HasType(typ string) bool { return ls.types[typ] }

func isDefaultLabel(l string) bool {
	if !strings.HasPrefix(l, "LABEL_") || len(l) == len("LABEL_") {
		return false
	}
	for _, c := range l[len("LABEL_"):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
