package hwregs

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/internal/support"
)

// Breakpoint types and lengths of perf_event_attr.bp_type and bp_len
// (HW_BREAKPOINT_R ... HW_BREAKPOINT_LEN_8 of
// include/uapi/linux/hw_breakpoint.h); golang.org/x/sys/unix does not
// define them.
const (
	hwBreakpointR  = 1
	hwBreakpointW  = 2
	hwBreakpointRW = hwBreakpointR | hwBreakpointW
	hwBreakpointX  = 4

	hwBreakpointLen1 = 1
	hwBreakpointLen2 = 2
	hwBreakpointLen4 = 4
	hwBreakpointLen8 = 8
)

// ErrPermission is wrapped by errors of operations the kernel refused for
// lack of privilege (EACCES, EPERM): perf_event_paranoid, a missing
// CAP_PERFMON, or a ptrace access check on another process.
var ErrPermission = support.New("permission denied")

// PerfOption configures OpenPerf.
type PerfOption func(*perfConfig)

type perfConfig struct {
	disabled    bool
	inherit     bool
	countKernel bool
}

// PerfDisabled opens the event disabled: the slot is reserved (the kernel
// admits disabled breakpoints too) but nothing counts until Enable.
func PerfDisabled() PerfOption { return func(c *perfConfig) { c.disabled = true } }

// PerfInherit makes threads created later by the target thread inherit the
// breakpoint (perf_event_attr.inherit), as `perf bench breakpoint` does.
func PerfInherit() PerfOption { return func(c *perfConfig) { c.inherit = true } }

// PerfCountKernel also counts accesses made by the kernel on the target's
// behalf (clears exclude_kernel and exclude_hv). By default they are
// excluded, as perf bench does, which also lets unprivileged users open
// breakpoints at perf_event_paranoid 2.
func PerfCountKernel() PerfOption { return func(c *perfConfig) { c.countKernel = true } }

// PerfEvent is one perf_event_open(PERF_TYPE_BREAKPOINT) breakpoint bound to
// a thread or a CPU. The kernel does admission: opening it reserves a slot
// and Close releases it. A PerfEvent is not safe for concurrent use.
type PerfEvent struct {
	fd       int
	pid, cpu int
	cfg      perfConfig
	a        Attr
	enabled  bool
	attr     unix.PerfEventAttr // the attribute the kernel holds; Modify must repeat it
	next     unix.PerfEventAttr // scratch for Modify, kept here so Modify does not allocate
	countBuf [8]byte
}

// perfAttrOf fills the perf_event_attr for a and cfg. Exec breakpoints
// take the bp_len of execLen, whatever Attr.Len says.
func perfAttrOf(a Attr, cfg perfConfig) unix.PerfEventAttr {
	attr := unix.PerfEventAttr{
		Type: unix.PERF_TYPE_BREAKPOINT,
		Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
	}
	if cfg.disabled {
		attr.Bits |= unix.PerfBitDisabled
	}
	if cfg.inherit {
		attr.Bits |= unix.PerfBitInherit
	}
	if !cfg.countKernel {
		attr.Bits |= unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv
	}
	setBreakpoint(&attr, a)
	return attr
}

// setBreakpoint writes a's address, type and length into attr.
func setBreakpoint(attr *unix.PerfEventAttr, a Attr) {
	attr.Ext1 = a.Addr
	attr.Ext2 = uint64(a.Len)
	switch a.Type {
	case Exec:
		attr.Bp_type = hwBreakpointX
		attr.Ext2 = execLen()
	case Write:
		attr.Bp_type = hwBreakpointW
	case ReadWrite:
		attr.Bp_type = hwBreakpointRW
	}
}

// execLen is the bp_len of an exec breakpoint on this architecture. x86
// wants sizeof(long) (arch_build_bp_info refuses any other length for X,
// although DR7 encodes exec with LEN 00 and Attr says 1). arm64's A64
// instructions are 4 bytes, and arch/arm64/kernel/hw_breakpoint.c
// permits only length 4 for a native exec breakpoint (it rewrites any
// other, "FIXME: Some tools (I'm looking at you perf) assume that
// breakpoints should be sizeof(long)"), so 4 says what it means.
func execLen() uint64 {
	if runtime.GOARCH == "arm64" {
		return hwBreakpointLen4
	}
	return hwBreakpointLen8
}

