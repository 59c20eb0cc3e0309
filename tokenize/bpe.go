package tokenize

import (
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"unicode/utf8"
)

// bpe is the byte-pair-encoding model. For byte-level vocabularies (GPT-2, RoBERTa, Qwen) it
// works directly on the raw bytes of a word: the initial symbols are the ids of the byte's
// printable stand-in character, so no mapped copy of the text is ever built.
type bpe struct {
	vocab     map[string]int
	idToTok   []string
	merges    map[uint64]mergeInfo // (left id << 32 | right id) → rank, result
	byteLevel bool
	byteID    [256]int32 // byte-level: id of each byte's character (-1 if absent)

	unk            string
	unkID          int // -1 when no unk token
	fuseUnk        bool
	byteFallback   bool
	contPrefix     string
	endOfWordSufix string
	ignoreMerges   bool

	cache *bpeCache
}

type mergeInfo struct {
	rank  int32
	newID int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bytesToUnicode is GPT-2's reversible byte → printable character table.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// byteLevelString maps raw bytes to GPT-2's printable characters.
func byteLevelString(s string) string {
	buf := make([]rune, 0, len(s))
	for i := 0; i < len(s); i++ {
		buf = append(buf, byteToRune[s[i]])
	}
	return string(buf)
}

// newBPE builds the model. merges are pairs of token strings in rank order.
func newBPE(vocab map[string]int, merges [][2]string, byteLevel bool) (*bpe, error) {
	m := &bpe{vocab: vocab, merges: make(map[uint64]mergeInfo, len(merges)), byteLevel: byteLevel, unkID: -1}
	maxID := -1
	for t, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("bpe: negative id %d for %q", id, t)
		}
		if id > maxID {
			maxID = id
		}
	}
	m.idToTok = make([]string, maxID+1)
	for t, id := range vocab {
		m.idToTok[id] = t
	}
	for i, p := range merges {
		a, ok1 := vocab[p[0]]
		b, ok2 := vocab[p[1]]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("bpe: merge %d (%q %q) uses a token missing from the vocabulary", i, p[0], p[1])
		}
		c, ok := vocab[p[0]+p[1]]
		if !ok {
			return nil, fmt.Errorf("bpe: merge %d result %q is missing from the vocabulary", i, p[0]+p[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := m.merges[k]; !dup {
			m.merges[k] = mergeInfo{int32(i), int32(c)}
		}
	}
	for b := 0; b < 256; b++ {
		m.byteID[b] = -1
		if id, ok := vocab[string(byteToRune[b])]; ok {
			m.byteID[b] = int32(id)
		}
	}
	m.cache = newBPECache()
	return m, nil
}

// bpeCache is a direct-mapped, lock-free word cache: a slot holds an immutable entry that is
// replaced atomically, so concurrent encoders never block each other.
type bpeCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[bpeEntry]
}

type bpeEntry struct {
	word string
	toks []bpeTok
}

type bpeTok struct {
	id         int32
	start, end int32
}

const bpeCacheSlots = 1 << 16

func newBPECache() *bpeCache {
	return &bpeCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[bpeEntry], bpeCacheSlots)}
}

// Words longer than this are not cached (they are rare and would pin memory).
const bpeCacheMaxWord = 256

func (m *bpe) tokenize(word string, out []rawToken, sc *scratch) ([]rawToken, error) {
	if word == "" {
		return out, nil
	}
	if m.ignoreMerges {
		if id, ok := m.lookupWhole(word); ok {
			return append(out, rawToken{id, m.idToTok[id], 0, len(word)}), nil
		}
	}
	var slot *atomic.Pointer[bpeEntry]
	if len(word) <= bpeCacheMaxWord {
		h := maphash.String(m.cache.seed, word)
		slot = &m.cache.slots[h&(bpeCacheSlots-1)]
		if e := slot.Load(); e != nil && e.word == word {
			for _, t := range e.toks {
				out = append(out, rawToken{int(t.id), m.idToTok[t.id], int(t.start), int(t.end)})
			}
			return out, nil
		}
	}
	toks, err := m.merge(word, sc)
	if err != nil {
		return out, err
	}
	for _, t := range toks {
		out = append(out, rawToken{int(t.id), m.idToTok[t.id], int(t.start), int(t.end)})
	}
	if slot != nil {
		cp := make([]bpeTok, len(toks))
		copy(cp, toks)
		slot.Store(&bpeEntry{word: word, toks: cp})
	}
	return out, nil
}

func (m *bpe) lookupWhole(word string) (int, bool) {
	if m.byteLevel {
		id, ok := m.vocab[byteLevelString(word)]
		return id, ok
	}
	id, ok := m.vocab[word]
	return id, ok
}

