package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/benchmarks"
	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

func tiny() *weights.Config {
	c := benchmarks.BertBase()
	c.Bert.HiddenSize, c.Bert.NumHiddenLayers, c.Bert.NumAttentionHeads, c.Bert.IntermediateSize = 32, 2, 2, 64
	return c
}

func TestServe(t *testing.T) {
	configs := map[string]func() *weights.Config{"tiny": tiny}
	var out bytes.Buffer
	err := serve(strings.NewReader("tiny 2 16\ntiny 1 8\nquit\ntiny 1 8\n"), &out, configs, tensorops.NewEngine(1))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out.String())
	if len(lines) != 2 {
		t.Fatalf("got %q, want two timings (nothing after quit)", out.String())
	}
	for _, l := range lines {
		if ms, err := strconv.ParseFloat(l, 64); err != nil || ms <= 0 {
			t.Errorf("timing %q is not a positive number of milliseconds", l)
		}
	}
	for in, want := range map[string]string{"tiny x 8\n": "want \"MODEL BATCH LENGTH\"", "tiny 0 8\n": "want", "base 1 8\n": "unknown model"} {
		if err := serve(strings.NewReader(in), &out, configs, tensorops.NewEngine(1)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", in, err, want)
		}
	}
}
