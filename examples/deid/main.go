// Command deid finds PHI in clinical notes with a token-classification model and prints the
// spans as JSON or the note de-identified (redacted, masked, or with consistent surrogates).
//
//	go run ./examples/deid < note.txt                      # redacted note, embedded demo model
//	go run ./examples/deid -mode spans note1.txt note2.txt # JSON spans, one line per file
//	go run ./examples/deid -jsonl -mode surrogate -seed 7 < notes.jsonl
//	go run ./examples/deid -model ./my-model -aggregation average -threshold 0.7 < note.txt
//	go run ./examples/deid -hub obi/deid_bert_i2b2 < note.txt
//
// Without -model or -hub it uses deid-demo-en, a small demonstration model embedded in the
// binary (see model/README.md): it runs offline and is NOT fit for clinical use.
//
// The command prints nothing about the input besides what was asked for: errors name files,
// line numbers and byte offsets, never text.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/tagging/taggers"
	"github.com/clinfer/clinfer/weights"
)

//go:embed model
var demoModel embed.FS

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type config struct {
	modelDir, hub, revision string
	mode                    string
	aggregation             string
	threshold               float64
	stride                  int
	jsonl                   bool
	seed                    uint64
	seedSet                 bool
	omitText                bool
	outDir                  string
	maskRune                string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c config
	fl := flag.NewFlagSet("deid", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.modelDir, "model", "", "model directory (config.json, checkpoint, tokenizer); default: the embedded demo model")
	fl.StringVar(&c.hub, "hub", "", "Hugging Face model id (org/name), fetched into the Hugging Face cache")
	fl.StringVar(&c.revision, "revision", "main", "revision for -hub")
	fl.StringVar(&c.mode, "mode", "redact", "output: spans (JSON), redact ([DATE]), mask (*), surrogate (consistent fakes)")
	fl.StringVar(&c.aggregation, "aggregation", "first", "token aggregation: none, simple, first, average, max")
	fl.Float64Var(&c.threshold, "threshold", 0, "recall bias: tag a token as PHI when P(O) < threshold (0: plain argmax)")
	fl.IntVar(&c.stride, "stride", 0, "overlap in tokens between windows of long notes (0: a quarter window)")
	fl.BoolVar(&c.jsonl, "jsonl", false, `input is JSON Lines {"id": ..., "text": ...}; output is JSON Lines with the same ids`)
	seed := fl.Uint64("seed", 0, "seed for surrogates (reproducible output); default: random per run")
	fl.BoolVar(&c.omitText, "omit-text", false, "spans mode: leave out the text and word of each span")
	fl.StringVar(&c.outDir, "out", "", "write each input file's output to this directory under the same name")
	fl.StringVar(&c.maskRune, "mask-char", "*", "mask mode: the character that replaces PHI characters")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: deid [flags] [file ...]   (no file or \"-\": standard input)")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	fl.Visit(func(f *flag.Flag) { c.seedSet = c.seedSet || f.Name == "seed" })
	c.seed = *seed
	if err := deid(ctx, c, fl.Args(), stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "deid: "+strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	return 0
}

func deid(ctx context.Context, c config, files []string, stdin io.Reader, stdout io.Writer) error {
	agg, err := tagging.ParseAggregation(c.aggregation)
	if err != nil {
		return err
	}
	mode := c.mode
	var dmode tagging.DeidMode
	if mode != "spans" {
		if dmode, err = tagging.ParseDeidMode(mode); err != nil {
			return fmt.Errorf("-mode %q: want spans, redact, mask or surrogate", mode)
		}
	}
	mask := []rune(c.maskRune)
	if len(mask) != 1 {
		return fmt.Errorf("-mask-char must be one character")
	}
	if c.modelDir != "" && c.hub != "" {
		return errors.New("give -model or -hub, not both")
	}
	if !c.seedSet {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		c.seed = binary.LittleEndian.Uint64(b[:])
	}
	p, err := loadPipeline(ctx, c, tagging.Options{Aggregation: agg, Threshold: c.threshold, Stride: c.stride})
	if err != nil {
		return err
	}
	d := &doer{c: c, p: p, mode: mode, dmode: dmode, mask: mask[0]}
	if len(files) == 0 {
		files = []string{"-"}
	}
	if c.outDir != "" {
		if err := os.MkdirAll(c.outDir, 0o755); err != nil {
			return err
		}
	}
	for _, name := range files {
		if err := d.file(ctx, name, stdin, stdout); err != nil {
			return err
		}
	}
	return nil
}

func loadPipeline(ctx context.Context, c config, opts tagging.Options) (*tagging.Pipeline, error) {
	switch {
	case c.modelDir != "":
		return taggers.Load(c.modelDir, opts)
	case c.hub != "":
		var h weights.Hub
		dir, err := h.Resolve(ctx, c.hub, c.revision)
		if err != nil {
			return nil, err
		}
		return taggers.Load(dir, opts)
	}
	// The loaders read directories: unpack the embedded model into a temporary one, which
	// is removed once the weights are in memory.
	dir, err := os.MkdirTemp("", "clinfer-deid-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sub, err := fs.Sub(demoModel, "model")
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(dir, sub); err != nil {
		return nil, fmt.Errorf("unpacking the embedded model: %w", err)
	}
	return taggers.Load(dir, opts)
}

type doer struct {
	c     config
	p     *tagging.Pipeline
	mode  string
	dmode tagging.DeidMode
	mask  rune
	docs  int
}

// docSeed gives every document its own surrogate seed, derived from the run's seed and the
// document's id (or its position), so that date offsets differ between documents.
func (d *doer) docSeed(id string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], d.c.seed)
	h.Write(b[:])
	h.Write([]byte(id))
	return h.Sum64()
}

