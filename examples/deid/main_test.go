package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/tagging/taggers"
)

const note = "Physician Discharge Summary Admit date: 10/12/1982 Discharge date: 10/22/1982 " +
	"Patient Information Jack Reacher, 54 y.o. male (DOB = 1/21/1928). Home Address: 123 Park Drive, " +
	"San Diego, CA, 03245. Home Phone: 202-555-0199 (home). Attending: Roger C Kelly, MD " +
	"Attending phys phone: (634)743-5135 Primary Care Physician: Hassan V Kim, MD 512-832-5025.\n"

func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), rc
}

// The CLI with the embedded model must give what the library gives with the demo model's
// files, and print nothing else.
func TestRedactMatchesLibrary(t *testing.T) {
	p, err := taggers.Load(filepath.Join("..", "..", "testdata", "models", "deid-demo-en"), tagging.Options{Aggregation: tagging.AggregateFirst})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := p.Tag(context.Background(), note)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 {
		t.Fatal("the demo model found no PHI in the sample note")
	}
	for _, mode := range []tagging.DeidMode{tagging.Redact, tagging.Mask} {
		want, err := tagging.Deidentify(note, ents, tagging.DeidOptions{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		out, stderr, rc := runCLI(t, note, "-mode", mode.String())
		if rc != 0 || stderr != "" {
			t.Fatalf("%v: rc %d, stderr %q", mode, rc, stderr)
		}
		if out != want {
			t.Errorf("%v:\n got %q\nwant %q", mode, out, want)
		}
		if out == note {
			t.Errorf("%v: nothing replaced", mode)
		}
	}
}

func TestSpansJSON(t *testing.T) {
	out, stderr, rc := runCLI(t, note, "-mode", "spans", "-aggregation", "simple")
	if rc != 0 || stderr != "" {
		t.Fatalf("rc %d, stderr %q", rc, stderr)
	}
	var rec struct {
		ID       string           `json:"id"`
		Entities []tagging.Entity `json:"entities"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ID != "-" || len(rec.Entities) == 0 {
		t.Fatalf("record %+v", rec)
	}
	for _, e := range rec.Entities {
		if e.Text != note[e.ByteStart:e.ByteEnd] || e.Label == "" {
			t.Errorf("entity %+v", e)
		}
	}
	// -omit-text prints offsets only.
	out, _, rc = runCLI(t, note, "-mode", "spans", "-omit-text")
	if rc != 0 || strings.Contains(out, `"text"`) || strings.Contains(out, `"word"`) || strings.Contains(out, "Reacher") {
		t.Errorf("omit-text output %q", out)
	}
}

func TestJSONLinesSurrogates(t *testing.T) {
	in := `{"id": "n1", "text": "Seen by Dr. Ngozi Okafor on March 14, 2019. Call 617-555-0199."}` + "\n\n" +
		`{"id": 7, "text": ""}` + "\n" + `{"text": "Jack Reacher, DOB 01/02/1950."}` + "\n"
	out1, stderr, rc := runCLI(t, in, "-jsonl", "-mode", "surrogate", "-seed", "11")
	if rc != 0 || stderr != "" {
		t.Fatalf("rc %d, stderr %q", rc, stderr)
	}
	out2, _, _ := runCLI(t, in, "-jsonl", "-mode", "surrogate", "-seed", "11")
	if out1 != out2 {
		t.Error("same seed, different surrogates")
	}
	lines := strings.Split(strings.TrimSpace(out1), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d output lines: %q", len(lines), out1)
	}
	var recs []map[string]any
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if recs[0]["id"] != "n1" || recs[1]["id"] != 7.0 || recs[2]["id"] != 4.0 || recs[1]["text"] != "" {
		t.Errorf("records %v", recs)
	}
	if first := recs[0]["text"].(string); !strings.HasPrefix(first, "Seen by Dr. ") || strings.Contains(first, "0199") {
		t.Errorf("surrogate %q", first)
	}
}

func TestFilesAndOutDir(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	os.WriteFile(a, []byte(note), 0o600)
	os.WriteFile(b, []byte("  \n"), 0o600)
	outDir := filepath.Join(dir, "out")
	_, stderr, rc := runCLI(t, "", "-out", outDir, a, b)
	if rc != 0 || stderr != "" {
		t.Fatalf("rc %d, stderr %q", rc, stderr)
	}
	gotA, _ := os.ReadFile(filepath.Join(outDir, "a.txt"))
	gotB, _ := os.ReadFile(filepath.Join(outDir, "b.txt"))
	if !strings.Contains(string(gotA), "[DATE]") || string(gotB) != "  \n" {
		t.Errorf("outputs %q %q", gotA, gotB)
	}
}

// Errors name the input and a position, never its text.
func TestErrorsDoNotLeakText(t *testing.T) {
	secret := "Ngozi Okafor"
	_, stderr, rc := runCLI(t, secret+"\xff")
	if rc != 1 || !strings.Contains(stderr, "offset 12") || strings.Contains(stderr, "Ngozi") {
		t.Errorf("invalid UTF-8: rc %d, stderr %q", rc, stderr)
	}
	out, stderr, rc := runCLI(t, `{"id": 1, "text": "ok"}`+"\n"+`{"id": 2, "text": "`+secret+`"`+"\n", "-jsonl")
	if rc != 1 || !strings.Contains(stderr, "line 2") || strings.Contains(stderr, "Ngozi") || !strings.HasPrefix(out, `{"id":1,`) {
		t.Errorf("bad JSON: rc %d, stderr %q, out %q", rc, stderr, out)
	}
	if _, _, rc = runCLI(t, "", "-mode", "shout"); rc != 1 {
		t.Errorf("bad mode: rc %d", rc)
	}
	if _, _, rc = runCLI(t, "", "-nosuchflag"); rc != 2 {
		t.Errorf("bad flag: rc %d", rc)
	}
	if _, stderr, rc = runCLI(t, "", "-model", filepath.Join(t.TempDir(), "missing")); rc != 1 || stderr == "" {
		t.Errorf("missing model: rc %d, stderr %q", rc, stderr)
	}
}

// -hub goes through weights' Hugging Face cache; offline with an empty cache it fails cleanly.
func TestHubOffline(t *testing.T) {
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	_, stderr, rc := runCLI(t, note, "-hub", "obi/deid_roberta_i2b2")
	if rc != 1 || !strings.Contains(stderr, "offline") || strings.Contains(stderr, "Reacher") {
		t.Errorf("rc %d, stderr %q", rc, stderr)
	}
}
