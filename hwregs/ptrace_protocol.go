package hwregs

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs/tracee"
)

// PtraceResult is what the tracee's workers did during one command.
type PtraceResult struct {
	// Ops is the number of operations each worker performed, by its own count.
	Ops []uint64
	// Traps counts, per worker, hardware breakpoint traps by the DR6 slot
	// bits (B0-B3) the kernel reported.
	Traps [][NumSlots]uint64
	// Stops is the number of hardware-breakpoint stops per worker (one stop
	// may set several DR6 bits).
	Stops []uint64
	// Checkpoints counts, per worker, the CheckpointSignal stops of bursty
	// commands (tracee.Command.Checkpoint); they are suppressed.
	Checkpoints []uint64
	// OtherTraps counts SIGTRAPs that were neither breakpoints nor a
	// worker parking itself; they are suppressed.
	OtherTraps uint64
	// Signals counts other signals the tracer passed on to the tracee.
	Signals uint64
}

// TotalOps returns the operations of all workers.
func (r *PtraceResult) TotalOps() uint64 {
	var n uint64
	for _, v := range r.Ops {
		n += v
	}
	return n
}

// TotalTraps returns the traps of all workers on slot i.
func (r *PtraceResult) TotalTraps(i int) uint64 {
	var n uint64
	for _, t := range r.Traps {
		n += t[i]
	}
	return n
}

// Start has every worker run cmd: it writes the command into the tracee
// and resumes all workers, which must all be parked (after StartPtrace or
// Wait). Collect the outcome with Wait.
func (p *Ptrace) Start(cmd tracee.Command) error {
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("%w: %w", alloc.ErrInvalid, err)
	}
	if p.onTracer() {
		return p.start(cmd)
	}
	return p.on(func() error { return p.start(cmd) })
}

// start is Start on the tracer thread.
func (p *Ptrace) start(cmd tracee.Command) error {
	if p.broken != nil {
		return p.broken
	}
	for i, s := range p.state {
		if s != ptParked {
			return fmt.Errorf("hwregs: Start: tracee thread %d (tid %d) is %v, want parked (Wait for the last command, ResumeThread interrupted ones)", i, p.tids[i], s)
		}
	}
	p.gen++
	c := cmd.Encode(p.gen)
	if err := p.writeMem(p.hello.CtlAddr, unsafe.Slice((*byte)(unsafe.Pointer(&c)), tracee.CtlSize)); err != nil {
		return err
	}
	if err := p.readOps(p.baseOps); err != nil {
		return err
	}
	clear(p.res.Traps)
	clear(p.res.Stops)
	clear(p.res.Ops)
	clear(p.res.Checkpoints)
	p.res.OtherTraps, p.res.Signals = 0, 0
	for i := range p.tids {
		if err := p.cont(i, 0); err != nil {
			return err
		}
	}
	return nil
}

// Halt ends a command started with Count 0; Wait then returns once every
// worker has parked. It may be called from any goroutine.
func (p *Ptrace) Halt() error {
	one := uint64(1)
	return p.writeMem(p.hello.CtlAddr+uint64(unsafe.Offsetof(tracee.Ctl{}.Halt)), unsafe.Slice((*byte)(unsafe.Pointer(&one)), 8))
}

// Wait handles the tracee's stops (counting breakpoint traps, passing on
// other signals) until every worker has parked, and returns what the
// workers did since Start. The result is reused by the next Wait.
func (p *Ptrace) Wait() (*PtraceResult, error) {
	var err error
	if p.onTracer() {
		err = p.wait()
	} else {
		err = p.on(p.wait)
	}
	if err != nil {
		return nil, err
	}
	return &p.res, nil
}

// wait is Wait on the tracer thread.
func (p *Ptrace) wait() error {
	if err := p.waitParked(); err != nil {
		return err
	}
	if cap(p.curOps) < len(p.tids) {
		p.curOps = make([]uint64, len(p.tids))
	}
	cur := p.curOps[:len(p.tids)]
	if err := p.readOps(cur); err != nil {
		return err
	}
	for i := range cur {
		p.res.Ops[i] = cur[i] - p.baseOps[i]
	}
	return nil
}

// Run is Start followed by Wait.
func (p *Ptrace) Run(cmd tracee.Command) (*PtraceResult, error) {
	if err := p.Start(cmd); err != nil {
		return nil, err
	}
	return p.Wait()
}

// readOps reads every worker's operation counter.
func (p *Ptrace) readOps(dst []uint64) error {
	b := p.opsBuf
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(p.hello.BlocksAddr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(p.pid, local, remote, 0)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short read %d of %d bytes", n, len(b))
	}
	if err != nil {
		return fmt.Errorf("hwregs: reading tracee %d counters: %w", p.pid, err)
	}
	for i := range dst {
		dst[i] = *(*uint64)(unsafe.Pointer(&b[i*tracee.BlockSize+tracee.OpsOffset]))
	}
	return nil
}

// Progress returns the counts of the current command so far: traps, stops
// and checkpoints (Ops are filled in by Wait only). It must run on the
// tracer thread (inside Do), and the result is overwritten by later stops.
func (p *Ptrace) Progress() *PtraceResult { return &p.res }

// ReadOps stores every worker's cumulative operation count in dst (len
// Threads()) with one process_vm_readv. Running workers are read as they
// are at that moment. It may be called from any goroutine.
func (p *Ptrace) ReadOps(dst []uint64) error {
	if len(dst) != len(p.tids) {
		return fmt.Errorf("%w: ReadOps: len(dst) = %d, want %d (Threads)", alloc.ErrInvalid, len(dst), len(p.tids))
	}
	if p.onTracer() {
		return p.readOps(dst)
	}
	return p.on(func() error { return p.readOps(dst) })
}
