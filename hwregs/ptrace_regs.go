package hwregs

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
)

// thread maps a target to a worker index.
func (p *Ptrace) thread(t Target) (int, error) {
	if uint(t.Task) < uint(len(p.tids)) {
		return t.Task, nil
	}
	if t.Task == alloc.NoTask {
		return 0, fmt.Errorf("%w: ptrace target %v: %w (ptrace has no CPU-bound registers)", alloc.ErrInvalid, t, ErrUnsupported)
	}
	return 0, fmt.Errorf("%w: ptrace Target.Task = %d out of range [0,%d) (tracee threads)", alloc.ErrInvalid, t.Task, len(p.tids))
}

// ptRegOffset returns the struct user offset of a debug register. A bad
// register number is a bad request here, so the error wraps
// alloc.ErrInvalid as well as checkReg's ErrBadReg.
func ptRegOffset(reg int) (uintptr, error) {
	if err := checkReg(reg); err != nil {
		return 0, fmt.Errorf("%w: %w", alloc.ErrInvalid, err)
	}
	return uintptr(ptDebugRegBase + 8*reg), nil
}

// WriteDR writes one debug register of a stopped tracee thread with a
// single PTRACE_POKEUSER. Kernel refusals keep the old register value and
// map to: ENOSPC → alloc.ErrNoSlot; EINVAL → alloc.ErrInvalid (and
// ErrBadAddr for DR0-DR3); ESRCH → ErrWrongThread, ErrNotStopped or
// ErrTraceeGone. It must run on the tracer thread (inside Do).
func (p *Ptrace) WriteDR(t Target, reg int, val uint64) error {
	i, err := p.thread(t)
	if err != nil {
		return err
	}
	off, err := ptRegOffset(reg)
	if err != nil {
		return err
	}
	p.writes.Add(1)
	// RawSyscall6: the scheduler hand-off of Syscall6 (entersyscall,
	// exitsyscall) costs 80-100 ns here, a sixth of the poke itself, and a
	// poke does not block for long: at worst it waits for the kernel's
	// breakpoint locks, holding the tracer's P meanwhile.
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_POKEUSR, uintptr(p.tids[i]), off, uintptr(val), 0, 0)
	if e != 0 {
		return p.regErr("POKEUSER", i, reg, val, e)
	}
	return nil
}

// ReadDR reads one debug register of a stopped tracee thread. It must run
// on the tracer thread (inside Do).
func (p *Ptrace) ReadDR(t Target, reg int) (uint64, error) {
	i, err := p.thread(t)
	if err != nil {
		return 0, err
	}
	off, err := ptRegOffset(reg)
	if err != nil {
		return 0, err
	}
	return p.peekUser(i, reg, off)
}

// peekUser reads a word of struct user; the raw syscall stores it at the
// address in data (the libc wrapper hides this).
func (p *Ptrace) peekUser(i, reg int, off uintptr) (uint64, error) {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, uintptr(p.tids[i]), off, uintptr(unsafe.Pointer(&p.peek)), 0, 0)
	if e != 0 {
		return 0, p.regErr("PEEKUSER", i, reg, 0, e)
	}
	return p.peek, nil
}

// regErr explains a failed register access. It runs only on failure, so
// the checks that cost a system call (which thread are we on?) live here
// and not on the write path.
func (p *Ptrace) regErr(op string, i, reg int, val uint64, e unix.Errno) error {
	what := fmt.Sprintf("ptrace %s DR%d of tracee thread %d (tid %d)", op, reg, i, p.tids[i])
	if op == "POKEUSER" {
		what = fmt.Sprintf("ptrace %s DR%d = %#x of tracee thread %d (tid %d)", op, reg, val, i, p.tids[i])
	}
	switch e {
	case unix.ENOSPC:
		return fmt.Errorf("hwregs: %s: %w: %w", what, alloc.ErrNoSlot, e)
	case unix.EINVAL:
		if reg <= RegDR3 {
			return fmt.Errorf("hwregs: %s: %w: %w: %w", what, alloc.ErrInvalid, ErrBadAddr, e)
		}
		return fmt.Errorf("hwregs: %s: %w: %w", what, alloc.ErrInvalid, e)
	case unix.ESRCH:
		switch {
		case !p.onTracer():
			return fmt.Errorf("hwregs: %s: %w (tid %d, tracer tid %d); call it inside Ptrace.Do: %w", what, ErrWrongThread, unix.Gettid(), p.tracerTid, e)
		case p.state[i] == ptGone || p.broken != nil:
			return fmt.Errorf("hwregs: %s: %w: %w", what, ErrTraceeGone, e)
		case p.state[i] == ptRunning:
			return fmt.Errorf("hwregs: %s: %w (stop it first): %w", what, ErrNotStopped, e)
		}
		if unix.Tgkill(p.pid, p.tids[i], 0) == unix.ESRCH {
			return fmt.Errorf("hwregs: %s: %w: %w", what, ErrTraceeGone, e)
		}
	case unix.EPERM:
		return fmt.Errorf("hwregs: %s: permission denied (CAP_SYS_PTRACE?): %w", what, e)
	case unix.EIO:
		return fmt.Errorf("hwregs: %s: the kernel has no such register: %w", what, e)
	}
	return fmt.Errorf("hwregs: %s: %w", what, e)
}

// ptcall makes a ptrace request that returns only an error.
func ptcall(req int, tid int, addr, data uintptr) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), addr, data, 0, 0)
	return e
}

func (p *Ptrace) writeMem(addr uint64, b []byte) error {
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMWritev(p.pid, local, remote, 0)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write %d of %d bytes", n, len(b))
	}
	if err != nil {
		return fmt.Errorf("hwregs: writing tracee %d memory at %#x: %w", p.pid, addr, err)
	}
	return nil
}
