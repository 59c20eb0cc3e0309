package xlnet

import (
	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/weights"
)

// loadTensors is nn.LoadTensors: []float32 fields filled by their ckpt and shape tags, every
// missing or mis-shaped tensor reported by name, data copied.
func loadTensors(s weights.Store, prefix string, dst any, dims map[string]int) error {
	return nn.LoadTensors(s, "xlnet", prefix, dst, dims, nil)
}

func has(s weights.Store, name string) bool {
	_, ok := s.Info(name)
	return ok
}
