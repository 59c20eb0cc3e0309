//go:build race

package tensorops

// Under the race detector only the multi-threaded engine runs the numeric suites: the
// single-threaded and portable paths have no concurrency to check and are covered by the
// plain and noasm runs.
const raceOn = true