// PerfAttr returns the perf_event_attr OpenPerf would pass for a and opts,
// for callers that issue the syscalls themselves (raw-syscall baselines).
func PerfAttr(a Attr, opts ...PerfOption) unix.PerfEventAttr {
	var cfg perfConfig
	for _, o := range opts {
		o(&cfg)
	}
	return perfAttrOf(a, cfg)
}

// OpenPerf opens a breakpoint described by a on thread pid (0: the calling
// thread; a tid: that thread) on every CPU (cpu = -1), or on CPU cpu for
// every task (pid = -1). The file descriptor is close-on-exec. Errors wrap
// alloc.ErrInvalid (bad attribute, or the kernel's EINVAL), alloc.ErrNoSlot
// (the kernel's ENOSPC), ErrPermission or ErrUnsupported (no breakpoint PMU).
func OpenPerf(a Attr, pid, cpu int, opts ...PerfOption) (*PerfEvent, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if pid < -1 {
		return nil, fmt.Errorf("%w: pid = %d: want -1 (CPU-bound), 0 (this thread) or a thread id", alloc.ErrInvalid, pid)
	}
	if cpu < -1 {
		return nil, fmt.Errorf("%w: cpu = %d: want -1 (every CPU) or a CPU number", alloc.ErrInvalid, cpu)
	}
	if pid == -1 && cpu == -1 {
		return nil, fmt.Errorf("%w: pid = -1 and cpu = -1: a CPU-bound breakpoint needs a CPU", alloc.ErrInvalid)
	}
	var cfg perfConfig
	for _, o := range opts {
		o(&cfg)
	}
	e := &PerfEvent{fd: -1, pid: pid, cpu: cpu, cfg: cfg}
	if err := e.open(a); err != nil {
		return nil, err
	}
	return e, nil
}

// open opens the event for a with e's target and options; e must be closed.
func (e *PerfEvent) open(a Attr) error {
	e.attr = perfAttrOf(a, e.cfg)
	fd, err := unix.PerfEventOpen(&e.attr, e.pid, e.cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("hwregs: perf_event_open(%v, pid=%d, cpu=%d): %w", a, e.pid, e.cpu, perfErr(err))
	}
	e.fd, e.a, e.enabled = fd, a, !e.cfg.disabled
	return nil
}

// Reregister moves the breakpoint to a by closing it and opening a new one
// with the same target and options: the baseline Modify is compared with.
// Between the two the slot is free and anyone may take it (the race of
// commit 44234adcdce3); if the open fails, e stays closed and the error
// says why (alloc.ErrNoSlot when the slot was taken).
func (e *PerfEvent) Reregister(a Attr) error {
	if err := e.canMove(a); err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	return e.open(a)
}

// perfErr wraps a perf syscall's errno in the sentinel that says what it
// means for a breakpoint, keeping the errno too.
func perfErr(err error) error {
	switch {
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("%w: %w", alloc.ErrNoSlot, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: %w", alloc.ErrInvalid, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (perf_event_paranoid = %s; need root or CAP_PERFMON): %w", ErrPermission, paranoid(), err)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w: no breakpoint PMU in this kernel: %w", ErrUnsupported, err)
	}
	return err
}

