package tokenize

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// piece is one split of the pre-tokenized text: a normalized string and, once the added
// vocabulary or the model has handled it, its tokens (offsets relative to ns.norm).
type piece struct {
	ns     normString
	tokens []rawToken
	done   bool // tokens are final (an added token, or the model ran)
}

type rawToken struct {
	id         int
	value      string
	start, end int
}

// preTokenizer splits every not-yet-tokenized piece further.
type preTokenizer interface {
	preTokenize(pcs []piece, sc *scratch) ([]piece, error)
}

// splitEach applies f to every piece that has no tokens yet and drops empty results, as
// Hugging Face's PreTokenizedString::split does. f appends the parts of ns to out.
func splitEach(pcs []piece, sc *scratch, f func(ns *normString, out []piece) ([]piece, error)) ([]piece, error) {
	out := sc.spare[:0]
	for i := range pcs {
		p := &pcs[i]
		if p.done {
			out = append(out, *p)
			continue
		}
		var err error
		if out, err = f(&p.ns, out); err != nil {
			return nil, err
		}
	}
	sc.spare = pcs[:0]
	return out, nil
}

// behavior is SplitDelimiterBehavior.
type behavior int

const (
	bRemoved behavior = iota
	bIsolated
	bMergedWithPrevious
	bMergedWithNext
	bContiguous
)

func parseBehavior(s string) (behavior, error) {
	switch s {
	case "Removed":
		return bRemoved, nil
	case "Isolated":
		return bIsolated, nil
	case "MergedWithPrevious":
		return bMergedWithPrevious, nil
	case "MergedWithNext":
		return bMergedWithNext, nil
	case "Contiguous":
		return bContiguous, nil
	}
	return 0, fmt.Errorf("unknown split behavior %q", s)
}

// match is a range of the string and whether it matched the pattern; a list of matches
// covers the whole string.
type match struct {
	start, end int
	isMatch    bool
}

// matchesFromRanges turns the pattern's match ranges into a covering list.
func matchesFromRanges(s string, ranges [][2]int, invert bool) []match {
	if len(s) == 0 {
		return []match{{0, 0, false}}
	}
	out := make([]match, 0, 2*len(ranges)+1)
	prev := 0
	for _, r := range ranges {
		if r[0] == r[1] {
			continue
		}
		if prev < r[0] {
			out = append(out, match{prev, r[0], false})
		}
		out = append(out, match{r[0], r[1], true})
		prev = r[1]
	}
	if prev < len(s) {
		out = append(out, match{prev, len(s), false})
	}
	if invert {
		for i := range out {
			out[i].isMatch = !out[i].isMatch
		}
	}
	return out
}

// charMatches: every character satisfying pred is its own match.
func charMatches(s string, pred func(rune) bool) []match {
	var out []match
	last := 0
	for i, r := range s {
		if pred(r) {
			if last < i {
				out = append(out, match{last, i, false})
			}
			e := i + utf8.RuneLen(r)
			if r == utf8.RuneError {
				_, e2 := utf8.DecodeRuneInString(s[i:])
				e = i + e2
			}
			out = append(out, match{i, e, true})
			last = e
		}
	}
	if last < len(s) {
		out = append(out, match{last, len(s), false})
	}
	return out
}

// applyBehavior splits ns at the matches with Hugging Face's delimiter semantics.
func applyBehavior(ns *normString, ms []match, b behavior, out []piece) []piece {
	type rng struct {
		s, e   int
		remove bool
	}
	if b == bIsolated {
		for _, m := range ms {
			if m.end > m.start {
				out = append(out, piece{ns: ns.slice(m.start, m.end)})
			}
		}
		return out
	}
	var rs []rng
	switch b {
	case bIsolated:
		for _, m := range ms {
			rs = append(rs, rng{m.start, m.end, false})
		}
	case bRemoved:
		for _, m := range ms {
			rs = append(rs, rng{m.start, m.end, m.isMatch})
		}
	case bContiguous:
		prev := false
		for _, m := range ms {
			if m.isMatch == prev && len(rs) > 0 {
				rs[len(rs)-1].e = m.end
			} else {
				rs = append(rs, rng{m.start, m.end, false})
			}
			prev = m.isMatch
		}
	case bMergedWithPrevious:
		prev := false
		for _, m := range ms {
			if m.isMatch && !prev && len(rs) > 0 {
				rs[len(rs)-1].e = m.end
			} else {
				rs = append(rs, rng{m.start, m.end, false})
			}
			prev = m.isMatch
		}
	case bMergedWithNext:
		prev := false
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.isMatch && !prev && len(rs) > 0 {
				rs[len(rs)-1].s = m.start
			} else {
				rs = append(rs, rng{m.start, m.end, false})
			}
			prev = m.isMatch
		}
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
	}
	for _, r := range rs {
		if !r.remove && r.e > r.s {
			out = append(out, piece{ns: ns.slice(r.s, r.e)})
		}
	}
	return out
}

// ---- BertPreTokenizer ----