type bpeSym struct {
	id         int32
	start, end int32
	prev, next int32
}

type bpeMerge struct {
	rank, pos, newID int32
}

// initialSymbols splits the word into its starting symbols.
func (m *bpe) initialSymbols(word string, syms []bpeSym) ([]bpeSym, error) {
	if m.byteLevel {
		for i := 0; i < len(word); i++ {
			id := m.byteID[word[i]]
			if id < 0 {
				return nil, fmt.Errorf("bpe: byte 0x%02x has no vocabulary entry", word[i])
			}
			syms = append(syms, bpeSym{id: id, start: int32(i), end: int32(i + 1)})
		}
		return syms, nil
	}
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+size]
		if m.contPrefix != "" && i > 0 {
			s = m.contPrefix + s
		}
		if m.endOfWordSufix != "" && i+size == len(word) {
			s += m.endOfWordSufix
		}
		if id, ok := m.vocab[s]; ok {
			syms = append(syms, bpeSym{id: int32(id), start: int32(i), end: int32(i + size)})
		} else if m.byteFallback {
			for k := i; k < i+size; k++ {
				bid, ok := m.vocab[fmt.Sprintf("<0x%02X>", word[k])]
				if !ok {
					return nil, fmt.Errorf("bpe: byte-fallback token <0x%02X> missing", word[k])
				}
				syms = append(syms, bpeSym{id: int32(bid), start: int32(k), end: int32(k + 1)})
			}
		} else if m.unkID >= 0 {
			if m.fuseUnk && len(syms) > 0 && syms[len(syms)-1].id == int32(m.unkID) {
				syms[len(syms)-1].end = int32(i + size)
			} else {
				syms = append(syms, bpeSym{id: int32(m.unkID), start: int32(i), end: int32(i + size)})
			}
		} else {
			// The message names the position, never the character: errors may be logged and
			// the text is clinical.
			return nil, fmt.Errorf("bpe: the character at byte %d of a word is not in the vocabulary and the model has no unk token", i)
		}
		i += size
	}
	return syms, nil
}

// merge applies the merges with Hugging Face's priority order: lowest rank first, ties broken
// by leftmost position. It keeps the same queue discipline (stale entries are skipped when the
// pair at their position no longer produces the same token) so results are identical.
func (m *bpe) merge(word string, sc *scratch) ([]bpeTok, error) {
	syms, err := m.initialSymbols(word, sc.syms[:0])
	if err != nil {
		return nil, err
	}
	n := len(syms)
	for i := range syms {
		syms[i].prev = int32(i - 1)
		syms[i].next = int32(i + 1)
	}
	if n > 0 {
		syms[n-1].next = -1
	}
	h := sc.heap[:0]
	for i := 0; i+1 < n; i++ {
		if mi, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h = heapPush(h, bpeMerge{mi.rank, int32(i), mi.newID})
		}
	}
	for len(h) > 0 {
		var top bpeMerge
		top, h = heapPop(h)
		cur := &syms[top.pos]
		if cur.end == cur.start || cur.next == -1 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		if mi, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mi.newID != top.newID {
			continue
		}
		cur.id = top.newID
		cur.end = right.end
		cur.next = right.next
		syms[nextPos].end = syms[nextPos].start // removed
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			p := syms[cur.prev]
			if mi, ok := m.merges[pairKey(p.id, cur.id)]; ok {
				h = heapPush(h, bpeMerge{mi.rank, cur.prev, mi.newID})
			}
		}
		if cur.next >= 0 {
			nx := syms[cur.next]
			if mi, ok := m.merges[pairKey(cur.id, nx.id)]; ok {
				h = heapPush(h, bpeMerge{mi.rank, top.pos, mi.newID})
			}
		}
	}
	sc.heap = h
	toks := sc.toks[:0]
	for _, s := range syms {
		if s.end != s.start {
			toks = append(toks, bpeTok{s.id, s.start, s.end})
		}
	}
	sc.syms = syms
	sc.toks = toks
	return toks, nil
}

func mergeLess(a, b bpeMerge) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.pos < b.pos
}

func heapPush(h []bpeMerge, x bpeMerge) []bpeMerge {
	h = append(h, x)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !mergeLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []bpeMerge) (bpeMerge, []bpeMerge) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		c := l
		if r := l + 1; r < len(h) && mergeLess(h[r], h[l]) {
			c = r
		}
		if !mergeLess(h[c], h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	return top, h
}

func (m *bpe) tokenToID(t string) (int, bool) { id, ok := m.vocab[t]; return id, ok }
func (m *bpe) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(m.idToTok) {
		return "", false
	}
	return m.idToTok[id], true
}
func (m *bpe) vocabSize() int { return len(m.vocab) }
