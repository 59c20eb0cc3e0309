package tokenize

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/clinfer/clinfer/internal/reftest"
)

// refDir is the directory of tokenizer reference folders (CLINFER_TOKENIZER_REFS overrides).
func refDir() string {
	return reftest.Dir("CLINFER_TOKENIZER_REFS", filepath.Join("..", "testdata", "tokenizers"))
}

type refRecord struct {
	ID                 string   `json:"id"`
	Kind               string   `json:"kind"`
	Text               string   `json:"text"`
	Words              []string `json:"words"`
	IDs                []int    `json:"ids"`
	Tokens             []string `json:"tokens"`
	Offsets            [][2]int `json:"offsets"`
	ByteOffsets        [][2]int `json:"byte_offsets"`
	TypeIDs            []int    `json:"type_ids"`
	SpecialTokensMask  []int    `json:"special_tokens_mask"`
	WordIDs            []*int   `json:"word_ids"`
	IDsNoSpecial       []int    `json:"ids_no_special"`
	DecodedSkipSpecial *string  `json:"decoded_skip_special"`
	raw                map[string]json.RawMessage
}

func readRecords(t *testing.T, path string) []refRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []refRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<24), 1<<24)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r refRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := json.Unmarshal(sc.Bytes(), &r.raw); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var tokCache sync.Map

// loadRefTokenizer loads a folder's tokenizer.json once per test binary.
func loadRefTokenizer(t *testing.T, dir string) *Tokenizer {
	t.Helper()
	if v, ok := tokCache.Load(dir); ok {
		return v.(*Tokenizer)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	tokCache.Store(dir, tok)
	return tok
}

func offs(o []Offset) [][2]int {
	out := make([][2]int, len(o))
	for i, x := range o {
		out[i] = [2]int{x.Start, x.End}
	}
	return out
}

func wordIDs(w []int) []*int {
	out := make([]*int, len(w))
	for i, x := range w {
		if x >= 0 {
			v := x
			out[i] = &v
		}
	}
	return out
}

func fmtWords(w []*int) string {
	s := "["
	for i, x := range w {
		if i > 0 {
			s += " "
		}
		if x == nil {
			s += "null"
		} else {
			s += fmt.Sprint(*x)
		}
	}
	return s + "]"
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// TestReference reproduces every record of every reference.jsonl / reference-llamacpp.jsonl.
func TestReference(t *testing.T) {
	root := refDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		files, _ := filepath.Glob(filepath.Join(dir, "reference*.jsonl"))
		sort.Strings(files)
		var recs []refRecord
		for _, f := range files {
			base := filepath.Base(f)
			if base != "reference.jsonl" && base != "reference-llamacpp.jsonl" {
				continue
			}
			for _, r := range readRecords(t, f) {
				if base == "reference-llamacpp.jsonl" {
					r.ID = "llamacpp-" + r.ID
				}
				recs = append(recs, r)
			}
		}
		if len(recs) == 0 {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			tok := loadRefTokenizer(t, dir)
			for _, r := range recs {
				r := r
				ran++
				t.Run(r.ID, func(t *testing.T) { checkRecord(t, tok, r) })
			}
		})
	}
	if ran == 0 {
		t.Fatalf("no reference records under %s", root)
	}
}

func checkRecord(t *testing.T, tok *Tokenizer, r refRecord) {
	if r.Kind == "words" {
		enc, err := tok.EncodeWords(r.Words)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "ids", enc.IDs, r.IDs)
		check(t, "tokens", enc.Tokens, r.Tokens)
		check(t, "offsets", offs(enc.CharOffsets), r.Offsets)
		check(t, "special_tokens_mask", enc.SpecialTokensMask, r.SpecialTokensMask)
		if got := wordIDs(enc.WordIDs); !reflect.DeepEqual(got, r.WordIDs) {
			t.Errorf("word_ids:\n got %s\nwant %s", fmtWords(got), fmtWords(r.WordIDs))
		}
		return
	}
	if r.IDs != nil {
		enc, err := tok.Encode(r.Text)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "ids", enc.IDs, r.IDs)
		check(t, "tokens", enc.Tokens, r.Tokens)
		if r.Offsets != nil {
			check(t, "offsets", offs(enc.CharOffsets), r.Offsets)
		}
		if r.ByteOffsets != nil {
			check(t, "byte_offsets", offs(enc.Offsets), r.ByteOffsets)
		}
		if r.TypeIDs != nil {
			check(t, "type_ids", enc.TypeIDs, r.TypeIDs)
		}
		if r.SpecialTokensMask != nil {
			check(t, "special_tokens_mask", enc.SpecialTokensMask, r.SpecialTokensMask)
		}
		if r.WordIDs != nil {
			if got := wordIDs(enc.WordIDs); !reflect.DeepEqual(got, r.WordIDs) {
				t.Errorf("word_ids:\n got %s\nwant %s", fmtWords(got), fmtWords(r.WordIDs))
			}
		}
		for i, o := range enc.Offsets {
			if o.Start < 0 || o.End > len(r.Text) || o.Start > o.End {
				t.Errorf("token %d: byte offset %v outside text of %d bytes", i, o, len(r.Text))
			}
		}
		if r.DecodedSkipSpecial != nil {
			check(t, "decoded_skip_special", tok.Decode(enc.IDs, true), *r.DecodedSkipSpecial)
		}
	}
	if r.IDsNoSpecial != nil {
		enc, err := tok.EncodeInput(Input{Text: r.Text}, Options{NoSpecialTokens: true})
		if err != nil {
			t.Fatal(err)
		}
		check(t, "ids_no_special", enc.IDs, r.IDsNoSpecial)
	}
}
