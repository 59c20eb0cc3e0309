package tokenize

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func family(t testing.TB, name string) *Tokenizer {
	t.Helper()
	dir := filepath.Join(refDir(), name)
	if v, ok := tokCache.Load(dir); ok {
		return v.(*Tokenizer)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	tokCache.Store(dir, tok)
	return tok
}

var allFamilies = []string{"bert-base-uncased", "bert-base-cased", "bio-clinicalbert", "roberta-base", "qwen2", "xlnet-base-cased"}

// checkOffsets asserts the invariants every encoding must keep: byte offsets inside the text
// and on character boundaries, starts non-decreasing along the sequence, char offsets equal to
// the byte offsets counted in code points.
func checkOffsets(t *testing.T, text string, e *Encoding) {
	t.Helper()
	// runesBefore[b] = number of code points in text[:b], computed independently of the
	// library's converter.
	runesBefore := make([]int, len(text)+1)
	n := 0
	for b := range len(text) {
		runesBefore[b] = n
		if utf8.RuneStart(text[b]) {
			runesBefore[b] = n
			n++
		}
	}
	runesBefore[len(text)] = n
	last := 0
	for i, o := range e.Offsets {
		if e.SpecialTokensMask[i] == 1 {
			continue
		}
		if o.Start < 0 || o.End > len(text) || o.Start > o.End {
			t.Fatalf("token %d %q: offset %v outside text of %d bytes", i, e.Tokens[i], o, len(text))
		}
		if !utf8.RuneStart(byteAt(text, o.Start)) || !utf8.RuneStart(byteAt(text, o.End)) {
			t.Fatalf("token %d: offset %v not on character boundaries", i, o)
		}
		if o.Start < last {
			t.Fatalf("token %d: start %d before previous start %d", i, o.Start, last)
		}
		last = o.Start
		c := e.CharOffsets[i]
		if want := (Offset{runesBefore[o.Start], runesBefore[o.End]}); c != want {
			t.Fatalf("token %d: char offset %v, want %v", i, c, want)
		}
	}
}

func byteAt(s string, i int) byte {
	if i >= len(s) {
		return 0
	}
	return s[i]
}

func TestInvalidUTF8(t *testing.T) {
	for _, fam := range allFamilies {
		tok := family(t, fam)
		_, err := tok.Encode("ok \xff bad")
		var ue *InvalidUTF8Error
		if !errors.As(err, &ue) || ue.Offset != 3 || !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%s: got %v, want InvalidUTF8Error at offset 3", fam, err)
		}
		if _, err := tok.EncodeWords([]string{"fine", "a\xc3"}); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%s: words: got %v", fam, err)
		}
		if _, err := tok.EncodePair("fine", "\xe2\x82"); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%s: pair: got %v", fam, err)
		}
	}
}

func TestControlCharsAndEmpty(t *testing.T) {
	texts := []string{"", " ", "\x00", "a\x00b\x01c\x7f", "\u200b\u200d\ufeff", "\t\r\n\v\f", "\uFFFD x", "\U0010FFFF", "a\u0301\u0301\u0301", "İstanbul ǅ ﬃ"}
	for _, fam := range allFamilies {
		tok := family(t, fam)
		for _, s := range texts {
			e, err := tok.Encode(s)
			if err != nil {
				t.Fatalf("%s %q: %v", fam, s, err)
			}
			checkOffsets(t, s, e)
			if n := e.Len(); len(e.IDs) != n || len(e.Tokens) != n || len(e.WordIDs) != n || len(e.CharOffsets) != n || len(e.AttentionMask) != n {
				t.Fatalf("%s %q: ragged encoding", fam, s)
			}
		}
	}
	e, _ := family(t, "bert-base-uncased").Encode("")
	if !reflect.DeepEqual(e.Tokens, []string{"[CLS]", "[SEP]"}) {
		t.Errorf("empty BERT text: %v", e.Tokens)
	}
	e, _ = family(t, "qwen2").Encode("")
	if e.Len() != 0 {
		t.Errorf("empty Qwen text: %v", e.Tokens)
	}
}

