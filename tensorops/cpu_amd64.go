//go:build amd64 && !noasm

package tensorops

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv0() (eax, edx uint32)

// detectAVX2FMA reports whether the CPU has AVX2 and FMA3 and the OS saves the ymm state on
// context switches (OSXSAVE + XCR0 bits 1 and 2): all three are needed before a kernel may use ymm.
// golang.org/x/sys/cpu would do the same, but it is not a direct dependency of the module.
func detectAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

// detectAVX512 reports AVX-512F with the OS saving the opmask and zmm state (XCR0 bits 5-7).
func detectAVX512() bool {
	if !detectAVX2FMA() {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&0xe6 != 0xe6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx512f = 1 << 16
	return ebx7&avx512f != 0
}
