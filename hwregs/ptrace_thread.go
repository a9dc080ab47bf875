package hwregs

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/internal/cpupin"
)

// This file is the tracer thread's discipline: Linux accepts ptrace calls
// only from the thread that attached, so every call runs on one locked OS
// thread (loop), reached through Do, or through on for the methods that
// move there themselves.

// loop is the tracer goroutine. It never unlocks its OS thread, so the
// thread exits with it: the tracee's Pdeathsig and PTRACE_O_EXITKILL are
// tied to that thread, and both must only fire once the tracee is reaped.
func (p *Ptrace) loop(opts PtraceOptions, started chan<- error) {
	runtime.LockOSThread()
	p.h.busy.Store(true)
	defer close(p.dead)
	defer p.shutdown()
	p.tracerTid = unix.Gettid()
	if err := p.setup(opts); err != nil {
		started <- err
		return
	}
	started <- nil
	for p.h.next(p.quit) {
		if v, panicked := runGuarded(p.h.fn); panicked {
			p.shutdown()
			p.h.finish(hoPanicked, v)
			continue
		}
		p.h.finish(hoDone, nil)
	}
}

// runGuarded runs f and returns the value it panicked with, if it did. A
// runtime.Goexit in f goes on unwinding: the tracer goroutine ends.
func runGuarded(f func()) (v any, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			v, panicked = r, true
		}
	}()
	f()
	return nil, false
}

// onTracer reports whether the caller runs on the tracer thread. While the
// tracer waits for a Do nothing else runs there, so the answer is no
// without the gettid system call (a sixth of a hop).
func (p *Ptrace) onTracer() bool {
	return p.h.busy.Load() && unix.Gettid() == p.tracerTid
}

// Do runs f on the tracer thread, where WriteDR and ReadDR may be called
// directly; a hot loop belongs inside one Do, but one Do per op is cheap
// too: it does not allocate, and a Do that follows another within
// hoSpin is handed over without waking a sleeping thread. Called on the
// tracer thread (nested), it runs f at once. If f panics the tracee is
// killed and reaped and Do panics with the same value; if f calls
// runtime.Goexit (t.FailNow) the tracee is killed and Do returns
// ErrTracerClosed.
func (p *Ptrace) Do(f func()) error {
	if p.onTracer() {
		f()
		return nil
	}
	return p.h.call(f, p.dead)
}

// on runs f on the tracer thread and returns its error. Its closure
// escapes (Do hands it to the tracer goroutine), so a method called in hot
// loops inside Do checks onTracer itself and calls its body directly:
// building the closure only off the tracer thread keeps that path free of
// allocations.
func (p *Ptrace) on(f func() error) error {
	if p.onTracer() {
		return f()
	}
	var err error
	if derr := p.Do(func() { err = f() }); derr != nil {
		return derr
	}
	return err
}

// hoSpin is how long each side of a hand-off polls before it sleeps: the
// tracer after it served a Do, waiting for the next; a caller waiting for
// its Do to finish. A debug-register write costs about a microsecond, so
// a caller issuing one Do per op finds the tracer still polling and pays
// two cache-line transfers instead of two futex wake-ups (tens of
// microseconds on a loaded VM). Past hoSpin both sleep on channels, so an
// idle Ptrace costs nothing.
const hoSpin = 20 * time.Microsecond

// hoPollOnly is how long a spin only polls before it starts yielding
// the CPU between polls (sched_yield): if the other side is runnable on the
// same CPU (the tracer is pinned; a caller may be scheduled there too),
// polling alone would keep it off that CPU for the whole spin, but a
// yield costs a system call, longer than the other side takes to answer
// from another CPU.
const hoPollOnly = 3 * time.Microsecond

// Hand-off states.
const (
	hoIdle     uint32 = iota
	hoPosted          // a caller stored fn; the tracer has not finished it
	hoDone            // fn returned
	hoPanicked        // fn panicked with val
)

