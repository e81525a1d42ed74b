// Package pipeline holds the machinery the stage binaries share: publishing
// events with JetStream acknowledgements before the input is acked, turning
// unusable input into a recorded terminal failure, the shipped-record lookup
// and the per-order lock.
package pipeline
