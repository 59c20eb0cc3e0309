package tokenize

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// AddedToken is an entry of tokenizer.json's added_tokens: a string matched in the text before
// the model runs (special tokens such as [CLS], <mask>, <|im_start|>).
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedVocab finds added tokens in text: first the non-normalized ones in the raw text, then
// the normalized ones in the normalized remainder, each with leftmost-longest matching (the
// Aho-Corasick mode Hugging Face uses).
type addedVocab struct {
	tokens  []AddedToken // all, in file order
	byID    map[int]*AddedToken
	byText  map[string]int // content → id
	special map[string]bool
	raw     matcher // non-normalized tokens
	normd   matcher // normalized tokens, matched against their normalized form
}

type matcher struct {
	first  [256]bool
	byByte [256][]matchEntry // candidates by first byte, longest first
	empty  bool
}

type matchEntry struct {
	pat string
	id  int
}

func (m *matcher) build(pats []matchEntry) {
	m.empty = len(pats) == 0
	for _, p := range pats {
		if p.pat == "" {
			continue
		}
		b := p.pat[0]
		m.first[b] = true
		m.byByte[b] = append(m.byByte[b], p)
	}
	for b := range m.byByte {
		l := m.byByte[b]
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].pat) > len(l[j].pat) })
	}
}

// next finds the leftmost-longest match at or after position i.
func (m *matcher) next(s string, i int) (start, end, id int, ok bool) {
	if m.empty {
		return 0, 0, 0, false
	}
	for ; i < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		for _, e := range m.byByte[s[i]] {
			if len(s)-i >= len(e.pat) && s[i:i+len(e.pat)] == e.pat {
				return i, i + len(e.pat), e.id, true
			}
		}
	}
	return 0, 0, 0, false
}

func newAddedVocab(tokens []AddedToken, norm normalizer) (*addedVocab, error) {
	av := &addedVocab{byID: make(map[int]*AddedToken), byText: make(map[string]int), special: make(map[string]bool)}
	av.tokens = append(av.tokens, tokens...)
	var raw, normd []matchEntry
	seen := map[string]bool{}
	// Hugging Face lists special tokens before the other added tokens when building its
	// matchers; with leftmost-longest matching the order only matters for equal patterns.
	ordered := make([]AddedToken, 0, len(tokens))
	for _, t := range tokens {
		if t.Special {
			ordered = append(ordered, t)
		}
	}
	for _, t := range tokens {
		if !t.Special {
			ordered = append(ordered, t)
		}
	}
	for i := range av.tokens {
		t := &av.tokens[i]
		av.byID[t.ID] = t
		av.byText[t.Content] = t.ID
		if t.Special {
			av.special[t.Content] = true
		}
	}
	for _, t := range ordered {
		if t.Content == "" || seen[t.Content] {
			continue
		}
		seen[t.Content] = true
		if !t.Normalized {
			raw = append(raw, matchEntry{t.Content, t.ID})
			continue
		}
		pat := t.Content
		if norm != nil {
			ns := newNormString(pat, 0)
			if err := norm.normalize(&ns); err != nil {
				return nil, err
			}
			pat = ns.norm
		}
		normd = append(normd, matchEntry{pat, t.ID})
	}
	av.raw.build(raw)
	av.normd.build(normd)
	return av, nil
}

// findMatches returns the pieces of s: added-token pieces (id >= 0) and plain text (id -1),
// covering s, with Hugging Face's single_word / lstrip / rstrip handling.
func (av *addedVocab) findMatches(s string, m *matcher, out []addedSplit) []addedSplit {
	if s == "" {
		return append(out, addedSplit{0, 0, -1})
	}
	startOff := 0
	for i := 0; i < len(s); {
		st, en, id, ok := m.next(s, i)
		if !ok {
			break
		}
		i = en
		t := av.byID[id]
		if t.SingleWord {
			startSpace := st == 0 || !endsWithWord(s[:st])
			stopSpace := en == len(s) || !startsWithWord(s[en:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if t.LStrip {
			ns := st
			for ns > 0 {
				r, size := utf8.DecodeLastRuneInString(s[:ns])
				if !unicode.IsSpace(r) {
					break
				}
				ns -= size
			}
			if ns < startOff {
				ns = startOff
			}
			st = ns
		}
		if t.RStrip {
			for en < len(s) {
				r, size := utf8.DecodeRuneInString(s[en:])
				if !unicode.IsSpace(r) {
					break
				}
				en += size
			}
			i = en
		}
		if startOff < st {
			out = append(out, addedSplit{startOff, st, -1})
		}
		out = append(out, addedSplit{st, en, id})
		startOff = en
	}
	if startOff != len(s) {
		out = append(out, addedSplit{startOff, len(s), -1})
	}
	return out
}

type addedSplit struct {
	start, end int
	id         int
}

func isRegexWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Nl, r)
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isRegexWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isRegexWordChar(r)
}

// splitAdded splits every not-done piece at the tokens of m.
func (av *addedVocab) splitAdded(pcs []piece, m *matcher, sc *scratch) []piece {
	if m.empty {
		return pcs
	}
	out := sc.spare[:0]
	for _, p := range pcs {
		if p.done {
			out = append(out, p)
			continue
		}
		sc.added = av.findMatches(p.ns.norm, m, sc.added[:0])
		if len(sc.added) == 1 && sc.added[0].id < 0 {
			if len(p.ns.norm) > 0 {
				out = append(out, p)
			}
			continue
		}
		for _, a := range sc.added {
			q := p.ns.slice(a.start, a.end)
			if len(q.norm) == 0 {
				continue
			}
			if a.id >= 0 {
				out = append(out, piece{ns: q, done: true, tokens: []rawToken{{a.id, q.norm, 0, len(q.norm)}}})
			} else {
				out = append(out, piece{ns: q})
			}
		}
	}
	sc.spare = pcs[:0]
	return out
}
