//go:build !linux

package tensorops

// newBacking returns n zeroed elements for the packed weight of l (huge pages are a Linux-only
// optimisation; see backing_linux.go).
func newBacking[T float32 | uint16 | int8](l *Linear, n int) []T { return make([]T, n) }
