//go:build unix

package weights

import (
	"os"
	"syscall"
)

// mapFile maps f read-only. Writing through a view faults, which is the point: views are
// shared by every user of a Store and must never be modified.
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, errNoMmap
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
