//go:build unix

package tensorops

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (all threads). Benchmarks report work per
// CPU-second next to work per wall-second: on a shared machine the wall-clock figure mostly
// measures how often the scheduler ran us, while per-CPU-second shows what the kernel does on
// a core it holds (cache and memory-bandwidth contention still count).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
