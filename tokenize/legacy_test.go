package tokenize

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestLegacyFiles builds each family from its older file set (vocab.txt; vocab.json +
// merges.txt; spiece.model) instead of tokenizer.json and checks every reference record again.
func TestLegacyFiles(t *testing.T) {
	root := refDir()
	cases := []struct {
		dir  string
		load func(dir string) (*Tokenizer, error)
	}{
		{"bert-base-uncased", func(d string) (*Tokenizer, error) { return loadLegacyDir(d) }},
		{"bert-base-cased", func(d string) (*Tokenizer, error) { return loadLegacyDir(d) }},
		{"bio-clinicalbert", func(d string) (*Tokenizer, error) { return loadLegacyDir(d) }},
		{"roberta-base", func(d string) (*Tokenizer, error) { return loadLegacyDir(d) }},
		{"qwen2", func(d string) (*Tokenizer, error) { return loadLegacyDir(d) }},
		{"xlnet-base-cased", func(d string) (*Tokenizer, error) {
			return LoadSentencePiece(filepath.Join(d, "spiece.model"), SentencePieceXLNet)
		}},
	}
	for _, c := range cases {
		dir := filepath.Join(root, c.dir)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		t.Run(c.dir, func(t *testing.T) {
			tok, err := c.load(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"reference.jsonl", "reference-llamacpp.jsonl"} {
				p := filepath.Join(dir, f)
				if _, err := os.Stat(p); err != nil {
					continue
				}
				for _, r := range readRecords(t, p) {
					r := r
					name := r.ID
					if f != "reference.jsonl" {
						name = "llamacpp-" + name
					}
					t.Run(name, func(t *testing.T) { checkRecord(t, tok, r) })
				}
			}
		})
	}
}

// loadLegacyDir is Load without tokenizer.json: it copies the legacy files of dir into a
// temporary directory so that Load must take the legacy path.
func loadLegacyDir(dir string) (*Tokenizer, error) {
	tmp, err := os.MkdirTemp("", "clinfer-legacy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{"vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "spiece.model"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(tmp, f), data, 0o644); err != nil {
			return nil, err
		}
	}
	return Load(tmp)
}

// TestXLMRobertaLayout runs the XLM-R pipeline over XLNet's spiece.model (no XLM-R model is
// available here): plain ASCII text must give SentencePiece's ids shifted by one (fairseq
// layout) between <s> (0) and </s> (2), and <unk>/<mask> must sit at 3 and at the end.
func TestXLMRobertaLayout(t *testing.T) {
	dir := filepath.Join(refDir(), "xlnet-base-cased")
	tok, err := LoadSentencePiece(filepath.Join(dir, "spiece.model"), SentencePieceXLMRoberta)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readRecords(t, filepath.Join(dir, "reference.jsonl")) {
		if r.ID != "t001" && r.ID != "t002" && r.ID != "t005" {
			continue
		}
		var spm []int
		if err := json.Unmarshal(r.raw["spm_ids"], &spm); err != nil {
			t.Fatal(err)
		}
		want := []int{0}
		for _, id := range spm {
			want = append(want, id+1)
		}
		want = append(want, 2)
		e, err := tok.Encode(r.Text)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r.ID, e.IDs, want)
	}
	if id, ok := tok.TokenToID("<unk>"); !ok || id != 3 {
		t.Errorf("<unk> id %d", id)
	}
	if id, ok := tok.TokenToID("<mask>"); !ok || id != tok.VocabSize()-1 {
		t.Errorf("<mask> id %d of %d", id, tok.VocabSize())
	}
	e, _ := tok.Encode("a <unk> b <mask>")
	if e.IDs[2] != 3 || e.IDs[len(e.IDs)-2] != tok.VocabSize()-1 {
		t.Errorf("specials in text: %v %v", e.IDs, e.Tokens)
	}
}
