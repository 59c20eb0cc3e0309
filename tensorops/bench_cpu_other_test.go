//go:build !unix

package tensorops

import "time"

func processCPU() time.Duration { return 0 }
