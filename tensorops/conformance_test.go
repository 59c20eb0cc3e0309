package tensorops

import "testing"

// pureGoBackend runs the pure-Go reference kernels even in a build where assembly replaced
// them, so one `go test` covers both paths (the noasm build covers the GEMM's pure-Go path).
type pureGoBackend struct{ CPUBackend }

func (pureGoBackend) Name() string { return "purego" }
func (pureGoBackend) Softmax(x []float32, rows, cols int) {
	checkRows("Softmax", "x", x, rows, cols)
	softmaxRows(x, rows, cols, goKernels.softmaxRow)
}
func (pureGoBackend) GELU(x []float32)     { goKernels.gelu(x) }
func (pureGoBackend) GELUTanh(x []float32) { goKernels.geluTanh(x) }

// TestOpsConformance runs the suite without its GEMM part (TestSgemmConformance covers the same
// engines) on one and several threads and, in assembly builds, on the pure-Go kernels.
func TestOpsConformance(t *testing.T) {
	runConformance(t, NewCPUBackend(NewEngine(1)), false)
	runConformance(t, NewCPUBackend(NewEngine(3)), false)
	if useAsm {
		e := NewEngine(2)
		e.pureGo = true
		runConformance(t, pureGoBackend{NewCPUBackend(e)}, false)
	}
}

// The exported entry point with its GEMM part, as another backend would call it.
func TestOpsConformanceFull(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("GEMM part already covered by TestSgemmConformance")
	}
	RunConformance(t, NewCPUBackend(nil))
}
func (pureGoBackend) SiLU(x []float32)           { goKernels.silu(x) }
func (pureGoBackend) SiLUMul(gate, up []float32) { goKernels.siluMul(gate, up[:len(gate)]) }