// handoff carries one Do at a time from a caller to the tracer thread and
// back: the state word is polled for up to hoSpin, then each side sleeps on
// its channel after announcing it in its parked flag. Storing the state and
// then loading the other's flag, against storing the flag and then
// loading the state, means at least one side sees the other (sync/atomic
// is sequentially consistent), so no wake-up is lost; a spare token only
// costs the receiver a second look at the state.
type handoff struct {
	mu    sync.Mutex // one Do in flight
	state atomic.Uint32
	busy  atomic.Bool // the tracer thread is not waiting in next
	fn    func()
	val   any // what fn panicked with

	// cpu is the CPU the tracer thread is pinned to, or NoPin. A caller on
	// that CPU would only keep the tracer off it by polling, so it sleeps
	// at once and has the tracer sleep at once after its Do (sameCPU).
	cpu     int
	sameCPU atomic.Bool

	tracerParked atomic.Bool
	callerParked atomic.Bool
	wakeTracer   chan struct{} // capacity 1
	wakeCaller   chan struct{} // capacity 1
}

func newHandoff(cpu int) handoff {
	return handoff{cpu: cpu, wakeTracer: make(chan struct{}, 1), wakeCaller: make(chan struct{}, 1)}
}

// poke leaves a wake-up token on c unless one is already there.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// spinUntil polls cond for up to hoSpin and reports whether it held.
func spinUntil(cond func() bool) bool {
	var start time.Time
	for i := 1; ; i++ {
		if cond() {
			return true
		}
		if i%64 != 0 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
			continue
		}
		switch d := time.Since(start); {
		case d > hoSpin:
			return false
		case d > hoPollOnly:
			unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		}
	}
}

// call runs f on the tracer thread and waits for it; dead is closed when
// the tracer goroutine has ended.
func (h *handoff) call(f func(), dead <-chan struct{}) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-dead:
		return ErrTracerClosed
	default:
	}
	// One getcpu per Do (a fifth of a poke): the caller may move right
	// after, so this is a hint, which is all polling needs.
	same := h.cpu != NoPin && cpupin.Current() == h.cpu
	h.sameCPU.Store(same)
	h.fn = f
	h.state.Store(hoPosted)
	if h.tracerParked.Load() {
		poke(h.wakeTracer)
	}
	if !h.wait(dead, !same) {
		h.fn = nil
		h.state.Store(hoIdle)
		return fmt.Errorf("%w: the tracer goroutine ended before this Do finished (Close, or runtime.Goexit inside Do, e.g. t.FailNow)", ErrTracerClosed)
	}
	s, v := h.state.Load(), h.val
	h.fn, h.val = nil, nil
	h.state.Store(hoIdle)
	if s == hoPanicked {
		panic(v)
	}
	return nil
}

// finished reports whether the posted fn has returned or panicked.
func (h *handoff) finished() bool { return h.state.Load() >= hoDone }

// posted reports whether a caller has posted a fn.
func (h *handoff) posted() bool { return h.state.Load() == hoPosted }

// wait waits until the tracer has finished the posted fn and reports
// whether it did, false if the tracer goroutine ended first. It polls
// first if spin is set.
func (h *handoff) wait(dead <-chan struct{}, spin bool) bool {
	return await(h.finished, spin, &h.callerParked, h.wakeCaller, dead)
}

// next waits on the tracer thread for a posted fn and reports whether
// there is one, false once quit is closed.
func (h *handoff) next(quit <-chan struct{}) bool {
	h.busy.Store(false)
	defer h.busy.Store(true)
	return await(h.posted, !h.sameCPU.Load(), &h.tracerParked, h.wakeTracer, quit)
}

// await is one side's wait: it polls cond for up to hoSpin if spin is set,
// then sleeps on wake, announced in parked, until cond holds (true) or stop
// is closed (then it reports cond once more).
func await(cond func() bool, spin bool, parked *atomic.Bool, wake, stop <-chan struct{}) bool {
	for !(spin && spinUntil(cond)) {
		spin = true // once woken, look (and poll) before sleeping again
		parked.Store(true)
		if cond() {
			parked.Store(false)
			return true
		}
		select {
		case <-wake:
		case <-stop:
			parked.Store(false)
			return cond()
		}
		parked.Store(false)
	}
	return true
}

// finish publishes the outcome of fn to the waiting caller.
func (h *handoff) finish(s uint32, v any) {
	h.val = v
	h.state.Store(s)
	if h.callerParked.Load() {
		poke(h.wakeCaller)
	}
}
