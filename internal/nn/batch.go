package nn

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Tokens is a batch of tokenized sequences of one length, flattened row-major
// [Batch, Length]: the input the encoders share. Their own Batch types have the same fields
// and convert to and from it. Errors of its methods carry no package prefix: the models wrap
// them.
type Tokens struct {
	Batch, Length int
	IDs           []int
	Mask          []int // 1 = token, 0 = padding; nil means all ones
	TypeIDs       []int
}

// FlattenRows flattens per-sequence ids, mask and type ids (mask and typeIDs may be nil),
// checking that every row of every argument has the length of ids[0].
func FlattenRows(ids, mask, typeIDs [][]int) (Tokens, error) {
	b := Tokens{Batch: len(ids)}
	if len(ids) == 0 {
		return b, errors.New("empty batch")
	}
	b.Length = len(ids[0])
	flat := func(name string, rows [][]int) ([]int, error) {
		if rows == nil {
			return nil, nil
		}
		if len(rows) != len(ids) {
			return nil, fmt.Errorf("%s has %d rows, input_ids %d", name, len(rows), len(ids))
		}
		out := make([]int, 0, b.Batch*b.Length)
		for i, r := range rows {
			if len(r) != b.Length {
				return nil, fmt.Errorf("%s row %d has %d tokens, want %d (rows must be padded to one length)", name, i, len(r), b.Length)
			}
			out = append(out, r...)
		}
		return out, nil
	}
	var err error
	if b.IDs, err = flat("input_ids", ids); err != nil {
		return b, err
	}
	if b.Mask, err = flat("attention_mask", mask); err != nil {
		return b, err
	}
	if b.TypeIDs, err = flat("token_type_ids", typeIDs); err != nil {
		return b, err
	}
	return b, nil
}

// CheckShape rejects an empty batch or empty sequences.
func (in Tokens) CheckShape() error {
	if in.Batch <= 0 || in.Length <= 0 {
		return fmt.Errorf("batch of %d sequences of %d tokens", in.Batch, in.Length)
	}
	return nil
}

// CheckValues checks slice lengths against Batch x Length, ids in [0, vocab), mask values 0
// or 1, and, unless typeVocab < 0 (a model that takes any type id), type ids in
// [0, typeVocab). The first bad value in
// row-major order is reported, with its [sequence][token] index.
func (in Tokens) CheckValues(vocab, typeVocab int) error {
	B, T := in.Batch, in.Length
	n := B * T
	if len(in.IDs) != n {
		return fmt.Errorf("%d input_ids for a batch of %d x %d", len(in.IDs), B, T)
	}
	if in.Mask != nil && len(in.Mask) != n {
		return fmt.Errorf("%d attention_mask values for a batch of %d x %d", len(in.Mask), B, T)
	}
	if in.TypeIDs != nil && len(in.TypeIDs) != n {
		return fmt.Errorf("%d token_type_ids for a batch of %d x %d", len(in.TypeIDs), B, T)
	}
	for i := 0; i < n; i++ {
		if id := in.IDs[i]; id < 0 || id >= vocab {
			return fmt.Errorf("input_ids[%d][%d] = %d outside the vocabulary [0, %d)", i/T, i%T, id, vocab)
		}
		if in.Mask != nil && in.Mask[i] != 0 && in.Mask[i] != 1 {
			return fmt.Errorf("attention_mask[%d][%d] = %d, want 0 or 1", i/T, i%T, in.Mask[i])
		}
		if in.TypeIDs != nil && typeVocab >= 0 {
			if t := in.TypeIDs[i]; t < 0 || t >= typeVocab {
				return fmt.Errorf("token_type_ids[%d][%d] = %d outside [0, %d) (type_vocab_size)", i/T, i%T, t, typeVocab)
			}
		}
	}
	return nil
}

// SplitTokens cuts flat per-token logits [batch, length, n] into [batch][length][n] views
// (no copy).
func SplitTokens(logits []float32, batch, length, n int) [][][]float32 {
	out := make([][][]float32, batch)
	for i := range out {
		out[i] = make([][]float32, length)
		for t := range out[i] {
			off := (i*length + t) * n
			out[i][t] = logits[off : off+n : off+n]
		}
	}
	return out
}

// SplitRows cuts flat per-sequence logits [batch, n] into [batch][n] views (no copy).
func SplitRows(logits []float32, batch, n int) [][]float32 {
	out := make([][]float32, batch)
	for i := range out {
		out[i] = logits[i*n : (i+1)*n : (i+1)*n]
	}
	return out
}

// RandomNormal returns a deterministic generator of normal samples (n values of mean +
// std·N(0,1)) for the models' random-weight constructors: one seed, one sequence.
func RandomNormal(seed uint64) func(n int, mean, std float64) []float32 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(n int, mean, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*r.NormFloat64())
		}
		return v
	}
}
