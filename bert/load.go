package bert

import (
	"errors"
	"strings"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/weights"
)

// loadTensors is nn.LoadTensors (ckpt/shape/dims struct tags) with expect's legacy
// LayerNorm names.
func loadTensors(s weights.Store, prefix string, dst any, dims map[string]int) error {
	return nn.LoadTensors(s, "bert", prefix, dst, dims, expect)
}

// expect is weights.Expect that also accepts the gamma/beta names that TensorFlow-converted
// BERT checkpoints use for LayerNorm parameters (transformers renames them when loading).
func expect(s weights.Store, name string, shape []int) ([]float32, error) {
	data, err := weights.Expect(s, name, shape...)
	if err == nil || !errors.Is(err, weights.ErrMissingTensor) || !strings.Contains(name, "LayerNorm.") {
		return data, err
	}
	var legacy string
	switch {
	case strings.HasSuffix(name, ".weight"):
		legacy = strings.TrimSuffix(name, ".weight") + ".gamma"
	case strings.HasSuffix(name, ".bias"):
		legacy = strings.TrimSuffix(name, ".bias") + ".beta"
	default:
		return nil, err
	}
	if _, ok := s.Info(legacy); !ok {
		return nil, err
	}
	return weights.Expect(s, legacy, shape...)
}

func has(s weights.Store, name string) bool {
	_, ok := s.Info(name)
	return ok
}
