//go:build !race

package tensorops

const raceOn = false
