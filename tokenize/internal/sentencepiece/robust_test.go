package sentencepiece

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendField encodes one protobuf field (test helper for hand-built models).
func appendField(b []byte, field, wt int, payload []byte, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|wt))
	switch wt {
	case wireVarint:
		return binary.AppendUvarint(b, v)
	case wireFixed32:
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	default:
		b = binary.AppendUvarint(b, uint64(len(payload)))
		return append(b, payload...)
	}
}

func piece(s string, score float32, typ PieceType) []byte {
	var p []byte
	p = appendField(p, 1, wireBytes, []byte(s), 0)
	p = appendField(p, 2, wireFixed32, nil, uint64(math.Float32bits(score)))
	if typ != Normal {
		p = appendField(p, 3, wireVarint, nil, uint64(typ))
	}
	return p
}

func TestParseModelProtoHandBuilt(t *testing.T) {
	var m []byte
	m = appendField(m, 1, wireBytes, piece("<unk>", 0, Unknown), 0)
	m = appendField(m, 1, wireBytes, piece("▁a", -1.5, Normal), 0)
	m = appendField(m, 1, wireBytes, piece("<0x41>", 0, Byte), 0)
	var tr []byte
	tr = appendField(tr, 3, wireVarint, nil, uint64(ModelBPE))
	tr = appendField(tr, 43, wireVarint, nil, uint64(math.MaxUint64)) // pad_id = -1, sign-extended
	tr = appendField(tr, 35, wireVarint, nil, 1)
	tr = binary.AppendUvarint(tr, 99<<3|wireFixed64) // unknown field, skipped
	tr = binary.LittleEndian.AppendUint64(tr, 0)
	m = appendField(m, 2, wireBytes, tr, 0)
	var ns []byte
	ns = appendField(ns, 1, wireBytes, []byte("identity"), 0)
	ns = appendField(ns, 3, wireVarint, nil, 0)
	m = appendField(m, 3, wireBytes, ns, 0)
	got, err := ParseModelProto(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pieces) != 3 || got.Pieces[1] != (ProtoPiece{"▁a", -1.5, Normal}) || got.Pieces[2].Type != Byte {
		t.Errorf("pieces %+v", got.Pieces)
	}
	if got.Trainer.ModelType != ModelBPE || got.Trainer.PadID != -1 || !got.Trainer.ByteFallback || got.Trainer.UnkID != 0 || got.Trainer.EosID != 2 {
		t.Errorf("trainer %+v", got.Trainer)
	}
	if got.Normalizer.Name != "identity" || got.Normalizer.AddDummyPrefix || !got.Normalizer.EscapeWhitespaces {
		t.Errorf("normalizer %+v", got.Normalizer)
	}
}

