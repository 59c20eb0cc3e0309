package qwen

import (
	"context"
	"fmt"
	"math"
)

// ForwardInput is a batch for a full forward pass without cache (Qwen2ForCausalLM.forward).
type ForwardInput struct {
	IDs [][]int // [B][T], every row the same length
	// Mask [B][T]: 1 = token, 0 = padding (nil: all ones). Padded keys are masked; outputs
	// at padded positions are computed but meaningless, as in transformers.
	Mask [][]int
	// Positions [B][T] are the RoPE positions (nil: 0..T-1 for every row).
	Positions [][]int
	// Hidden asks for transformers' hidden_states: the input of each layer, then the final
	// RMSNorm output (NumHiddenLayers+1 entries).
	Hidden bool
}

// ForwardOutput holds row-major results.
type ForwardOutput struct {
	B, T   int
	Logits []float32   // [B, T, V]
	Hidden [][]float32 // [L+1][B, T, H] when requested
}

// Forward runs the model over a whole batch, as transformers does without past_key_values.
func (m *Model) Forward(ctx context.Context, in ForwardInput) (*ForwardOutput, error) {
	c := &m.Config
	b := len(in.IDs)
	if b == 0 {
		return nil, fmt.Errorf("qwen: Forward: empty batch")
	}
	t := len(in.IDs[0])
	if t == 0 {
		return nil, fmt.Errorf("qwen: Forward: empty sequence")
	}
	if t > c.MaxPositionEmbeddings && in.Positions == nil {
		return nil, fmt.Errorf("%w: %d tokens, max_position_embeddings %d", ErrTooLong, t, c.MaxPositionEmbeddings)
	}
	if (in.Mask != nil && len(in.Mask) != b) || (in.Positions != nil && len(in.Positions) != b) {
		return nil, fmt.Errorf("qwen: Forward: ids, mask and positions must have the same batch size")
	}
	n := b * t
	s := m.getState(n, b, t)
	defer m.pool.Put(s)
	ids := make([]int, 0, n)
	mask := make([]float32, b*t)
	for i, row := range in.IDs {
		if len(row) != t {
			return nil, fmt.Errorf("qwen: Forward: row %d has %d tokens, row 0 has %d", i, len(row), t)
		}
		ids = append(ids, row...)
		for j := 0; j < t; j++ {
			s.positions[i*t+j] = j
			if in.Positions != nil {
				if len(in.Positions[i]) != t {
					return nil, fmt.Errorf("qwen: Forward: positions row %d has %d entries, want %d", i, len(in.Positions[i]), t)
				}
				p := in.Positions[i][j]
				if p < 0 || p >= c.MaxPositionEmbeddings {
					return nil, fmt.Errorf("%w: position %d (row %d), max_position_embeddings %d", ErrTooLong, p, i, c.MaxPositionEmbeddings)
				}
				s.positions[i*t+j] = p
			}
			if in.Mask != nil {
				if len(in.Mask[i]) != t {
					return nil, fmt.Errorf("qwen: Forward: mask row %d has %d entries, want %d", i, len(in.Mask[i]), t)
				}
				if in.Mask[i][j] == 0 {
					mask[i*t+j] = -math.MaxFloat32
				}
			}
		}
	}
	if err := m.W.Embed.lookup(s.x[:n*c.HiddenSize], ids); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &ForwardOutput{B: b, T: t}
	var hidden func(int, []float32)
	if in.Hidden {
		hidden = func(_ int, h []float32) { out.Hidden = append(out.Hidden, append([]float32(nil), h...)) }
	}
	m.decode(s, step{b: b, t: t, past: 0, keyMask: mask}, hidden)
	out.Logits = make([]float32, n*c.VocabSize)
	m.eng.Forward(m.W.LMHead, out.Logits, s.xn[:n*c.HiddenSize], n)
	return out, nil
}