// TestLargeText encodes 1 MB texts (prose, and a single 1 MB "word"): a quadratic step would
// not finish within the test timeout.
func TestLargeText(t *testing.T) {
	size := 1 << 20
	if raceEnabled || testing.Short() {
		size = 1 << 17
	}
	unit := "Patient John Smith (MRN 00123456) seen 03/14/2019; no acute cardiopulmonary process. Über café 患者 😀\n"
	prose := strings.Repeat(unit, size/len(unit)+1)
	word := strings.Repeat("abcdefghij", size/10)
	for _, fam := range allFamilies {
		tok := family(t, fam)
		for _, s := range []string{prose, word} {
			e, err := tok.Encode(s)
			if err != nil {
				t.Fatalf("%s: %v", fam, err)
			}
			checkOffsets(t, s, e)
		}
	}
}

func TestPair(t *testing.T) {
	bert := family(t, "bert-base-uncased")
	e, err := bert.EncodePair("Chest pain.", "No fever")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "tokens", e.Tokens, []string{"[CLS]", "chest", "pain", ".", "[SEP]", "no", "fever", "[SEP]"})
	check(t, "type ids", e.TypeIDs, []int{0, 0, 0, 0, 0, 1, 1, 1})
	check(t, "offsets", e.Offsets, []Offset{{}, {0, 5}, {6, 10}, {10, 11}, {}, {0, 2}, {3, 8}, {}})
	check(t, "sequence ids", e.SequenceIDs, []int{-1, 0, 0, 0, -1, 1, 1, -1})
	check(t, "word ids", e.WordIDs, []int{-1, 0, 1, 2, -1, 0, 1, -1})

	rob := family(t, "roberta-base")
	e, err = rob.EncodePair("Chest pain", "No fever")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "roberta tokens", e.Tokens, []string{"<s>", "Chest", "Ġpain", "</s>", "</s>", "No", "Ġfever", "</s>"})
	check(t, "roberta type ids", e.TypeIDs, []int{0, 0, 0, 0, 0, 0, 0, 0})
	check(t, "roberta offsets", e.Offsets, []Offset{{}, {0, 5}, {6, 10}, {}, {}, {0, 2}, {3, 8}, {}})

	xl := family(t, "xlnet-base-cased")
	e, err = xl.EncodePair("Chest pain", "No fever")
	if err != nil {
		t.Fatal(err)
	}
	n := e.Len()
	check(t, "xlnet tail", e.Tokens[n-1], "<cls>")
	check(t, "xlnet tail type", e.TypeIDs[n-1], 2)
}

// TestOverflowWindows checks truncation with stride against the definition: windows of
// max_length minus the special tokens, advancing by that budget minus the stride, each
// post-processed on its own.
func TestOverflowWindows(t *testing.T) {
	text := "The cardiac silhouette and mediastinum size are within normal limits. There is no pulmonary edema. There is no focal consolidation. There are no signs of a pleural effusion. There is no evidence of pneumothorax."
	for _, fam := range []string{"bert-base-uncased", "roberta-base", "xlnet-base-cased", "qwen2"} {
		tok := family(t, fam)
		full, err := tok.EncodeInput(Input{Text: text}, Options{NoSpecialTokens: true})
		if err != nil {
			t.Fatal(err)
		}
		special := tok.post.addedTokens(false)
		for _, maxLen := range []int{special + 3, special + 8, special + 16} {
			for _, stride := range []int{0, 1, 2} {
				budget := maxLen - special
				if stride >= budget {
					continue
				}
				e, err := tok.EncodeInput(Input{Text: text}, Options{Truncation: &Truncation{MaxLength: maxLen, Stride: stride}})
				if err != nil {
					t.Fatal(err)
				}
				wins := append([]*Encoding{e}, e.Overflowing...)
				start := 0
				for w, win := range wins {
					end := min(start+budget, full.Len())
					var got []int
					for i, id := range win.IDs {
						if win.SpecialTokensMask[i] == 0 {
							got = append(got, id)
						}
					}
					if !reflect.DeepEqual(got, full.IDs[start:end]) {
						t.Fatalf("%s max %d stride %d window %d: got %v want %v", fam, maxLen, stride, w, got, full.IDs[start:end])
					}
					if win.Len() != end-start+special {
						t.Fatalf("%s window %d: length %d, want %d", fam, w, win.Len(), end-start+special)
					}
					checkOffsets(t, text, win)
					if end == full.Len() {
						if w != len(wins)-1 {
							t.Fatalf("%s: %d windows after the end", fam, len(wins)-1-w)
						}
						break
					}
					start += budget - stride
				}
			}
		}
	}
}

