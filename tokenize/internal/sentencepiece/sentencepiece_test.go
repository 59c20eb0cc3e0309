package sentencepiece

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// refsDir is the tokenizer reference folder (overridable like the tokenize package's harness).
func refsDir() string {
	if d := os.Getenv("CLINFER_TOKENIZER_REFS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "testdata", "tokenizers")
}

type xlnetJSON struct {
	Normalizer struct {
		Normalizers []struct {
			Type                string `json:"type"`
			PrecompiledCharsmap string `json:"precompiled_charsmap"`
		} `json:"normalizers"`
	} `json:"normalizer"`
	Model struct {
		UnkID *int              `json:"unk_id"`
		Vocab []json.RawMessage `json:"vocab"`
	} `json:"model"`
}

type xlnetFiles struct {
	proto    *ModelProto
	vocab    []VocabEntry // from tokenizer.json
	charsmap []byte       // from tokenizer.json
	unkID    int
}

var (
	xlnetOnce   sync.Once
	xlnetCached *xlnetFiles
	xlnetErr    error
)

// loadXLNet parses the XLNet files once per test binary: several tests and fuzz targets need
// them, and tokenizer.json takes a while to decode under -race.
func loadXLNet(t testing.TB) *xlnetFiles {
	t.Helper()
	xlnetOnce.Do(func() { xlnetCached, xlnetErr = readXLNet() })
	if xlnetErr != nil {
		t.Fatal(xlnetErr)
	}
	return xlnetCached
}

func readXLNet() (*xlnetFiles, error) {
	dir := filepath.Join(refsDir(), "xlnet-base-cased")
	m, err := LoadModelProto(filepath.Join(dir, "spiece.model"))
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	var tj xlnetJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, err
	}
	f := &xlnetFiles{proto: m, unkID: -1}
	if tj.Model.UnkID != nil {
		f.unkID = *tj.Model.UnkID
	}
	for i, raw := range tj.Model.Vocab {
		var pair [2]any
		if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, fmt.Errorf("vocab[%d]: %v", i, err)
		}
		p, ok1 := pair[0].(string)
		s, ok2 := pair[1].(float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("vocab[%d] = %s", i, raw)
		}
		f.vocab = append(f.vocab, VocabEntry{p, s})
	}
	for _, n := range tj.Normalizer.Normalizers {
		if n.Type == "Precompiled" {
			f.charsmap, err = base64.StdEncoding.DecodeString(n.PrecompiledCharsmap)
			if err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

type refRecord struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	Text         string   `json:"text"`
	Tokens       []string `json:"tokens"`
	IDs          []int    `json:"ids"`
	IDsNoSpecial []int    `json:"ids_no_special"`
	Offsets      [][2]int `json:"offsets"`
	ByteOffsets  [][2]int `json:"byte_offsets"`
	SpecialMask  []int    `json:"special_tokens_mask"`
	SpmIDs       []int    `json:"spm_ids"`
	WordIDs      []*int   `json:"word_ids"`
	SpmPieces    []string `json:"spm_pieces"`
}

func loadRecords(t testing.TB, folder string) []refRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(refsDir(), folder, "reference.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []refRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r refRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestXLNetModelProto(t *testing.T) {
	f := loadXLNet(t)
	m := f.proto
	if got, want := len(m.Pieces), len(f.vocab); got != want {
		t.Fatalf("spiece.model has %d pieces, tokenizer.json %d", got, want)
	}
	if m.Trainer.ModelType != ModelUnigram {
		t.Errorf("model type %v, want UNIGRAM", m.Trainer.ModelType)
	}
	if int(m.Trainer.UnkID) != f.unkID {
		t.Errorf("unk id %d, tokenizer.json says %d", m.Trainer.UnkID, f.unkID)
	}
	if m.Normalizer.Name != "nmt_nfkc" {
		t.Errorf("normalizer %q, want nmt_nfkc", m.Normalizer.Name)
	}
	if string(m.Normalizer.PrecompiledCharsmap) != string(f.charsmap) {
		t.Errorf("precompiled_charsmap differs from tokenizer.json's (%d vs %d bytes)", len(m.Normalizer.PrecompiledCharsmap), len(f.charsmap))
	}
	if !m.Normalizer.AddDummyPrefix || !m.Normalizer.RemoveExtraWhitespaces || !m.Normalizer.EscapeWhitespaces {
		t.Errorf("normalizer flags %+v", m.Normalizer)
	}
	counts := map[PieceType]int{}
	for _, p := range m.Pieces {
		counts[p.Type]++
	}
	t.Logf("piece types %v, trainer %+v", counts, m.Trainer)
	if counts[Unknown] != 1 || m.Pieces[m.Trainer.UnkID].Type != Unknown {
		t.Errorf("want exactly one UNKNOWN piece at unk_id: %v", counts)
	}

	vocab := DigitCommaPenalty(m.Vocab())
	penalized := 0
	for i, e := range vocab {
		if e.Score != float64(m.Pieces[i].Score) {
			penalized++
		}
		if e != f.vocab[i] {
			t.Errorf("piece %d: spiece.model+penalty gives %q %v, tokenizer.json %q %v", i, e.Piece, e.Score, f.vocab[i].Piece, f.vocab[i].Score)
		}
	}
	if penalized != 78 {
		t.Errorf("%d pieces penalized, the README counts 78", penalized)
	}
}

// TestSentencePieceNative reproduces raw SentencePiece 0.1.97 (`spm_pieces`, `spm_ids`) from
// spiece.model alone: charsmap rules by longest match, whitespace handling and EncodeOptimized.
func TestSentencePieceNative(t *testing.T) {
	f := loadXLNet(t)
	norm, err := NewNormalizer(f.proto)
	if err != nil {
		t.Fatal(err)
	}
	uni, err := NewSentencePieceUnigram(f.proto)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range loadRecords(t, "xlnet-base-cased") {
		if r.Kind != "text" || r.SpmPieces == nil {
			continue
		}
		t.Run(r.ID, func(t *testing.T) {
			s, toOrig := norm.Normalize(r.Text)
			if len(toOrig) != len(s)+1 {
				t.Fatalf("norm_to_orig has %d entries for %d bytes", len(toOrig), len(s))
			}
			toks, err := uni.Encode(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			var pieces []string
			var ids []int
			for _, tk := range toks {
				pieces = append(pieces, tk.Piece)
				ids = append(ids, tk.ID)
			}
			if !equalStrings(pieces, r.SpmPieces) || !equalInts(ids, r.SpmIDs) {
				t.Errorf("normalized %q\n got %q %v\nwant %q %v", s, pieces, ids, r.SpmPieces, r.SpmIDs)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
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

func equalInts(a, b []int) bool {
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

// TestXLNetUnigramWords checks the Hugging Face Unigram on the model inputs of every XLNet
// reference record: the non-special tokens of one word, concatenated, are the normalized
// pre-token the model saw (unknown tokens carry their raw text), so segmenting that string must
// give back exactly those tokens, ids and relative byte offsets.
func TestXLNetUnigramWords(t *testing.T) {
	f := loadXLNet(t)
	uni, err := NewUnigram(DigitCommaPenalty(f.proto.Vocab()), int(f.proto.Trainer.UnkID), f.proto.Trainer.ByteFallback)
	if err != nil {
		t.Fatal(err)
	}
	words := 0
	for _, r := range loadRecords(t, "xlnet-base-cased") {
		if r.Kind != "text" {
			continue
		}
		t.Run(r.ID, func(t *testing.T) {
			for i := 0; i < len(r.Tokens); {
				if r.WordIDs[i] == nil {
					i++
					continue
				}
				j := i
				word := ""
				for j < len(r.Tokens) && r.WordIDs[j] != nil && *r.WordIDs[j] == *r.WordIDs[i] {
					word += r.Tokens[j]
					j++
				}
				words++
				toks, err := uni.Encode(word, nil)
				if err != nil {
					t.Fatal(err)
				}
				var pieces []string
				var ids []int
				for _, tk := range toks {
					pieces = append(pieces, tk.Piece)
					ids = append(ids, tk.ID)
				}
				if !equalStrings(pieces, r.Tokens[i:j]) || !equalInts(ids, r.IDs[i:j]) {
					t.Errorf("word %q: got %q %v, want %q %v", word, pieces, ids, r.Tokens[i:j], r.IDs[i:j])
				}
				at := 0
				for _, tk := range toks {
					if tk.Start != at || tk.End != at+len(tk.Piece) {
						t.Errorf("word %q: token %q at [%d,%d), want [%d,%d)", word, tk.Piece, tk.Start, tk.End, at, at+len(tk.Piece))
					}
					at = tk.End
				}
				i = j
			}
		})
	}
	if words < 400 {
		t.Errorf("only %d words checked", words)
	}
}