type bertPreTokenizer struct{}

// One pass equal to Hugging Face's two splits: on whitespace (removed), then on punctuation
// (isolated).
func (bertPreTokenizer) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		s := ns.norm
		start := -1
		for i := 0; i < len(s); {
			c := s[i]
			var r rune = rune(c)
			size := 1
			if c >= utf8.RuneSelf {
				r, size = utf8.DecodeRuneInString(s[i:])
			}
			var ws, punct bool
			if c < utf8.RuneSelf {
				ws = c == ' ' || (c >= '\t' && c <= '\r')
				punct = !ws && isBertPunct(r)
			} else {
				ws = unicode.IsSpace(r)
				punct = !ws && isBertPunct(r)
			}
			if ws || punct {
				if start >= 0 {
					out = append(out, piece{ns: ns.slice(start, i)})
					start = -1
				}
				if punct {
					out = append(out, piece{ns: ns.slice(i, i+size)})
				}
			} else if start < 0 {
				start = i
			}
			i += size
		}
		if start >= 0 {
			out = append(out, piece{ns: ns.slice(start, len(s))})
		}
		return out, nil
	})
}

// ---- WhitespaceSplit / Whitespace ----

type whitespaceSplit struct{}

func (whitespaceSplit) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		s := ns.norm
		start := -1
		for i := 0; i < len(s); {
			r, size := decodeAt(s, i)
			if isS(r) {
				if start >= 0 {
					out = append(out, piece{ns: ns.slice(start, i)})
					start = -1
				}
			} else if start < 0 {
				start = i
			}
			i += size
		}
		if start >= 0 {
			out = append(out, piece{ns: ns.slice(start, len(s))})
		}
		return out, nil
	})
}

// whitespacePre is the `\w+|[^\w\s]+` pre-tokenizer.
type whitespacePre struct{}

func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Nl, r) || r == 0x200C || r == 0x200D
}

func (whitespacePre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		s := ns.norm
		var ranges [][2]int
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				i += size
				continue
			}
			w := isWordChar(r)
			j := i + size
			for j < len(s) {
				r2, s2 := utf8.DecodeRuneInString(s[j:])
				if unicode.IsSpace(r2) || isWordChar(r2) != w {
					break
				}
				j += s2
			}
			ranges = append(ranges, [2]int{i, j})
			i = j
		}
		return applyBehavior(ns, matchesFromRanges(s, ranges, true), bRemoved, out), nil
	})
}

// ---- Split ----

type splitPre struct {
	find     func(s string) [][2]int
	behavior behavior
	invert   bool
}

func (sp *splitPre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		return applyBehavior(ns, matchesFromRanges(ns.norm, sp.find(ns.norm), sp.invert), sp.behavior, out), nil
	})
}

// Regexes with look-ahead that Go's regexp cannot run; each has a hand-written scanner with
// identical leftmost-first semantics.
const (
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Llama-3/cl100k style is not needed by the supported families.
)

// compilePattern returns a finder for a Split pattern.
func compilePattern(regex string, literal string, isRegex bool) (func(string) [][2]int, error) {
	if !isRegex {
		if literal == "" {
			return nil, fmt.Errorf("empty split pattern")
		}
		return func(s string) [][2]int {
			var out [][2]int
			for i := 0; ; {
				j := strings.Index(s[i:], literal)
				if j < 0 {
					return out
				}
				out = append(out, [2]int{i + j, i + j + len(literal)})
				i += j + len(literal)
			}
		}, nil
	}
	switch regex {
	case gpt2Pattern:
		return gpt2Split, nil
	case qwenPattern:
		return qwenSplit, nil
	}
	re, err := regexp.Compile(regex)
	if err != nil {
		return nil, fmt.Errorf("split regex %q is not supported (Go regexp has no look-around): %w", regex, err)
	}
	return func(s string) [][2]int {
		locs := re.FindAllStringIndex(s, -1)
		out := make([][2]int, len(locs))
		for i, l := range locs {
			out[i] = [2]int{l[0], l[1]}
		}
		return out
	}, nil
}

