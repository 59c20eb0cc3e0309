package sentencepiece

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// CharsMap is a SentencePiece precompiled character map (`precompiled_charsmap`, as in
// `nmt_nfkc`): a Darts double-array trie over UTF-8 byte sequences whose values point into a
// table of NUL-terminated replacement strings. Immutable and safe for concurrent use.
type CharsMap struct {
	units      []uint32 // double-array units
	normalized string   // replacement table, valid UTF-8
	ascii      [128]asciiRule
}

// asciiRule caches transform() of each ASCII byte: most text is ASCII, and an ASCII byte
// followed by another ASCII byte is a grapheme cluster of its own (except CR LF).
type asciiRule struct {
	repl string
	ok   bool
}

// ParseCharsMap decodes the blob layout shared by SentencePiece and Hugging Face:
// little-endian uint32 trie size in bytes, the trie units, then the replacement strings.
func ParseCharsMap(blob []byte) (*CharsMap, error) {
	if len(blob) < 4 {
		return nil, fmt.Errorf("%w: precompiled_charsmap shorter than its 4-byte header", ErrMalformed)
	}
	size := binary.LittleEndian.Uint32(blob)
	if size%4 != 0 || uint64(size) > uint64(len(blob)-4) {
		return nil, fmt.Errorf("%w: precompiled_charsmap trie size %d does not fit the %d-byte blob", ErrMalformed, size, len(blob))
	}
	if size == 0 {
		return nil, fmt.Errorf("%w: precompiled_charsmap has an empty trie", ErrMalformed)
	}
	units := make([]uint32, size/4)
	for i := range units {
		units[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	rest := blob[4+size:]
	if !utf8.Valid(rest) {
		return nil, fmt.Errorf("%w: precompiled_charsmap replacement table is not valid UTF-8", ErrMalformed)
	}
	c := &CharsMap{units: units, normalized: string(rest)}
	for b := range c.ascii {
		c.ascii[b].repl, c.ascii[b].ok = c.transform(string(rune(b)))
	}
	return c, nil
}

// Darts unit accessors. A unit packs a label (byte, or the high bit for "no label"), a leaf flag,
// and an XOR offset to its children; a leaf's child unit holds the value.
func unitHasLeaf(u uint32) bool { return (u>>8)&1 == 1 }
func unitValue(u uint32) int    { return int(u & (1<<31 - 1)) }
func unitLabel(u uint32) uint32 { return u & (1<<31 | 0xFF) }
func unitOffset(u uint32) int   { return int((u >> 10) << ((u & (1 << 9)) >> 6)) }
func (c *CharsMap) unit(i int) (uint32, bool) {
	if i < 0 || i >= len(c.units) {
		return 0, false
	}
	return c.units[i], true
}

// search walks key through the trie. With shortest set it stops at the first leaf (what Hugging
// Face's Precompiled.transform uses); otherwise it returns the longest match (SentencePiece's
// NormalizePrefix and Precompiled.transform_prefix). A NUL byte ends the key, as in Darts.
// It returns the matched byte length (0: no match) and the value.
func (c *CharsMap) search(key string, shortest bool) (int, int) {
	u, ok := c.unit(0)
	if !ok {
		return 0, 0
	}
	pos := unitOffset(u)
	bestLen, bestVal := 0, 0
	for i := 0; i < len(key); i++ {
		b := key[i]
		if b == 0 {
			break
		}
		pos ^= int(b)
		u, ok = c.unit(pos)
		if !ok || unitLabel(u) != uint32(b) {
			break
		}
		pos ^= unitOffset(u)
		if unitHasLeaf(u) {
			leaf, ok := c.unit(pos)
			if !ok {
				break
			}
			bestLen, bestVal = i+1, unitValue(leaf)
			if shortest {
				break
			}
		}
	}
	return bestLen, bestVal
}

// replacement returns the NUL-terminated string at index. A hostile value (past the table or
// inside a multi-byte rune) reports !ok, which callers treat as "no rule" instead of panicking.
func (c *CharsMap) replacement(index int) (string, bool) {
	if index > len(c.normalized) {
		return "", false
	}
	if index < len(c.normalized) && !utf8.RuneStart(c.normalized[index]) {
		return "", false
	}
	end := index
	for end < len(c.normalized) && c.normalized[end] != 0 {
		end++
	}
	return c.normalized[index:end], true
}

// transform is Hugging Face's Precompiled.transform: the replacement of the *shortest* rule that
// is a prefix of chunk (the rest of chunk is dropped when a rule matches).
func (c *CharsMap) transform(chunk string) (string, bool) {
	n, v := c.search(chunk, true)
	if n == 0 {
		return "", false
	}
	return c.replacement(v)
}

// Prefix is SentencePiece's longest-match rule lookup at the start of s. It returns the
// replacement and the number of bytes of s the rule consumes; n == 0 when no rule applies.
func (c *CharsMap) Prefix(s string) (repl string, n int) {
	n, v := c.search(s, false)
	if n == 0 {
		return "", 0
	}
	r, ok := c.replacement(v)
	if !ok {
		return "", 0
	}
	return r, n
}

// Edit is one rune of a normalizer's output together with Hugging Face's change code, the
// `(char, isize)` pairs that `NormalizedString::transform` consumes:
//   - 0: the rune replaces the next original rune;
//   - 1: the rune is inserted (it takes the alignment of the byte before it);
//   - -N: the rune replaces the next original rune and N more original runes are removed.
type Edit struct {
	R      rune
	Change int
}

// Edits is the Hugging Face `Precompiled` normalizer (tokenizers' normalizers/precompiled.rs
// over the spm_precompiled crate). The text is cut into extended grapheme clusters; a cluster
// shorter than 6 bytes is first looked up whole (shortest rule that is a prefix of it, the rest
// of the cluster being dropped), otherwise each rune is looked up on its own. The edits are
// appended to dst and describe the whole of s; changed reports whether any rule applied (Hugging
// Face leaves the string untouched otherwise).
//
// Removals keep Hugging Face's accounting exactly, including its quirk that a removed rune with
// no output rune before it is not recorded (so the next output rune takes its alignment).
func (c *CharsMap) Edits(s string, dst []Edit) ([]Edit, bool) {
	changed := false
	for start := 0; start < len(s); {
		if b := s[start]; b < utf8.RuneSelf && b != '\r' && (start+1 == len(s) || s[start+1] < utf8.RuneSelf) {
			if rule := c.ascii[b]; rule.ok {
				changed = true
				dst = appendReplace(dst, 1, rule.repl)
			} else {
				dst = append(dst, Edit{R: rune(b)})
			}
			start++
			continue
		}
		end := start + graphemeLen(s[start:])
		g := s[start:end]
		if len(g) < 6 {
			if repl, ok := c.transform(g); ok {
				changed = true
				dst = appendReplace(dst, utf8.RuneCountInString(g), repl)
				start = end
				continue
			}
		}
		for i := 0; i < len(g); {
			r, size := utf8.DecodeRuneInString(g[i:])
			if repl, ok := c.transform(g[i : i+size]); ok {
				changed = true
				dst = appendReplace(dst, 1, repl)
			} else {
				dst = append(dst, Edit{R: r})
			}
			i += size
		}
		start = end
	}
	return dst, changed
}

// appendReplace records oldCount runes becoming repl, as tokenizers' `replace` helper does:
// every new rune is a replacement (0); surplus runes are marked inserted (1) from the end; a
// deficit is charged to the last edit so far (possibly one from an earlier cluster).
func appendReplace(dst []Edit, oldCount int, repl string) []Edit {
	first := len(dst)
	for _, r := range repl {
		dst = append(dst, Edit{R: r})
	}
	diff := (len(dst) - first) - oldCount
	switch {
	case diff > 0:
		for i := len(dst) - 1; i >= 0 && diff > 0; i-- {
			dst[i].Change = 1
			diff--
		}
	case diff < 0:
		if len(dst) > 0 {
			dst[len(dst)-1].Change += diff
		}
	}
	return dst
}

// Normalize applies the Hugging Face Precompiled normalizer to s and returns the result with its
// alignment: align[i] is the [start, end) byte range of s that output byte i comes from, computed
// exactly as `NormalizedString::transform` would on a fresh string.
func (c *CharsMap) Normalize(s string) (string, [][2]int) {
	edits, changed := c.Edits(s, nil)
	if !changed {
		align := make([][2]int, len(s))
		for i := 0; i < len(s); {
			_, size := utf8.DecodeRuneInString(s[i:])
			for j := 0; j < size; j++ {
				align[i+j] = [2]int{i, i + size}
			}
			i += size
		}
		return s, align
	}
	return ApplyEdits(s, edits)
}

// ApplyEdits replays edits over s the way `NormalizedString::transform_range` does on a string
// whose alignment is still the identity, returning the new string and its per-byte alignment to
// s. It tolerates edit lists that consume more or fewer runes than s has.
func ApplyEdits(s string, edits []Edit) (string, [][2]int) {
	// Identity alignment of s, per byte.
	runeAt := func(off int) (int, int) { // byte range of the rune containing off
		if off >= len(s) {
			return len(s), len(s)
		}
		st := off
		for st > 0 && !utf8.RuneStart(s[st]) {
			st--
		}
		_, size := utf8.DecodeRuneInString(s[st:])
		return st, st + size
	}
	out := make([]byte, 0, len(s))
	align := make([][2]int, 0, len(s))
	off := 0 // byte offset into s of the next rune to be replaced
	next := func() int {
		if off >= len(s) {
			return 0
		}
		_, size := utf8.DecodeRuneInString(s[off:])
		return size
	}
	var buf [utf8.UTFMax]byte
	for _, e := range edits {
		var a [2]int
		if e.Change > 0 {
			if off >= 1 {
				a[0], a[1] = runeAt(off - 1)
			}
		} else {
			a[0], a[1] = runeAt(off)
			off += next()
			for k := 0; k < -e.Change; k++ {
				off += next()
			}
		}
		n := utf8.EncodeRune(buf[:], e.R)
		out = append(out, buf[:n]...)
		for j := 0; j < n; j++ {
			align = append(align, a)
		}
	}
	return string(out), align
}
