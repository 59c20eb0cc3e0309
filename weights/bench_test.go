package weights

import (
	"path/filepath"
	"testing"
)

// BenchmarkOpenSafetensors measures open + validation + touching every F32 view.
func BenchmarkOpenSafetensors(b *testing.B) {
	benchOpen(b, "model.safetensors")
}

// BenchmarkOpenPyTorch measures open + unpickling + CRC check + touching every tensor.
func BenchmarkOpenPyTorch(b *testing.B) {
	benchOpen(b, "pytorch_model.bin")
}

func benchOpen(b *testing.B, file string) {
	p := filepath.Join(fixturesDir(), "qwen25_gqa_causal_lm", file)
	var bytes int64
	for i := 0; i < b.N; i++ {
		s, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for _, n := range s.Names() {
			v, _, err := s.Float32(n)
			if err != nil {
				b.Fatal(err)
			}
			bytes += int64(4 * len(v))
		}
		s.Close()
	}
	b.SetBytes(bytes)
}

func BenchmarkBF16ToFloat32(b *testing.B) {
	raw := make([]byte, 2<<20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		toFloat32(BF16, raw, len(raw)/2)
	}
}

func BenchmarkF16ToFloat32(b *testing.B) {
	raw := make([]byte, 2<<20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		toFloat32(F16, raw, len(raw)/2)
	}
}