func decodeAt(s string, i int) (rune, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

func isL(r rune) bool {
	if r < utf8.RuneSelf {
		return ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.IsLetter(r)
}

func isN(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsNumber(r)
}

func isS(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.IsSpace(r)
}

// runWhile returns the end of the run of characters satisfying f starting at i.
func runWhile(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, size := decodeAt(s, i)
		if !f(r) {
			break
		}
		i += size
	}
	return i
}

// wsMatch implements `\s+(?!\S)|\s+` at i (s[i] is whitespace).
func wsMatch(s string, i int) int {
	k := runWhile(s, i, isS)
	if k == len(s) {
		return k
	}
	// Give back the last whitespace character so that it can lead the next word.
	_, last := utf8.DecodeLastRuneInString(s[i:k])
	if k-last > i {
		return k - last
	}
	return k
}

func otherClass(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// gpt2Split scans with the GPT-2 pattern.
func gpt2Split(s string) [][2]int {
	out := make([][2]int, 0, len(s)/4+1)
	for i := 0; i < len(s); {
		end := gpt2At(s, i)
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

func gpt2At(s string, i int) int {
	c := s[i]
	if c == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	j := i
	if c == ' ' {
		j++
	}
	if j < len(s) {
		r, _ := decodeAt(s, j)
		switch {
		case isL(r):
			return runWhile(s, j, isL)
		case isN(r):
			return runWhile(s, j, isN)
		case !isS(r):
			return runWhile(s, j, otherClass)
		}
	}
	// s[i] is whitespace here (a lone space before whitespace, or another space character).
	return wsMatch(s, i)
}

// qwenSplit scans with the Qwen2 pattern.
func qwenSplit(s string) [][2]int {
	out := make([][2]int, 0, len(s)/4+1)
	for i := 0; i < len(s); {
		end := qwenAt(s, i)
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func qwenAt(s string, i int) int {
	c := s[i]
	if c == '\'' && i+1 < len(s) {
		switch lowerASCII(s[i+1]) {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && lowerASCII(s[i+2]) == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && lowerASCII(s[i+2]) == 'l' {
				return i + 3
			}
		}
	}
	r, size := decodeAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		return runWhile(s, i, isL)
	}
	if r != '\r' && r != '\n' && !isN(r) && i+size < len(s) {
		r2, _ := decodeAt(s, i+size)
		if isL(r2) {
			return runWhile(s, i+size, isL)
		}
	}
	// \p{N}
	if isN(r) {
		return i + size
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if c == ' ' {
		j++
	}
	if j < len(s) {
		r2, _ := decodeAt(s, j)
		if otherClass(r2) {
			k := runWhile(s, j, otherClass)
			for k < len(s) && (s[k] == '\r' || s[k] == '\n') {
				k++
			}
			return k
		}
	}
	// \s*[\r\n]+
	k := runWhile(s, i, isS)
	for p := k - 1; p >= i; p-- {
		if s[p] == '\r' || s[p] == '\n' {
			return p + 1
		}
	}
	return wsMatch(s, i)
}

// ---- ByteLevel ----

// byteLevelPre is the GPT-2 ByteLevel pre-tokenizer. The byte-to-character mapping itself is
// done by the BPE model, which works on raw bytes (see bpe.go); only the splitting and the
// optional prefix space happen here. Offsets are unaffected: Hugging Face aligns every mapped
// byte to its whole original character, which is exactly what converting a byte range of the
// unmapped string gives.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b *byteLevelPre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		if b.addPrefixSpace && !strings.HasPrefix(ns.norm, " ") {
			ns.prepend(" ")
		}
		if !b.useRegex {
			return append(out, piece{ns: *ns}), nil
		}
		return applyBehavior(ns, matchesFromRanges(ns.norm, gpt2Split(ns.norm), false), bIsolated, out), nil
	})
}

// ---- Metaspace ----

type metaspacePre struct {
	replacement string
	prepend     string // "always", "first", "never"
	split       bool
}

func (m *metaspacePre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	first := true
	out := sc.spare[:0]
	for _, p := range pcs {
		if p.done {
			out = append(out, p)
			first = false
			continue
		}
		ns := &p.ns
		ns.replaceLiteral(" ", m.replacement)
		if (m.prepend == "always" || (m.prepend == "first" && first && ns.oStart == 0)) && !strings.HasPrefix(ns.norm, m.replacement) {
			ns.prepend(m.replacement)
		}
		first = false
		if m.split && strings.Contains(strings.TrimPrefix(ns.norm, m.replacement), m.replacement) {
			rep, _ := utf8.DecodeRuneInString(m.replacement)
			out = applyBehavior(ns, charMatches(ns.norm, func(r rune) bool { return r == rep }), bMergedWithNext, out)
		} else if len(ns.norm) > 0 {
			// No replacement character after the first one: the split leaves it whole.
			out = append(out, piece{ns: *ns})
		}
	}
	sc.spare = pcs[:0]
	return out, nil
}

// ---- Digits / Punctuation ----

type digitsPre struct{ individual bool }

func (d *digitsPre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		ms := charMatches(ns.norm, func(r rune) bool { return unicode.IsDigit(r) })
		b := bIsolated
		if !d.individual {
			b = bContiguous
		}
		return applyBehavior(ns, ms, b, out), nil
	})
}

type punctuationPre struct{ behavior behavior }

func (p *punctuationPre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	return splitEach(pcs, sc, func(ns *normString, out []piece) ([]piece, error) {
		return applyBehavior(ns, charMatches(ns.norm, isBertPunct), p.behavior, out), nil
	})
}

type sequencePre []preTokenizer

func (s sequencePre) preTokenize(pcs []piece, sc *scratch) ([]piece, error) {
	var err error
	for i, p := range s {
		if pcs, err = p.preTokenize(pcs, sc); err != nil {
			return nil, fmt.Errorf("pre-tokenizer %d: %w", i, err)
		}
	}
	return pcs, nil
}
