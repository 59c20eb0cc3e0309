package bert

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/internal/reftest"
	"github.com/clinfer/clinfer/weights"
)

func fixturesDir() string { return reftest.FixturesDir() }

// TestReference runs every BERT-family fixture (config model_type bert, roberta or
// xlm-roberta) on every case of its reference.safetensors, with the weights loaded from
// model.safetensors and from pytorch_model.bin, and compares every output the case has.
func TestReference(t *testing.T) {
	load := func(cfg *weights.Config, s weights.Store) (*Model, error) { return LoadFromStore(cfg, s) }
	reftest.Run(t, []string{"bert", "roberta", "xlm-roberta"}, load, checkCase)
}

func readBatch(t *testing.T, rs weights.Store, c reftest.Case) Batch {
	return Batch(reftest.ReadTokens(t, rs, c))
}

// checkCase compares every output of a case; per-token outputs only at unmasked positions
// (Hugging Face's padding rows are not part of the BERT contract).
func checkCase(t *testing.T, m *Model, ref *reftest.Reference, c reftest.Case) {
	in := readBatch(t, ref.Store, c)
	res, err := m.Forward(context.Background(), in, WithHiddenStates())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range c.OutputNames() {
		full := c.Name + "." + name
		if name == "embedding_position_ids" {
			want, _ := reftest.Ints(t, ref.Store, full)
			got := make([]int, len(in.IDs))
			m.positions(got, in.IDs, in.Batch, in.Length)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%s[%d][%d] = %d, want %d", name, i/in.Length, i%in.Length, got[i], want[i])
					break
				}
			}
			checked++
			continue
		}
		want, shape := reftest.Floats(t, ref.Store, full)
		var got []float32
		perToken := false
		switch {
		case strings.HasPrefix(name, "hidden_states."):
			var i int
			fmt.Sscanf(strings.TrimPrefix(name, "hidden_states."), "%d", &i)
			if i < 0 || i >= len(res.HiddenStates) {
				t.Fatalf("%s: model has %d hidden states", name, len(res.HiddenStates))
			}
			got, perToken = res.HiddenStates[i], true
		case name == "last_hidden_state":
			got, perToken = res.LastHiddenState, true
		case name == "logits":
			got, perToken = res.Logits, m.Head() == HeadToken
		case name == "pooler_output":
			got = res.Pooled
		default:
			t.Fatalf("output %s not understood by this test", full)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d values, want %d (shape %v)", name, len(got), len(want), shape)
		}
		var mask []int
		if perToken {
			mask = in.Mask
		}
		reftest.Close(t, name, got, want, ref.Atol, ref.Rtol, mask)
		checked++
	}
	if checked == 0 {
		t.Fatal("case has no outputs")
	}
}
