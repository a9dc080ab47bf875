package harness

import "testing"

// TestNoiseReadsProc checks that a probe over some work reads the kernel's
// counters: fractions in range and at least this process runnable.
func TestNoiseReadsProc(t *testing.T) {
	p := StartNoise()
	x := 0
	for i := 0; i < 1e7; i++ {
		x += i
	}
	_ = x
	n := p.Stop()
	if n.RunnableMax < 1 || n.Busy < 0 || n.Busy > 1 || n.Steal < 0 || n.Steal > 1 || n.Others < 0 || n.Others > 1 || n.LoadAvg1 < 0 {
		t.Errorf("implausible noise %+v", n)
	}
}
