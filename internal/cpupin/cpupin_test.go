package cpupin

import (
	"runtime"
	"testing"
)

func TestPinRunsOnCPU(t *testing.T) {
	for cpu := 0; cpu < runtime.NumCPU(); cpu++ {
		unpin, err := Pin(cpu)
		if err != nil {
			t.Fatal(err)
		}
		runtime.Gosched()
		if got := Current(); got != cpu {
			t.Errorf("pinned to %d, running on %d", cpu, got)
		}
		unpin()
	}
	if _, err := Pin(runtime.NumCPU()); err == nil {
		t.Fatal("Pin accepted an out-of-range CPU")
	}
}
