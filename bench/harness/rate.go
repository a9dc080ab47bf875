package harness

import (
	"fmt"
	"math"
	"runtime"
	"time"
)

// spinBelow is the longest interval a Pacer spins for. Below about 200 µs
// time.Sleep overshoots by more than the interval on these VMs (timer slack
// and the scheduler's wake-up), so high rates spin on the TSC; low rates
// sleep so that a competitor at 1000/s does not burn a CPU the holder needs.
const spinBelow = 200 * time.Microsecond

// maxLag bounds how far a Pacer that fell behind (preempted, or an attempt
// slower than its interval) may catch up in a burst: at most this many
// intervals are owed, so a stall does not turn into a flood.
const maxLag = 4

// Pacer spaces operations at a fixed rate: Wait blocks until the next
// operation is due. It keeps an absolute schedule, so the rate holds on
// average even when single waits overshoot. A Pacer belongs to one
// goroutine and never allocates.
type Pacer struct {
	interval Ticks
	sleep    time.Duration // > 0: sleep instead of spinning
	next     Ticks
	thread   bool // yields to other threads, never to other goroutines
}

// NewPacer returns a Pacer for rate operations per second; rate 0 means no
// limit (Wait returns at once). A negative, NaN or infinite rate is an
// error naming the bad value.
func NewPacer(rate float64) (*Pacer, error) {
	switch {
	case math.IsNaN(rate) || math.IsInf(rate, 0):
		return nil, fmt.Errorf("bench: pacer rate = %v: want a finite number of operations per second", rate)
	case rate < 0:
		return nil, fmt.Errorf("bench: pacer rate = %g: want >= 0 (0: no limit)", rate)
	case rate == 0:
		return &Pacer{}, nil
	}
	interval := time.Duration(float64(time.Second) / rate)
	p := &Pacer{interval: Ticks(float64(interval) / NsPerTick())}
	if p.interval < 1 {
		p.interval = 1
	}
	if interval >= spinBelow {
		p.sleep = interval
	}
	p.next = Now()
	return p, nil
}

// NewThreadPacer is NewPacer for a goroutine that owns its OS thread and a
// P (locked and pinned to a CPU, with GOMAXPROCS above the number of such
// goroutines): it never yields, it spins (or sleeps, at low rates).
// runtime.Gosched on a locked goroutine hands its P to another thread and
// parks its own until the scheduler hands the goroutine back, two futex
// wake-ups costing microseconds each, which would cap the rate the Pacer
// keeps; sched_yield on a loaded machine gives the CPU to any other
// runnable process for a whole time slice. With a P of its own the
// goroutine starves no other goroutine by spinning; threads on its CPU
// share it as the kernel's scheduler decides.
func NewThreadPacer(rate float64) (*Pacer, error) {
	p, err := NewPacer(rate)
	if err != nil {
		return nil, err
	}
	p.thread = true
	return p, nil
}

// Unlimited reports whether the Pacer lets every operation through at once.
func (p *Pacer) Unlimited() bool { return p.interval == 0 }

// Wait blocks until the next operation is due and schedules the one after.
// Spinning waits yield the processor between clock reads so that more
// competitors than Ps still share the machine with the holder.
//
// An unlimited Pacer still yields once per operation: on a machine with no
// more Ps than competitors plus the holder, a competitor that never yields
// keeps its P until the scheduler's 10 ms preemption, so a holder that lost
// its slot could wait indefinitely for a gap that real competitors (whose
// every attempt is a system call) leave all the time.
//
// A thread Pacer (NewThreadPacer) never yields.
func (p *Pacer) Wait() {
	if p.interval == 0 {
		if !p.thread {
			runtime.Gosched()
		}
		return
	}
	now := Now()
	if lag := now - p.next; lag > maxLag*p.interval {
		p.next = now - maxLag*p.interval
	}
	if p.sleep > 0 {
		if d := p.next - now; d > 0 {
			time.Sleep(time.Duration(TicksToNs(d)))
		}
	} else {
		for Now() < p.next {
			if !p.thread {
				runtime.Gosched()
			}
		}
	}
	p.next += p.interval
}
