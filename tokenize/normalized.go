package tokenize

import (
	"strings"
	"unicode/utf8"
	"unsafe"
)

// span is a half-open byte range [start, end).
type span struct{ start, end int }

// normString is a piece of input text together with its normalized form and, for every byte
// of the normalized form, the byte range of the original text it came from. This is the
// bookkeeping that lets every token report offsets into the caller's string however much the
// normalizers rewrote it (NFD, lowercase, removed control characters, inserted spaces).
//
// The alignment rules follow Hugging Face's NormalizedString exactly (a replaced character
// inherits the range of the character it replaces, an inserted one the range of the character
// before it, removed characters vanish), because offsets must equal the Rust library's.
//
// Alignments are absolute (offsets into the caller's whole text), so slicing a piece shares
// the parent's table instead of copying it. align == nil means the identity layout: normalized
// byte i sits at original byte base+i and belongs to the character around it. Most clinical
// text is never rewritten (or only lowercased, which keeps the layout), so the common path
// allocates no alignment table at all.
type normString struct {
	norm         string
	align        []span // len(norm) entries, absolute; nil for identity layout
	base         int    // identity layout: original offset of norm[0]
	oStart, oEnd int    // original range covered by this piece
}

func newNormString(s string, shift int) normString {
	return normString{norm: s, base: shift, oStart: shift, oEnd: shift + len(s)}
}

// charSpan widens byte i of norm to its character.
func (n *normString) charSpan(i int) (int, int) {
	s := i
	for s > 0 && !utf8.RuneStart(n.norm[s]) {
		s--
	}
	_, size := utf8.DecodeRuneInString(n.norm[s:])
	return s, s + size
}

// alignAt returns the original range of normalized byte i.
func (n *normString) alignAt(i int) span {
	if n.align != nil {
		return n.align[i]
	}
	s, e := n.charSpan(i)
	return span{n.base + s, n.base + e}
}

// materialize turns an identity layout into an explicit table.
func (n *normString) materialize() {
	if n.align != nil {
		return
	}
	a := make([]span, len(n.norm))
	for i := 0; i < len(n.norm); {
		_, size := utf8.DecodeRuneInString(n.norm[i:])
		for k := 0; k < size; k++ {
			a[i+k] = span{n.base + i, n.base + i + size}
		}
		i += size
	}
	n.align = a
}

// toOriginal converts a normalized byte range to an absolute original range, with Hugging
// Face's convert_offsets semantics.
func (n *normString) toOriginal(start, end int) (int, int) {
	if start == end {
		return n.oStart + start, n.oStart + end
	}
	if len(n.norm) == 0 {
		return n.oStart, n.oEnd
	}
	if n.align == nil {
		// Identity layout: widen to whole characters (a byte-level token may cover part of
		// a multi-byte character; Hugging Face then reports the whole character).
		for start > 0 && !utf8.RuneStart(n.norm[start]) {
			start--
		}
		for end < len(n.norm) && !utf8.RuneStart(n.norm[end]) {
			end++
		}
		return n.base + start, n.base + end
	}
	return n.align[start].start, n.align[end-1].end
}

// slice returns the sub-string covering normalized bytes [start, end) (non-empty).
func (n *normString) slice(start, end int) normString {
	os, oe := n.toOriginal(start, end)
	out := normString{norm: n.norm[start:end], oStart: os, oEnd: oe}
	if n.align != nil {
		out.align = n.align[start:end:end]
	} else {
		out.base = n.base + start
	}
	return out
}

// change is one character of a rewritten string: ch == 0 replaces the next old character,
// ch > 0 inserts a new character, ch == -k replaces the next old character and removes the k
// old characters after it.
type change struct {
	r  rune
	ch int
}

// transform replaces the normalized text with dest, updating alignments; initialRemoved old
// characters at the very beginning are dropped.
func (n *normString) transform(dest []change, initialRemoved int) {
	n.transformRange(0, len(n.norm), dest, initialRemoved)
}

// transformRange rewrites normalized bytes [start, end).
func (n *normString) transformRange(start, end int, dest []change, initialRemoved int) {
	n.materialize()
	old := n.norm[start:end]
	pos := 0 // read position in old
	for k := 0; k < initialRemoved && pos < len(old); k++ {
		_, size := utf8.DecodeRuneInString(old[pos:])
		pos += size
	}
	var sb strings.Builder
	sb.Grow(len(old) + 8)
	aligns := make([]span, 0, len(old)+8)
	for _, d := range dest {
		idx := start + pos
		var a span
		if d.ch > 0 {
			if idx >= 1 {
				a = n.align[idx-1]
			} else {
				a = span{n.oStart, n.oStart}
			}
		} else {
			a = n.align[idx]
		}
		if d.ch <= 0 && pos < len(old) {
			_, size := utf8.DecodeRuneInString(old[pos:])
			pos += size
		}
		for k := 0; k < -d.ch && pos < len(old); k++ {
			_, size := utf8.DecodeRuneInString(old[pos:])
			pos += size
		}
		size := utf8.RuneLen(d.r)
		if size < 0 {
			d.r, size = utf8.RuneError, 3
		}
		sb.WriteRune(d.r)
		for k := 0; k < size; k++ {
			aligns = append(aligns, a)
		}
	}
	newAlign := make([]span, 0, len(n.align)-(end-start)+len(aligns))
	newAlign = append(newAlign, n.align[:start]...)
	newAlign = append(newAlign, aligns...)
	newAlign = append(newAlign, n.align[end:]...)
	n.norm = n.norm[:start] + sb.String() + n.norm[end:]
	n.align = newAlign
}