func TestParseModelProtoHostile(t *testing.T) {
	real, err := os.ReadFile(filepath.Join(refsDir(), "xlnet-base-cased", "spiece.model"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":            {},
		"truncated":        real[:len(real)/2+3],
		"truncated varint": {0x0a, 0xff},
		"length overflow":  {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"field zero":       {0x00, 0x01},
		"bad wire type":    {0x0f},
		"unclosed group":   {0x0b, 0x08, 0x01},
		"bad utf8 piece":   appendField(nil, 1, wireBytes, appendField(nil, 1, wireBytes, []byte{0xff, 0xfe}, 0), 0),
		"bad piece type":   appendField(nil, 1, wireBytes, appendField(nil, 3, wireVarint, nil, 9), 0),
		"nan score":        appendField(nil, 1, wireBytes, appendField(nil, 2, wireFixed32, nil, 0x7fc00000), 0),
		"no pieces":        appendField(nil, 3, wireBytes, nil, 0),
		"11-byte varint":   {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"deep groups":      []byte(strings.Repeat("\x0b", 100)),
	}
	for name, data := range cases {
		if _, err := ParseModelProto(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := LoadModelProto(filepath.Join(t.TempDir(), "missing.model")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestParseCharsMapHostile(t *testing.T) {
	for name, blob := range map[string][]byte{
		"short":        {1, 0},
		"size too big": {0xff, 0, 0, 0, 1, 2},
		"size not x4":  {3, 0, 0, 0, 1, 2, 3},
		"zero trie":    {0, 0, 0, 0},
		"bad utf8":     {4, 0, 0, 0, 0, 0, 0, 0, 0xff},
	} {
		if _, err := ParseCharsMap(blob); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// TestCharsMapEdits pins the Hugging Face Precompiled semantics on strings whose expected
// output is known from nmt_nfkc and tokenizers' rules.
func TestCharsMapEdits(t *testing.T) {
	f := loadXLNet(t)
	cm, err := ParseCharsMap(f.charsmap)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, out string
		align   [][2]int // nil: not checked
	}{
		{"abc", "abc", nil},
		{"ＡＢ", "AB", [][2]int{{0, 3}, {3, 6}}},
		{"™", "TM", [][2]int{{0, 3}, {0, 3}}},
		{"ﬁne", "fine", [][2]int{{0, 3}, {0, 3}, {3, 4}, {4, 5}}},
		{"a\u00a0b", "a b", [][2]int{{0, 1}, {1, 3}, {3, 4}}},
		// "\r\n" is one grapheme: the rule for "\r" (a space) replaces the whole cluster.
		{"x\r\ny", "x y", [][2]int{{0, 1}, {1, 2}, {3, 4}}},
		{"①", "1", nil},
		{"㎎", "mg", nil},
	}
	for _, c := range cases {
		out, align := cm.Normalize(c.in)
		if out != c.out {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, out, c.out)
			continue
		}
		if c.align != nil && !equalAlign(align, c.align) {
			t.Errorf("Normalize(%q) alignment %v, want %v", c.in, align, c.align)
		}
	}
}

func equalAlign(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestApplyEditsRemovalQuirk: a removal with no earlier output rune is not recorded, so the next
// output rune takes the removed rune's alignment (tokenizers' behaviour, kept on purpose).
func TestApplyEditsRemovalQuirk(t *testing.T) {
	var edits []Edit
	edits = appendReplace(edits, 1, "") // "\x1e" removed first: nothing to charge
	edits = append(edits, Edit{R: 'g'})
	out, align := ApplyEdits("\x1eg", edits)
	if out != "g" || !equalAlign(align, [][2]int{{0, 1}}) {
		t.Errorf("got %q %v", out, align)
	}
	edits = edits[:0]
	edits = appendReplace(edits, 1, "TM")
	edits = appendReplace(edits, 1, "")
	edits = append(edits, Edit{R: 'g'})
	// tokenizers' own test case: the removal cancels M's insertion mark, so M now "replaces"
	// the removed \x1e and takes its alignment.
	out, align = ApplyEdits("™\x1eg", edits)
	if out != "TMg" || !equalAlign(align, [][2]int{{0, 3}, {3, 4}, {4, 5}}) {
		t.Errorf("got %q %v", out, align)
	}
}

func TestUnigramByteFallbackAndUnk(t *testing.T) {
	vocab := []VocabEntry{{"<unk>", 0}, {"a", -1}, {"b", -2}, {"ab", -1.5}, {"<0xC3>", -5}, {"<0xA9>", -5}}
	u, err := NewUnigram(vocab, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := u.Encode("abéa", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{{3, "ab", 0, 2}, {4, "<0xC3>", 2, 4}, {5, "<0xA9>", 2, 4}, {1, "a", 4, 5}}
	if len(toks) != len(want) {
		t.Fatalf("got %+v", toks)
	}
	for i := range want {
		if toks[i] != want[i] {
			t.Errorf("token %d: %+v, want %+v", i, toks[i], want[i])
		}
	}
	// Without fallback, consecutive unknowns fuse into one unk token carrying the raw text.
	u2, _ := NewUnigram(vocab, 0, false)
	toks, _ = u2.Encode("aéü😀b", nil)
	if len(toks) != 3 || toks[1] != (Token{0, "éü😀", 1, 9}) {
		t.Errorf("got %+v", toks)
	}
	u3, _ := NewUnigram(vocab[1:], -1, false)
	if _, err := u3.Encode("x", nil); !errors.Is(err, ErrNoUnk) {
		t.Errorf("no unk id: got %v", err)
	}
	if _, err := NewUnigram(vocab, 10, false); err == nil {
		t.Error("unk id outside the vocabulary accepted")
	}
}

func FuzzParseModelProto(f *testing.F) {
	real, err := os.ReadFile(filepath.Join(refsDir(), "xlnet-base-cased", "spiece.model"))
	if err == nil {
		f.Add(real[:512])
	}
	f.Add(appendField(nil, 1, wireBytes, piece("<unk>", 0, Unknown), 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseModelProto(data)
		if err != nil {
			return
		}
		if len(m.Normalizer.PrecompiledCharsmap) > 0 {
			if cm, err := ParseCharsMap(m.Normalizer.PrecompiledCharsmap); err == nil {
				cm.Normalize("Hello ＡＢ ﬁ\r\n")
			}
		}
		if n, err := NewNormalizer(m); err == nil {
			n.Normalize("  a  b ")
		}
		if u, err := NewSentencePieceUnigram(m); err == nil {
			_, _ = u.Encode("▁ab", nil)
		}
	})
}

// FuzzCharsMap runs arbitrary text through the real nmt_nfkc map and arbitrary maps: no panic,
// alignment of the right length, ranges inside the input and on rune boundaries.
func FuzzCharsMap(f *testing.F) {
	f.Add([]byte(nil), "ﬁne ① ½ ™ ㎎ µg Ⅳ ＡＢＣ１２３ a\u00a0b\r\n\x00\x1e 👩\u200d⚕️")
	f.Add([]byte{8, 0, 0, 0, 0, 4, 0, 0, 0x41, 0x01, 0, 0, 'x', 0}, "A\xffé")
	var real *CharsMap
	var native *Normalizer
	if m, err := LoadModelProto(filepath.Join(refsDir(), "xlnet-base-cased", "spiece.model")); err == nil {
		real, _ = ParseCharsMap(m.Normalizer.PrecompiledCharsmap)
		native, _ = NewNormalizer(m)
	}
	f.Fuzz(func(t *testing.T, blob []byte, s string) {
		if native != nil {
			out, toOrig := native.Normalize(s)
			if len(toOrig) != len(out)+1 {
				t.Fatalf("norm_to_orig has %d entries for %d bytes", len(toOrig), len(out))
			}
			for i, o := range toOrig {
				if o < 0 || o > len(s) || i > 0 && o < toOrig[i-1] {
					t.Fatalf("norm_to_orig %v not monotonic within [0,%d]", toOrig, len(s))
				}
			}
		}
		maps := []*CharsMap{real}
		if cm, err := ParseCharsMap(blob); err == nil {
			maps = append(maps, cm)
		}
		for _, cm := range maps {
			if cm == nil {
				continue
			}
			out, align := cm.Normalize(s)
			if len(align) != len(out) {
				t.Fatalf("%d alignments for %d bytes", len(align), len(out))
			}
			for _, a := range align {
				if a[0] < 0 || a[1] > len(s) || a[0] > a[1] {
					t.Fatalf("alignment %v outside [0,%d]", a, len(s))
				}
			}
			if utf8.ValidString(s) && !utf8.ValidString(out) {
				t.Fatalf("valid input gave invalid output %q", out)
			}
			cm.Prefix(s)
		}
	})
}

// FuzzUnigram: tokens tile the input exactly, in order, whatever the text.
func FuzzUnigram(f *testing.F) {
	m, err := LoadModelProto(filepath.Join(refsDir(), "xlnet-base-cased", "spiece.model"))
	if err != nil {
		f.Fatal(err)
	}
	u, err := NewUnigram(DigitCommaPenalty(m.Vocab()), int(m.Trainer.UnkID), false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("▁Hello▁world")
	f.Add("▁1,000,000▁😀\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := u.Encode(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		at := 0
		for _, tk := range toks {
			if tk.Start != at || tk.End <= tk.Start || s[tk.Start:tk.End] != tk.Piece {
				t.Fatalf("token %+v does not continue at %d", tk, at)
			}
			at = tk.End
		}
		if at != len(s) {
			t.Fatalf("tokens cover %d of %d bytes", at, len(s))
		}
	})
}

func TestGraphemeLen(t *testing.T) {
	cases := []struct {
		s    string
		want int
	}{
		{"ab", 1},
		{"\r\nx", 2},
		{"\n\r", 1},
		{"e\u0301x", 3},                       // combining acute
		{"a\u200dx", 4},                       // ZWJ extends
		{"a\u200bx", 1},                       // ZWSP is a control: break
		{"\u06001", 3},                        // prepend mark
		{"\U0001F469\u200d\u2695\ufe0fx", 13}, // ZWJ emoji sequence
		{"\U0001F1E9\U0001F1EA\U0001F1EB", 8}, // one flag, then a lone regional indicator
		{"\u1100\u1161\u11a8x", 9},            // Hangul L V T
		{"\uac00\u11a8x", 6},                  // LV T
		{"\u0915\u093fx", 6},                  // Devanagari consonant + spacing vowel sign
		{"\xff\u0301", 1},                     // invalid byte stands alone
		{"\u0e01\u0e33x", 6},                  // Thai SARA AM is a SpacingMark
	}
	for _, c := range cases {
		if got := graphemeLen(c.s); got != c.want {
			t.Errorf("graphemeLen(%q) = %d, want %d", c.s, got, c.want)
		}
	}
}
