//go:build !race

package tagging_test

const raceEnabled = false
