package tokenize

import (
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
