// Command convert rewrites any checkpoint clinfer reads (PyTorch zip checkpoints,
// safetensors files, sharded sets) as one safetensors file, the way Hugging Face's
// save_pretrained(safe_serialization=True) would: same names, dtypes and bytes, tied
// aliases dropped. Since every input is fully validated on the way, it doubles as a
// checkpoint validator.
//
//	go run ./examples/convert -in pytorch_model.bin -out model.safetensors
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clinfer/clinfer/weights"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "input checkpoint: pytorch_model.bin/.pt/.pth, *.safetensors, *.index.json, or a model folder")
	out := fs.String("out", "", "output safetensors file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: convert -in CHECKPOINT -out model.safetensors")
		return 2
	}
	res, err := Convert(*in, *out)
	if err != nil {
		// One line, so that scripts using the converter as a validator can log it as is.
		fmt.Fprintln(stderr, "convert: "+strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d tensors to %s", res.Written, *out)
	if len(res.Dropped) > 0 {
		fmt.Fprintf(stdout, " (dropped tied aliases: %s)", strings.Join(res.Dropped, ", "))
	}
	fmt.Fprintln(stdout)
	return 0
}

// Result says what Convert wrote.
type Result struct {
	Written int
	Dropped []string // tied aliases left out
}

// tiedAliasNames are the parameter names transformers' models declare in _tied_weights_keys
// for the architectures clinfer covers: the output projections that share the input
// embedding. When such a name shares storage with another tensor, save_pretrained drops it
// from a safetensors file and the model re-ties it on load.
var tiedAliasNames = map[string]bool{
	"lm_head.weight":                 true, // Qwen2ForCausalLM, Llama-style models
	"lm_head.decoder.weight":         true, // RobertaForMaskedLM, XLMRobertaForMaskedLM
	"lm_head.decoder.bias":           true,
	"cls.predictions.decoder.weight": true, // BertForMaskedLM
	"cls.predictions.decoder.bias":   true,
	"lm_loss.weight":                 true, // XLNetLMHeadModel
}

// Convert reads the checkpoint at in (a file or a model folder) and writes its tensors to
// out as safetensors.
func Convert(in, out string) (Result, error) {
	var (
		s   weights.Store
		err error
		dir string
	)
	if fi, statErr := os.Stat(in); statErr == nil && fi.IsDir() {
		s, err = weights.OpenDir(in)
		dir = in
	} else {
		s, err = weights.Open(in)
		dir = filepath.Dir(in)
	}
	if err != nil {
		return Result{}, err
	}
	defer s.Close()

	tie, err := tieWordEmbeddings(dir)
	if err != nil {
		return Result{}, err
	}
	drop := map[string]bool{}
	if tie {
		for _, group := range weights.Aliases(s) {
			var keep []string
			var aliases []string
			for _, n := range group {
				if tiedAliasNames[n] {
					aliases = append(aliases, n)
				} else {
					keep = append(keep, n)
				}
			}
			if len(keep) == 0 { // only aliases share the storage: keep one of them
				aliases = aliases[1:]
			}
			for _, n := range aliases {
				drop[n] = true
			}
		}
	}

	var res Result
	var tensors []weights.NamedTensor
	for _, name := range s.Names() {
		if drop[name] {
			res.Dropped = append(res.Dropped, name)
			continue
		}
		raw, info, err := s.Raw(name)
		if err != nil {
			return Result{}, err
		}
		tensors = append(tensors, weights.NamedTensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
	}
	if len(tensors) == 0 {
		return Result{}, errors.New(in + ": no tensors to write")
	}
	sort.Strings(res.Dropped)
	md := map[string]string{"format": "pt"}
	if m := weights.Metadata(s); len(m) > 0 {
		md = m // a safetensors input keeps its own metadata
	}
	if err := weights.WriteSafetensors(out, tensors, md); err != nil {
		return Result{}, err
	}
	res.Written = len(tensors)
	return res, nil
}

// tieWordEmbeddings reads tie_word_embeddings from a config.json next to the checkpoint.
// Without one, tied storage is taken at its word, as transformers' default (true) does.
func tieWordEmbeddings(dir string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var cfg struct {
		Tie *bool `json:"tie_word_embeddings"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return false, fmt.Errorf("%s: %v", filepath.Join(dir, "config.json"), err)
	}
	return cfg.Tie == nil || *cfg.Tie, nil
}