func (d *doer) file(ctx context.Context, name string, stdin io.Reader, stdout io.Writer) error {
	var r io.Reader = stdin
	label := "standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r, label = f, name
	}
	out := stdout
	if d.c.outDir != "" && name != "-" {
		f, err := os.Create(filepath.Join(d.c.outDir, filepath.Base(name)))
		if err != nil {
			return err
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		out = bw
	}
	if d.c.jsonl {
		return d.jsonLines(ctx, label, r, out)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	d.docs++
	res, err := d.one(ctx, string(data), name+"#"+fmt.Sprint(d.docs))
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if d.mode == "spans" {
		return writeJSONLine(out, spansRecord{ID: mustJSON(name), Entities: res.ents})
	}
	_, err = io.WriteString(out, res.text)
	return err
}

type result struct {
	ents any // []tagging.Entity or []slimEntity
	text string
}

// slimEntity is an entity without its text (-omit-text).
type slimEntity struct {
	Label     string  `json:"label"`
	Score     float64 `json:"score"`
	Index     *int    `json:"index,omitempty"`
	Start     int     `json:"start"`
	End       int     `json:"end"`
	ByteStart int     `json:"byte_start"`
	ByteEnd   int     `json:"byte_end"`
}

func (d *doer) one(ctx context.Context, text, id string) (result, error) {
	ents, err := d.p.Tag(ctx, text)
	if err != nil {
		return result{}, err
	}
	return d.render(text, id, ents)
}

// render turns one text's entities into the requested output.
func (d *doer) render(text, id string, ents []tagging.Entity) (result, error) {
	if ents == nil {
		ents = []tagging.Entity{}
	}
	if d.mode == "spans" {
		if d.c.omitText {
			slim := make([]slimEntity, len(ents))
			for i, e := range ents {
				slim[i] = slimEntity{Label: e.Label, Score: e.Score, Start: e.Start, End: e.End, ByteStart: e.ByteStart, ByteEnd: e.ByteEnd}
				if e.Index >= 0 {
					slim[i].Index = &ents[i].Index
				}
			}
			return result{ents: slim}, nil
		}
		return result{ents: ents}, nil
	}
	out, err := tagging.Deidentify(text, ents, tagging.DeidOptions{Mode: d.dmode, MaskRune: d.mask, Seed: d.docSeed(id)})
	if err != nil {
		return result{}, err
	}
	return result{text: out}, nil
}

type spansRecord struct {
	ID       json.RawMessage `json:"id"`
	Entities any             `json:"entities"`
}

type textRecord struct {
	ID   json.RawMessage `json:"id"`
	Text string          `json:"text"`
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func writeJSONLine(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// jsonBatch is how many JSON Lines records are tagged together: their windows share model
// calls (tagging.Pipeline.TagMany).
const jsonBatch = 16

type pending struct {
	line int
	id   json.RawMessage
	text string
}

func (d *doer) jsonLines(ctx context.Context, label string, r io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	var batch []pending
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		texts := make([]string, len(batch))
		for i, b := range batch {
			texts[i] = b.text
		}
		all, err := d.p.TagMany(ctx, texts)
		if err != nil {
			// Name the record by its line: tag it alone to find which one failed.
			for _, b := range batch {
				if _, err := d.p.Tag(ctx, b.text); err != nil {
					return fmt.Errorf("%s: line %d: %w", label, b.line, err)
				}
			}
			return fmt.Errorf("%s: lines %d-%d: %w", label, batch[0].line, batch[len(batch)-1].line, err)
		}
		for i, b := range batch {
			d.docs++
			res, err := d.render(b.text, string(b.id), all[i])
			if err != nil {
				return fmt.Errorf("%s: line %d: %w", label, b.line, err)
			}
			if d.mode == "spans" {
				err = writeJSONLine(out, spansRecord{ID: b.id, Entities: res.ents})
			} else {
				err = writeJSONLine(out, textRecord{ID: b.id, Text: res.text})
			}
			if err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var rec struct {
			ID   json.RawMessage `json:"id"`
			Text *string         `json:"text"`
		}
		// encoding/json's messages may quote input; this one does not.
		if err := json.Unmarshal(raw, &rec); err != nil || rec.Text == nil {
			if err := flush(); err != nil {
				return err
			}
			return fmt.Errorf(`%s: line %d: not a JSON object with a string "text"`, label, line)
		}
		if len(rec.ID) == 0 {
			rec.ID = mustJSON(line)
		}
		batch = append(batch, pending{line: line, id: rec.ID, text: *rec.Text})
		if len(batch) == jsonBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return flush()
}
