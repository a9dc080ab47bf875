package cpupin

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
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

// TestHeld checks Held against the thread's real state: true on the CPU
// it was pinned to, false for another CPU and after unpinning to a wider
// mask.
func TestHeld(t *testing.T) {
	unpin, err := Pin(0)
	if err != nil {
		t.Fatal(err)
	}
	if !Held(0) {
		t.Error("Held(0) = false right after Pin(0)")
	}
	if runtime.NumCPU() > 1 && Held(1) {
		t.Error("Held(1) = true while pinned to CPU 0")
	}
	unpin()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() > 1 && Held(Current()) { // a process started on one CPU (taskset) stays pinned
		t.Error("Held = true on an unpinned thread whose mask has several CPUs")
	}
}