func paranoid() string {
	b, err := os.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// FD returns the event's file descriptor, or -1 once closed.
func (e *PerfEvent) FD() int { return e.fd }

// Attr returns the breakpoint the kernel currently holds.
func (e *PerfEvent) Attr() Attr { return e.a }

func (e *PerfEvent) live() error {
	if e.fd < 0 {
		return fmt.Errorf("hwregs: perf event %v: %w", e.a, os.ErrClosed)
	}
	return nil
}

// canMove checks, before Modify or Reregister, that e is open and a is
// valid.
func (e *PerfEvent) canMove(a Attr) error {
	if err := e.live(); err != nil {
		return err
	}
	return a.Validate()
}

// Modify moves the breakpoint to a in place with
// PERF_EVENT_IOC_MODIFY_ATTRIBUTES: the slot stays reserved throughout, so
// no other breakpoint can take it. The enabled state is kept. On error the
// old breakpoint is left exactly as it was and still counts (the kernel
// re-enables it; modify_user_hw_breakpoint_check fails before changing it).
func (e *PerfEvent) Modify(a Attr) error {
	if err := e.canMove(a); err != nil {
		return err
	}
	return e.modify(a)
}

// modify issues the ioctl without validating a, so tests can check that the
// kernel's own refusal leaves the old breakpoint intact.
func (e *PerfEvent) modify(a Attr) error {
	e.next = e.attr
	setBreakpoint(&e.next, a)
	// The kernel applies the new attr's disabled bit after the change and
	// refuses any other difference from the attr it holds, so the bit
	// must say the event's current state.
	if e.enabled {
		e.next.Bits &^= unix.PerfBitDisabled
	} else {
		e.next.Bits |= unix.PerfBitDisabled
	}
	// RawSyscall: the scheduler hand-off of Syscall costs 80-100 ns here,
	// a tenth of the ioctl, which at worst waits briefly for the kernel's
	// breakpoint locks (holding this goroutine's P meanwhile).
	_, _, errno := unix.RawSyscall(unix.SYS_IOCTL, uintptr(e.fd), unix.PERF_EVENT_IOC_MODIFY_ATTRIBUTES, uintptr(unsafe.Pointer(&e.next)))
	if errno != 0 {
		return fmt.Errorf("hwregs: modify perf breakpoint %v -> %v: %w", e.a, a, perfErr(errno))
	}
	e.attr = e.next
	e.a = a
	return nil
}

// Enable starts counting (PERF_EVENT_IOC_ENABLE).
func (e *PerfEvent) Enable() error {
	if err := e.ioctl(unix.PERF_EVENT_IOC_ENABLE, "enable"); err != nil {
		return err
	}
	e.enabled = true
	return nil
}

// Disable stops counting (PERF_EVENT_IOC_DISABLE); the slot stays reserved.
func (e *PerfEvent) Disable() error {
	if err := e.ioctl(unix.PERF_EVENT_IOC_DISABLE, "disable"); err != nil {
		return err
	}
	e.enabled = false
	return nil
}

func (e *PerfEvent) ioctl(req uint, what string) error {
	if err := e.live(); err != nil {
		return err
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(e.fd), uintptr(req), 0)
	if errno != 0 {
		return fmt.Errorf("hwregs: %s perf breakpoint %v: %w", what, e.a, perfErr(errno))
	}
	return nil
}

// Count returns how many times the breakpoint has fired, including in
// threads that inherited it and have exited.
func (e *PerfEvent) Count() (uint64, error) {
	if err := e.live(); err != nil {
		return 0, err
	}
	n, err := unix.Read(e.fd, e.countBuf[:])
	if err != nil {
		return 0, fmt.Errorf("hwregs: read perf breakpoint %v: %w", e.a, perfErr(err))
	}
	if n != len(e.countBuf) {
		return 0, fmt.Errorf("hwregs: read perf breakpoint %v: short read of %d bytes", e.a, n)
	}
	return *(*uint64)(unsafe.Pointer(&e.countBuf)), nil
}

// Close releases the breakpoint and its slot. Closing twice is a no-op.
func (e *PerfEvent) Close() error {
	if e.fd < 0 {
		return nil
	}
	fd := e.fd
	e.fd = -1
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("hwregs: close perf breakpoint %v: %w", e.a, err)
	}
	return nil
}

var (
	perfProbeOnce sync.Once
	perfProbeErr  error
	perfProbeVar  uint64
)

// PerfSupported reports whether this process can open breakpoints with
// perf_event_open: nil, or an error wrapping ErrPermission (with the
// paranoid level) or ErrUnsupported (no breakpoint PMU). The probe runs
// once; tests use it to skip and the CLI's doctor to explain.
func PerfSupported() error {
	perfProbeOnce.Do(func() {
		a := Attr{Addr: uint64(uintptr(unsafe.Pointer(&perfProbeVar))), Len: 8, Type: Write}
		e, err := OpenPerf(a, 0, -1, PerfDisabled())
		switch {
		case errors.Is(err, alloc.ErrNoSlot):
			// The PMU exists and did admission; the slots are just busy now.
		case err != nil:
			perfProbeErr = err
		default:
			perfProbeErr = e.Close()
		}
	})
	return perfProbeErr
}
