//go:build race

package testutil

// RaceEnabled reports a build with the race detector, whose shadow memory
// grows with the range of heap addresses a loop touches: RSS bounds do not
// hold there (see FlatRSSWithin).
const RaceEnabled = true
