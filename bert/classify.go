package bert

import (
	"context"
	"fmt"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tagging"
)

var _ tagging.TokenClassifier = (*Model)(nil)

// Logits implements tagging.TokenClassifier for token-classification models: out[b][t] holds
// the len(Labels()) logits of token t of window b (padding positions included).
func (m *Model) Logits(ctx context.Context, in tagging.EncodedBatch) ([][][]float32, error) {
	if m.head != HeadToken {
		return nil, fmt.Errorf("bert: Logits needs a token-classification model, this one has a %s head", m.head)
	}
	b, err := NewBatch(in.IDs, in.Mask, in.TypeIDs)
	if err != nil {
		return nil, err
	}
	res, err := m.Forward(ctx, b)
	if err != nil {
		return nil, err
	}
	return nn.SplitTokens(res.Logits, b.Batch, b.Length, res.NumLabels), nil
}

// Classify runs a sequence classifier or a multi-head labeler and returns its logits per
// sequence: [B][labels] for a sequence classifier, [B][head][classes] flattened per head for a
// multi-head labeler (see SplitHeads).
func (m *Model) Classify(ctx context.Context, in Batch) ([][]float32, error) {
	if m.head != HeadSequence && m.head != HeadMulti {
		return nil, fmt.Errorf("bert: Classify needs a sequence-classification or multi-head model, this one has a %s head", m.head)
	}
	res, err := m.Forward(ctx, in)
	if err != nil {
		return nil, err
	}
	return nn.SplitRows(res.Logits, in.Batch, res.NumLabels), nil
}

// SplitHeads cuts one sequence's multi-head logits (a row of Classify) into one slice per
// head, in head order (HeadSizes).
func (m *Model) SplitHeads(row []float32) ([][]float32, error) {
	if m.head != HeadMulti {
		return nil, fmt.Errorf("bert: SplitHeads needs a multi-head model, this one has a %s head", m.head)
	}
	total := 0
	for _, n := range m.headSizes {
		total += n
	}
	if len(row) != total {
		return nil, fmt.Errorf("bert: %d logits, the heads have %d", len(row), total)
	}
	out := make([][]float32, len(m.headSizes))
	off := 0
	for i, n := range m.headSizes {
		out[i] = row[off : off+n : off+n]
		off += n
	}
	return out, nil
}

// Predict returns each head's argmax class for every sequence of a multi-head labeler
// (CheXbert: 0 blank, 1 positive, 2 negative, 3 uncertain; see CheXbertClasses).
func (m *Model) Predict(ctx context.Context, in Batch) ([][]int, error) {
	rows, err := m.Classify(ctx, in)
	if err != nil {
		return nil, err
	}
	if m.head != HeadMulti {
		return nil, fmt.Errorf("bert: Predict needs a multi-head model, this one has a %s head", m.head)
	}
	out := make([][]int, len(rows))
	for i, row := range rows {
		heads, err := m.SplitHeads(row)
		if err != nil {
			return nil, err
		}
		out[i] = make([]int, len(heads))
		for h, lg := range heads {
			best := 0
			for c, v := range lg {
				if v > lg[best] {
					best = c
				}
			}
			out[i][h] = best
		}
	}
	return out, nil
}
