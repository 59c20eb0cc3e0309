package xlnet

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/internal/reftest"
	"github.com/clinfer/clinfer/weights"
)

func fixturesDir() string { return reftest.FixturesDir() }

// TestReference runs every XLNet fixture (config model_type xlnet) on every case of its
// reference.safetensors, with the weights loaded from model.safetensors and from
// pytorch_model.bin, and compares every output the case has.
func TestReference(t *testing.T) {
	load := func(cfg *weights.Config, s weights.Store) (*Model, error) { return LoadFromStore(cfg, s) }
	reftest.Run(t, []string{"xlnet"}, load, checkCase)
}

func readBatch(t *testing.T, rs weights.Store, c reftest.Case) Batch {
	return Batch(reftest.ReadTokens(t, rs, c))
}

// checkCase compares every output of a case at every position, padding rows included:
// Hugging Face's padding rows are deterministic (a padded query attends to the real tokens
// and itself), and matching them checks the non_tgt_mask diagonal.
func checkCase(t *testing.T, m *Model, ref *reftest.Reference, c reftest.Case) {
	in := readBatch(t, ref.Store, c)
	res, err := m.Forward(context.Background(), in, WithHiddenStates())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range c.OutputNames() {
		full := c.Name + "." + name
		want, shape := reftest.Floats(t, ref.Store, full)
		var got []float32
		switch {
		case strings.HasPrefix(name, "hidden_states."):
			var i int
			if _, err := fmt.Sscanf(strings.TrimPrefix(name, "hidden_states."), "%d", &i); err != nil || i < 0 || i >= len(res.HiddenStates) {
				t.Fatalf("%s: model has %d hidden states", name, len(res.HiddenStates))
			}
			got = res.HiddenStates[i]
		case name == "last_hidden_state":
			got = res.LastHiddenState
		case name == "logits":
			got = res.Logits
		case name == "sequence_summary":
			got = res.SequenceSummary
		default:
			t.Fatalf("output %s not understood by this test", full)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d values, want %d (shape %v)", name, len(got), len(want), shape)
		}
		reftest.Close(t, name, got, want, ref.Atol, ref.Rtol, nil)
		checked++
	}
	if checked == 0 {
		t.Fatal("case has no outputs")
	}
}
