//go:build race

package tensorops

// raceEnabled lets slow duplicate checks step aside under the race detector.
const raceEnabled = true
