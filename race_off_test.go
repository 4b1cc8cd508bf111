//go:build !race

package aioproducer

// raceEnabled says the race detector is on: it makes sync.Pool drop items on purpose, so allocation
// counts mean nothing.
const raceEnabled = false
