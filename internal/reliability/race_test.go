//go:build race

package reliability

// raceEnabled: the race detector multiplies memory use (5–10×), so memory
// bounds are stated per mode.
const raceEnabled = true
