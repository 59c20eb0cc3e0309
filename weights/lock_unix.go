//go:build unix

package weights

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock, released when f is closed, so that two
// processes never append to the same partial download.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}
