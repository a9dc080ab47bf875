package hwregs

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// loop is the tracer goroutine. It never unlocks its OS thread, so the
// thread exits with it: the tracee's Pdeathsig and PTRACE_O_EXITKILL are
// tied to that thread, and both must only fire once the tracee is reaped.
func (p *Ptrace) loop(opts PtraceOptions, started chan<- error) {
	runtime.LockOSThread()
	defer close(p.dead)
	defer p.shutdown()
	p.tracerTid = unix.Gettid()
	if err := p.setup(opts); err != nil {
		started <- err
		return
	}
	started <- nil
	for {
		select {
		case f := <-p.reqs:
			f()
		case <-p.quit:
			return
		}
	}
}

func (p *Ptrace) onTracer() bool { return unix.Gettid() == p.tracerTid }

type ptPanic struct{ val any }

// Do runs f on the tracer thread, where WriteDR and ReadDR may be called
// directly; a hot loop belongs inside one Do. Called on the tracer thread
// (nested), it runs f at once. If f panics the tracee is killed and reaped
// and Do panics with the same value; if f calls runtime.Goexit (t.FailNow)
// the tracee is killed and Do returns ErrTracerClosed.
func (p *Ptrace) Do(f func()) error {
	if p.onTracer() {
		f()
		return nil
	}
	res := make(chan *ptPanic, 1)
	call := func() {
		defer func() {
			if v := recover(); v != nil {
				p.shutdown()
				res <- &ptPanic{v}
			}
		}()
		f()
		res <- nil
	}
	select {
	case p.reqs <- call:
	case <-p.dead:
		return ErrTracerClosed
	}
	select {
	case pv := <-res:
		if pv != nil {
			panic(pv.val)
		}
		return nil
	case <-p.dead:
		select {
		case pv := <-res:
			if pv != nil {
				panic(pv.val)
			}
			return nil
		default:
		}
		return fmt.Errorf("%w: the tracer goroutine exited inside Do (runtime.Goexit, e.g. t.FailNow)", ErrTracerClosed)
	}
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
