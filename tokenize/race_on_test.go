//go:build race

package tokenize

// raceEnabled shrinks the largest inputs under -race, which slows everything tenfold.
const raceEnabled = true
