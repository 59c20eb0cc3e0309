package sentencepiece

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// TestXLNetPipeline rebuilds XLNetTokenizerFast around this package (quote replacement, NFKD,
// accent stripping, the charsmap, WhitespaceSplit, Metaspace, Unigram) and checks every XLNet
// reference record's tokens and ids without specials. Where the first three steps leave the
// text unchanged, the charsmap alignment is the whole story, and byte offsets must match too.
func TestXLNetPipeline(t *testing.T) {
	f := loadXLNet(t)
	cm, err := ParseCharsMap(f.charsmap)
	if err != nil {
		t.Fatal(err)
	}
	uni, err := NewUnigram(f.vocab, f.unkID, false)
	if err != nil {
		t.Fatal(err)
	}
	offsetsChecked := 0
	for _, r := range loadRecords(t, "xlnet-base-cased") {
		if r.Kind != "text" {
			continue
		}
		n := len(r.IDs) - 2 // without the trailing <sep> <cls>
		special := false
		for k, id := range r.IDs[:max(n, 0)] {
			// ids 0-8 are added tokens (<unk> <s> </s> <cls> <sep> <pad> <mask> <eod> <eop>)
			special = special || id < 9 && r.Tokens[k] == f.vocab[id].Piece
		}
		if special { // special tokens typed in the text are the tokenize package's business
			continue
		}
		t.Run(r.ID, func(t *testing.T) {
			pre := strings.ReplaceAll(strings.ReplaceAll(r.Text, "``", `"`), "''", `"`)
			pre = norm.NFKD.String(pre)
			pre = strings.Map(func(c rune) rune {
				if unicode.Is(unicode.Mn, c) {
					return -1
				}
				return c
			}, pre)
			exact := pre == r.Text
			s, align := cm.Normalize(pre)
			if len(align) != len(s) {
				t.Fatalf("alignment has %d entries for %d bytes", len(align), len(s))
			}
			var pieces []string
			var ids []int
			var offs [][2]int
			for i := 0; i < len(s); {
				c, size := utf8.DecodeRuneInString(s[i:])
				if unicode.IsSpace(c) {
					i += size
					continue
				}
				j := i
				for j < len(s) {
					c, size := utf8.DecodeRuneInString(s[j:])
					if unicode.IsSpace(c) {
						break
					}
					j += size
				}
				word := "\u2581" + s[i:j]
				toks, err := uni.Encode(word, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, tk := range toks {
					pieces = append(pieces, tk.Piece)
					ids = append(ids, tk.ID)
					// The prepended ▁ shares the alignment of the word's first character.
					st, en := max(tk.Start-3, 0)+i, max(tk.End-3, 1)+i
					offs = append(offs, [2]int{align[st][0], align[en-1][1]})
				}
				i = j
			}
			if !equalStrings(pieces, r.Tokens[:n]) || !equalInts(ids, r.IDsNoSpecial) {
				t.Fatalf("normalized %q\n got %q %v\nwant %q %v", s, pieces, ids, r.Tokens[:n], r.IDsNoSpecial)
			}
			if exact {
				offsetsChecked++
				for k := range offs {
					if offs[k] != r.ByteOffsets[k] {
						t.Errorf("token %d %q: byte offsets %v, want %v", k, pieces[k], offs[k], r.ByteOffsets[k])
					}
				}
			}
		})
	}
	t.Logf("byte offsets checked on %d records", offsetsChecked)
	if offsetsChecked < 30 {
		t.Errorf("offsets checked on only %d records", offsetsChecked)
	}
}
