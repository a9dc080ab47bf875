package harness

import (
	"testing"
	"time"
)

// TestNowAdvances: the cycle counter of this architecture (the TSC on
// amd64, the generic timer on arm64) moves forward, and its calibration
// turns a known wait into about that many nanoseconds.
func TestNowAdvances(t *testing.T) {
	t0, c0 := time.Now(), Now()
	for time.Since(t0) < 5*time.Millisecond {
	}
	c1 := Now()
	wall := time.Since(t0)
	if c1 <= c0 {
		t.Fatalf("Now() went from %d to %d over %v", c0, c1, wall)
	}
	ns := TicksToNs(c1 - c0)
	if ns < 0.5*float64(wall.Nanoseconds()) || ns > 2*float64(wall.Nanoseconds()) {
		t.Errorf("%d ticks are %.0f ns by the calibration, the wall clock says %v", c1-c0, ns, wall)
	}
}
