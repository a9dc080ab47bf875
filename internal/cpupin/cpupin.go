// Package cpupin locks the calling goroutine to its OS thread and pins that
// thread to one CPU. Unpinned, a debug-register poke on the reference
// 2-core VMs swings between 1.3 and 30 µs from run to run; pinned it is
// stable (see shared/anchors.md).
package cpupin

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pin locks the calling goroutine to its OS thread and restricts the thread
// to cpu. The returned function restores the thread's previous affinity and
// unlocks it; call it on the same goroutine.
func Pin(cpu int) (unpin func(), err error) {
	if cpu < 0 || cpu >= runtime.NumCPU() {
		return nil, fmt.Errorf("cpupin: CPU %d out of range [0, %d)", cpu, runtime.NumCPU())
	}
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("cpupin: sched_getaffinity: %w", err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("cpupin: sched_setaffinity(cpu %d): %w", cpu, err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}

// Current returns the CPU the calling thread runs on now.
func Current() int {
	var cpu, node uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0); e != 0 {
		return -1
	}
	return int(cpu)
}

// Held reports whether the calling thread is still pinned to cpu: its
// affinity mask is exactly {cpu} and it runs there now. A measured loop
// checks it afterwards, so that a result says whether the pin it relied
// on held (something outside the process, such as a cgroup cpuset
// change, can widen or move a thread's affinity).
func Held(cpu int) bool {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return false
	}
	return set.Count() == 1 && set.IsSet(cpu) && Current() == cpu
}