// prepend inserts s before the first character. Hugging Face's change list makes every new
// character and the old first character share the first character's alignment; this builds
// that table directly instead of going through transformRange.
func (n *normString) prepend(s string) {
	if n.norm == "" || s == "" {
		return
	}
	_, size := utf8.DecodeRuneInString(n.norm)
	first := n.alignAt(0)
	newAlign := make([]span, len(s)+len(n.norm))
	for i := 0; i < len(s)+size; i++ {
		newAlign[i] = first
	}
	if n.align != nil {
		copy(newAlign[len(s)+size:], n.align[size:])
	} else {
		for i := size; i < len(n.norm); {
			_, sz := utf8.DecodeRuneInString(n.norm[i:])
			for k := 0; k < sz; k++ {
				newAlign[len(s)+i+k] = span{n.base + i, n.base + i + sz}
			}
			i += sz
		}
	}
	n.norm = s + n.norm
	n.align = newAlign
}

// replaceLiteral replaces every non-overlapping occurrence of pat by content.
func (n *normString) replaceLiteral(pat, content string) {
	if pat == "" || !strings.Contains(n.norm, pat) {
		return
	}
	var locs [][2]int
	for i := 0; ; {
		j := strings.Index(n.norm[i:], pat)
		if j < 0 {
			break
		}
		locs = append(locs, [2]int{i + j, i + j + len(pat)})
		i += j + len(pat)
	}
	n.replaceRanges(locs, content)
}

// replaceRanges replaces the given sorted, non-overlapping, non-empty byte ranges by content in
// one pass. Hugging Face's replace inserts the new characters after removing the match, so
// they all take the alignment of the match's last byte.
func (n *normString) replaceRanges(locs [][2]int, content string) {
	if len(locs) == 0 {
		return
	}
	n.materialize()
	var sb strings.Builder
	sb.Grow(len(n.norm))
	align := make([]span, 0, len(n.norm))
	prev := 0
	for _, l := range locs {
		s, e := l[0], l[1]
		sb.WriteString(n.norm[prev:s])
		align = append(align, n.align[prev:s]...)
		a := n.align[e-1]
		sb.WriteString(content)
		for range len(content) {
			align = append(align, a)
		}
		prev = e
	}
	sb.WriteString(n.norm[prev:])
	align = append(align, n.align[prev:]...)
	n.norm = sb.String()
	n.align = align
}

// mapRunes rewrites every character with f, which returns one or more replacement characters
// (the first replaces the character, the others are inserted after it), as Hugging Face's
// per-character transforms (lowercase, NFD of one character, CJK spacing) do.
func (n *normString) mapRunes(f func(r rune, buf []rune) []rune) {
	// Same-size 1:1 rewrites (ASCII lowercasing, most of Unicode lowercasing) keep every byte
	// where it was, so the alignment table (or its identity stand-in) stays valid as is.
	sameShape := true
	anyChange := false
	var buf [8]rune
	for _, r := range n.norm {
		out := f(r, buf[:0])
		if len(out) == 1 && out[0] == r {
			continue
		}
		anyChange = true
		if len(out) != 1 || utf8.RuneLen(out[0]) != utf8.RuneLen(r) || out[0] == utf8.RuneError {
			sameShape = false
			break
		}
	}
	if !anyChange {
		return
	}
	if sameShape {
		b := []byte(n.norm)
		for i, r := range n.norm {
			out := f(r, buf[:0])
			utf8.EncodeRune(b[i:], out[0])
		}
		// b is fresh and never written again, so it can back the string directly.
		n.norm = unsafe.String(unsafe.SliceData(b), len(b))
		return
	}
	var dest []change
	changed := false
	for i, r := range n.norm {
		out := f(r, buf[:0])
		if !changed {
			if len(out) == 1 && out[0] == r {
				continue
			}
			changed = true
			// Replay the unchanged prefix.
			dest = make([]change, 0, len(n.norm)+8)
			for _, p := range n.norm[:i] {
				dest = append(dest, change{p, 0})
			}
		}
		for k, o := range out {
			c := 0
			if k > 0 {
				c = 1
			}
			dest = append(dest, change{o, c})
		}
	}
	if changed {
		n.transform(dest, 0)
	}
}

// filter keeps the characters for which keep is true, attaching each removed run to the kept
// character before it (Hugging Face's filter semantics).
func (n *normString) filter(keep func(r rune) bool) {
	removedAny := false
	for _, r := range n.norm {
		if !keep(r) {
			removedAny = true
			break
		}
	}
	if !removedAny {
		return
	}
	dest := make([]change, 0, len(n.norm))
	initial := 0
	for _, r := range n.norm {
		if keep(r) {
			dest = append(dest, change{r, 0})
		} else if len(dest) == 0 {
			initial++
		} else {
			dest[len(dest)-1].ch--
		}
	}
	n.transform(dest, initial)
}
