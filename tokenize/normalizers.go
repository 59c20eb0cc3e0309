package tokenize

import (
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a normString in place, keeping its alignment.
type normalizer interface {
	normalize(n *normString) error
}

// ---- BertNormalizer ----

type bertNormalizer struct {
	cleanText    bool
	chineseChars bool
	stripAccents bool
	lowercase    bool
}

func (b *bertNormalizer) normalize(n *normString) error {
	ascii := isASCII(n.norm)
	if b.cleanText {
		n.filter(func(r rune) bool { return !(r == 0 || r == utf8.RuneError || isBertControl(r)) })
		n.mapRunes(func(r rune, buf []rune) []rune {
			if isBertWhitespace(r) {
				return append(buf, ' ')
			}
			return append(buf, r)
		})
	}
	if ascii {
		// No CJK, no accents, and lowercasing cannot change the byte layout.
		if b.lowercase {
			n.mapRunes(lowerRune)
		}
		return nil
	}
	if b.chineseChars {
		n.mapRunes(func(r rune, buf []rune) []rune {
			if isChineseChar(r) {
				// The character replaces itself with a space, then itself and a space are
				// inserted: Hugging Face's exact change list, which decides the alignment.
				return append(buf, ' ', r, ' ')
			}
			return append(buf, r)
		})
	}
	if b.stripAccents {
		stripAccents(n)
	}
	if b.lowercase {
		n.mapRunes(lowerRune)
	}
	return nil
}

func lowerRune(r rune, buf []rune) []rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(buf, r)
	}
	if r == '\u0130' { // the one unconditional multi-character lowercase mapping
		return append(buf, 'i', '\u0307')
	}
	return append(buf, unicode.ToLower(r))
}

func stripAccents(n *normString) {
	decompose(n, norm.NFD)
	n.filter(func(r rune) bool { return !unicode.Is(unicode.Mn, r) })
}

// isBertWhitespace is Hugging Face's BERT whitespace: \t \n \r and Unicode White_Space.
func isBertWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// isBertControl is Rust's char::is_other (Cc, Cf, Cn, Co, Cs) minus \t \n \r.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) || !isAssigned(r)
}

func isAssigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z,
		unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// isBertPunct is ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) or any
// Unicode P* character.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
	}
	return unicode.IsPunct(r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ---- Unicode normalization forms ----

type unicodeNormalizer struct{ form norm.Form }

func (u *unicodeNormalizer) normalize(n *normString) error {
	switch u.form {
	case norm.NFD, norm.NFKD:
		decompose(n, u.form)
	default:
		compose(n, u.form)
	}
	return nil
}

// decompose applies NFD or NFKD. Each original character's decomposition gets change 0 for its
// first character and +1 for the rest; the characters themselves come from normalizing the
// whole string, so canonical reordering of combining marks is respected.
func decompose(n *normString, f norm.Form) {
	if isASCII(n.norm) || f.IsNormalString(n.norm) {
		return
	}
	out := f.String(n.norm)
	dest := make([]change, 0, len(out))
	for _, r := range out {
		dest = append(dest, change{r, 0})
	}
	// Assign change flags from per-character decomposition lengths.
	k := 0
	var buf [utf8.UTFMax * 8]byte
	consistent := true
	for _, r := range n.norm {
		m := utf8.EncodeRune(buf[:], r)
		cnt := utf8.RuneCount(f.Append(nil, buf[:m]...))
		for j := 0; j < cnt; j++ {
			if k >= len(dest) {
				consistent = false
				break
			}
			if j > 0 {
				dest[k].ch = 1
			}
			k++
		}
	}
	if !consistent || k != len(dest) {
		alignSegments(n, f)
		return
	}
	n.transform(dest, 0)
}

// compose applies NFC or NFKC segment by segment (a segment is a starter and its combining
// characters; normalization never crosses segment boundaries).
func compose(n *normString, f norm.Form) {
	if isASCII(n.norm) || f.IsNormalString(n.norm) {
		return
	}
	alignSegments(n, f)
}

// alignSegments normalizes each segment independently; inside a changed segment the first
// output characters replace input characters one for one, extra outputs are insertions and
// missing ones are removals attached to the last output character.
func alignSegments(n *normString, f norm.Form) {
	s := n.norm
	dest := make([]change, 0, len(s))
	initial := 0
	for i := 0; i < len(s); {
		j := i + f.NextBoundaryInString(s[i:], true)
		if j <= i {
			j = len(s)
		}
		seg := s[i:j]
		out := f.String(seg)
		if out == seg {
			for _, r := range seg {
				dest = append(dest, change{r, 0})
			}
		} else {
			nin := utf8.RuneCountInString(seg)
			k := 0
			for _, r := range out {
				c := 0
				if k >= nin {
					c = 1
				}
				dest = append(dest, change{r, c})
				k++
			}
			if k < nin {
				if k == 0 {
					if len(dest) == 0 {
						initial += nin
					} else {
						dest[len(dest)-1].ch -= nin
					}
				} else {
					dest[len(dest)-1].ch = -(nin - k)
				}
			}
		}
		i = j
	}
	n.transform(dest, initial)
}

// ---- simple normalizers ----

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(n *normString) error { n.mapRunes(lowerRune); return nil }

type stripAccentsNormalizer struct{}

// Hugging Face's StripAccents only filters nonspacing marks; it relies on a preceding NFD/NFKD.
func (stripAccentsNormalizer) normalize(n *normString) error {
	n.filter(func(r rune) bool { return !unicode.Is(unicode.Mn, r) })
	return nil
}

type replaceNormalizer struct {
	literal string
	re      *regexp.Regexp
	content string
}

func (rn *replaceNormalizer) normalize(n *normString) error {
	if rn.re == nil {
		n.replaceLiteral(rn.literal, rn.content)
		return nil
	}
	var locs [][2]int
	for _, l := range rn.re.FindAllStringIndex(n.norm, -1) {
		if l[1] > l[0] {
			locs = append(locs, [2]int{l[0], l[1]})
		}
	}
	n.replaceRanges(locs, rn.content)
	return nil
}

type stripNormalizer struct{ left, right bool }

func (sn *stripNormalizer) normalize(n *normString) error {
	lead, trail := 0, 0
	if sn.left {
		for _, r := range n.norm {
			if !unicode.IsSpace(r) {
				break
			}
			lead++
		}
	}
	total := utf8.RuneCountInString(n.norm)
	if sn.right && lead < total {
		s := n.norm
		for len(s) > 0 {
			r, size := utf8.DecodeLastRuneInString(s)
			if !unicode.IsSpace(r) {
				break
			}
			trail++
			s = s[:len(s)-size]
		}
	}
	if lead == 0 && trail == 0 {
		return nil
	}
	if lead >= total {
		n.transform(nil, total)
		return nil
	}
	dest := make([]change, 0, total)
	i := 0
	for _, r := range n.norm {
		if i >= lead && i < total-trail {
			c := 0
			if i == total-trail-1 {
				c = -trail
			}
			dest = append(dest, change{r, c})
		}
		i++
	}
	n.transform(dest, lead)
	return nil
}

type prependNormalizer struct{ s string }

func (p *prependNormalizer) normalize(n *normString) error { n.prepend(p.s); return nil }

type sequenceNormalizer []normalizer

func (s sequenceNormalizer) normalize(n *normString) error {
	for i, x := range s {
		if err := x.normalize(n); err != nil {
			return fmt.Errorf("normalizer %d: %w", i, err)
		}
	}
	return nil
}