func TestTruncationStrategies(t *testing.T) {
	bert := family(t, "bert-base-uncased")
	a := "one two three four five six seven"
	b := "alpha beta gamma"
	pair := Input{Text: a, Pair: &b}
	e, err := bert.EncodeInput(pair, Options{Truncation: &Truncation{MaxLength: 9}})
	if err != nil {
		t.Fatal(err)
	}
	// Budget 6: longest first gives 3 + 3.
	check(t, "longest_first", e.Tokens, []string{"[CLS]", "one", "two", "three", "[SEP]", "alpha", "beta", "gamma", "[SEP]"})
	e, err = bert.EncodeInput(pair, Options{Truncation: &Truncation{MaxLength: 9, Strategy: OnlyFirst}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "only_first", e.Tokens, []string{"[CLS]", "one", "two", "three", "[SEP]", "alpha", "beta", "gamma", "[SEP]"})
	e, err = bert.EncodeInput(pair, Options{Truncation: &Truncation{MaxLength: 11, Strategy: OnlySecond}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "only_second", e.Tokens, []string{"[CLS]", "one", "two", "three", "four", "five", "six", "seven", "[SEP]", "alpha", "[SEP]"})
	if _, err := bert.EncodeInput(pair, Options{Truncation: &Truncation{MaxLength: 6, Strategy: OnlySecond}}); !errors.Is(err, ErrSequenceTooShort) {
		t.Errorf("only_second too short: %v", err)
	}
	e, err = bert.EncodeInput(Input{Text: a}, Options{Truncation: &Truncation{MaxLength: 5, Direction: Left}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "left", e.Tokens, []string{"[CLS]", "five", "six", "seven", "[SEP]"})
	if _, err := bert.EncodeInput(Input{Text: a}, Options{Truncation: &Truncation{MaxLength: 1}}); err == nil {
		t.Error("max length below the special tokens: no error")
	}
	if _, err := bert.EncodeInput(Input{Text: a}, Options{Truncation: &Truncation{MaxLength: 4, Stride: 2}}); err == nil {
		t.Error("stride >= budget: no error")
	}
}

func TestPadding(t *testing.T) {
	bert := family(t, "bert-base-uncased")
	e, err := bert.EncodeInput(Input{Text: "chest pain"}, Options{Padding: &Padding{Length: 6, PadID: 0, PadToken: "[PAD]"}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "ids", e.IDs, []int{101, 3108, 3255, 102, 0, 0})
	check(t, "mask", e.AttentionMask, []int{1, 1, 1, 1, 0, 0})
	check(t, "special", e.SpecialTokensMask, []int{1, 0, 0, 1, 1, 1})
	check(t, "words", e.WordIDs, []int{-1, 0, 1, -1, -1, -1})
	e, err = bert.EncodeInput(Input{Text: "chest pain"}, Options{Padding: &Padding{Length: 6, Direction: Left, PadToken: "[PAD]"}})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "left ids", e.IDs, []int{0, 0, 101, 3108, 3255, 102})
	check(t, "left offsets", e.Offsets, []Offset{{}, {}, {}, {0, 5}, {6, 10}, {}})
	encs, err := bert.EncodeTexts(context.Background(), []string{"a", "chest pain and fever"}, Options{Padding: &Padding{MultipleOf: 8, PadToken: "[PAD]"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range encs {
		if e.Len() != 8 {
			t.Errorf("pad to multiple of 8: length %d", e.Len())
		}
	}
}

func TestBatchMatchesSequential(t *testing.T) {
	texts := clinicalTexts(t)[:200]
	for _, fam := range allFamilies {
		tok := family(t, fam)
		encs, err := tok.EncodeTexts(context.Background(), texts, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range texts {
			e, err := tok.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, encs[i]) {
				t.Fatalf("%s text %d: batch result differs", fam, i)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := family(t, "bert-base-cased").EncodeTexts(ctx, texts, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled batch: %v", err)
	}
}

func TestDecode(t *testing.T) {
	bert := family(t, "bert-base-uncased")
	e, _ := bert.Encode("Patient's BP was 120/80, isn't it?")
	// The WordPiece decoder cleans up token by token, so " ' s" stays apart (Hugging Face does
	// the same; see record t029's decoded_skip_special).
	check(t, "bert", bert.Decode(e.IDs, true), "patient ' s bp was 120 / 80, isn ' t it?")
	check(t, "bert keep special", bert.Decode(e.IDs, false), "[CLS] patient ' s bp was 120 / 80, isn ' t it? [SEP]")
	for _, fam := range []string{"roberta-base", "qwen2"} {
		tok := family(t, fam)
		s := "  Café  <s> 患者\n\n😀 x"
		e, _ := tok.EncodeInput(Input{Text: s}, Options{NoSpecialTokens: true})
		check(t, fam, tok.Decode(e.IDs, false), s)
	}
	xl := family(t, "xlnet-base-cased")
	e, _ = xl.Encode("Chest pain, no fever.")
	check(t, "xlnet", xl.Decode(e.IDs, true), "Chest pain, no fever.")
	check(t, "lossy", lossyUTF8([]byte("a\xe2\x82b\xf0\x9f\x98c\xff")), "a\uFFFDb\uFFFDc\uFFFD")
}

func TestChatTemplate(t *testing.T) {
	tok := family(t, "qwen2")
	if !tok.HasChatTemplate() {
		t.Fatal("qwen2 has no chat template")
	}
	var want refRecord
	for _, r := range readRecords(t, filepath.Join(refDir(), "qwen2", "reference.jsonl")) {
		if r.ID == "t035" {
			want = r
		}
	}
	msgs := []Message{{"user", "Summarize the note: Pt is a 67 y/o M with h/o CHF, admitted 03/14/2019 for SOB."}}
	s, err := tok.ApplyChatTemplate(msgs, true)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "rendered", s, want.Text)
	e, err := tok.EncodeChat(msgs, true)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "ids", e.IDs, want.IDs)
	s, err = tok.ApplyChatTemplate([]Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "multi-turn", s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello")
	if _, err := family(t, "bert-base-cased").ApplyChatTemplate(msgs, true); !errors.Is(err, ErrNoChatTemplate) {
		t.Errorf("bert chat template: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := map[string]string{
		"not json":           `{`,
		"no model":           `{"added_tokens": []}`,
		"unknown normalizer": `{"normalizer": {"type": "Nope"}, "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}}`,
		"unk missing":        `{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}}`,
		"bad merge":          `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}`,
		"bad merge line":     `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}}`,
		"lookbehind":         `{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?<=a)b"}, "behavior": "Isolated"}, "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}}`,
		"template ref":       `{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[X]", "type_id": 0}}], "pair": [], "special_tokens": {}}, "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}}`,
		"empty added token":  `{"added_tokens": [{"id": 0, "content": ""}], "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}}}`,
		"bad unigram":        `{"model": {"unk_id": 0, "vocab": [["a"]]}}`,
	}
	for name, js := range cases {
		if _, err := FromJSON([]byte(js)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("empty directory: no error")
	}
}

// TestNormalizedAlignment checks the offset bookkeeping on rewrites that change lengths.
func TestNormalizedAlignment(t *testing.T) {
	bert := family(t, "bert-base-uncased")
	s := "Ünïcödé ﬁ İ 患者"
	e, err := bert.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, s, e)
	var got []string
	for i, o := range e.Offsets {
		if e.SpecialTokensMask[i] == 0 {
			got = append(got, s[o.Start:o.End])
		}
	}
	check(t, "spans", got, []string{"Ünïcödé", "ﬁ", "İ", "患", "者"})
	qwen := family(t, "qwen2")
	d := norm.NFD.String("Café résumé")
	e, err = qwen.Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, d, e)
	check(t, "qwen NFC decode", qwen.Decode(e.IDs, false), "Café résumé")
}

func TestModelInfo(t *testing.T) {
	cases := []struct {
		fam, typ, unk, prefix string
		hasUnk                bool
	}{
		{"bert-base-uncased", "WordPiece", "[UNK]", "##", true},
		{"roberta-base", "BPE", "", "", false},
		{"qwen2", "BPE", "", "", false},
		{"xlnet-base-cased", "Unigram", "<unk>", "", true},
	}
	for _, c := range cases {
		tok := family(t, c.fam)
		unk, ok := tok.UnkToken()
		if tok.ModelType() != c.typ || unk != c.unk || ok != c.hasUnk || tok.ContinuingSubwordPrefix() != c.prefix {
			t.Errorf("%s: got %s %q %v %q", c.fam, tok.ModelType(), unk, ok, tok.ContinuingSubwordPrefix())
		}
	}
	bert := family(t, "bert-base-uncased")
	check(t, "decode tokens", bert.DecodeTokens([]string{"abnormal", "##ity", "is", "found", "."}), "abnormality is found.")
	if n := bert.VocabSize(); n != 30522 {
		t.Errorf("bert vocab size %d", n)
	}
	if n := family(t, "qwen2").VocabSize(); n != 151646 {
		t.Errorf("qwen vocab size %d", n)
	}
}

// TestAddPrefixSpaceConfig: tokenizer_config.json's add_prefix_space overrides tokenizer.json
// for RoBERTa-style pipelines, as RobertaTokenizerFast does.
func TestAddPrefixSpaceConfig(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(refDir(), "roberta-base", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"add_prefix_space": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tok.Encode("Hello world")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "tokens", e.Tokens, []string{"<s>", "ĠHello", "Ġworld", "</s>"})
	check(t, "offsets", e.Offsets, []Offset{{}, {0, 5}, {6, 11}, {}})
}

// TestBertConfigOverride: without tokenizer_config.json, transformers' BertTokenizerFast
// lowercases (do_lower_case defaults to true) even over a cased tokenizer.json.
func TestBertConfigOverride(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(refDir(), "bert-base-cased", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := tok.Encode("Über")
	check(t, "no config", e.Tokens, []string{"[CLS]", "u", "##ber", "[SEP]"})
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"do_lower_case": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if tok, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	e, _ = tok.Encode("Über")
	ref, _ := family(t, "bert-base-cased").Encode("Über")
	check(t, "cased", e.Tokens, ref.Tokens)
	check(t, "cased tokens", e.Tokens, []string{"[CLS]", "Ü", "##ber", "[SEP]"})
}

// TestAddedTokenFlags covers single_word, lstrip and rstrip on a tiny tokenizer.
func TestAddedTokenFlags(t *testing.T) {
	js := `{
	  "added_tokens": [
	    {"id": 5, "content": "xx", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
	    {"id": 6, "content": "<m>", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true}
	  ],
	  "normalizer": null,
	  "pre_tokenizer": {"type": "BertPreTokenizer"},
	  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
	            "vocab": {"[UNK]": 0, "y": 1, "x": 2, "##x": 3, ".": 4}},
	  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}
	}`
	tok, err := FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tok.Encode("xx yxx xx.")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "single_word ids", e.IDs, []int{5, 1, 3, 3, 5, 4})
	check(t, "single_word offsets", e.Offsets, []Offset{{0, 2}, {3, 4}, {4, 5}, {5, 6}, {7, 9}, {9, 10}})
	e, err = tok.Encode("y  <m>  y")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "strip ids", e.IDs, []int{1, 6, 1})
	check(t, "strip tokens", e.Tokens, []string{"y", "  <m>  ", "y"})
	check(t, "strip offsets", e.Offsets, []Offset{{0, 1}, {1, 8}, {8, 9}})
	check(t, "decode", tok.Decode(e.IDs, true), "y y")
}
