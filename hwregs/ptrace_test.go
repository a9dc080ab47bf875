package hwregs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs/tracee"
	"bpbench/internal/child"
	"bpbench/internal/testenv"
)

// ptStart takes the machine-wide debug-register lock and starts a traced
// tracee with the given number of threads, closed at the end of the test.
func ptStart(tb testing.TB, threads int) *Ptrace {
	tb.Helper()
	testenv.LockDebugRegs(tb)
	p, err := StartPtrace(PtraceOptions{Threads: threads})
	testenv.SkipIfUnsupported(tb, err)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return p
}

// ptDo runs f on the tracer thread and fails the test with its error. f must
// not call t.Fatal itself (it runs on another goroutine).
func ptDo(tb testing.TB, p *Ptrace, f func() error) {
	tb.Helper()
	var err error
	if derr := p.Do(func() { err = f() }); derr != nil {
		tb.Fatal(derr)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// ptArm programs slot i of thread th with a and enables it in DR7, as a
// debugger would: address first, then control.
func ptArm(p *Ptrace, th, i int, a Attr) error {
	t := Target{Task: th}
	if err := p.WriteDR(t, RegDR0+i, a.Addr); err != nil {
		return err
	}
	d7, err := p.ReadDR(t, RegDR7)
	if err != nil {
		return err
	}
	return p.WriteDR(t, RegDR7, uint64(DR7(d7).WithSlot(i, a)))
}

// ptDisarm disables slot i of thread th.
func ptDisarm(p *Ptrace, th, i int) error {
	t := Target{Task: th}
	d7, err := p.ReadDR(t, RegDR7)
	if err != nil {
		return err
	}
	return p.WriteDR(t, RegDR7, uint64(DR7(d7).WithoutSlot(i)))
}

func ptRun(tb testing.TB, p *Ptrace, cmd tracee.Command) *PtraceResult {
	tb.Helper()
	r, err := p.Run(cmd)
	if err != nil {
		tb.Fatalf("Run(%+v): %v", cmd, err)
	}
	if r.OtherTraps != 0 || r.Signals != 0 {
		tb.Errorf("Run(%+v): %d stray SIGTRAPs, %d other signals", cmd, r.OtherTraps, r.Signals)
	}
	return r
}

// ptWantTraps checks thread th's traps per slot.
func ptWantTraps(tb testing.TB, r *PtraceResult, th int, want [NumSlots]uint64) {
	tb.Helper()
	if r.Traps[th] != want {
		tb.Errorf("thread %d traps by slot = %v, want %v (tracee counted %d ops, %d stops)", th, r.Traps[th], want, r.Ops[th], r.Stops[th])
	}
}

func TestPtraceWriteWatchEachSlot(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	const n = 100
	for i := 0; i < NumSlots; i++ {
		a := Attr{Addr: h.VarAddr(0, i), Len: 8, Type: Write}
		ptDo(t, p, func() error { return ptArm(p, 0, i, a) })
		r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: i, Count: n})
		if r.Ops[0] != n {
			t.Fatalf("slot %d: tracee counted %d writes, want %d", i, r.Ops[0], n)
		}
		var want [NumSlots]uint64
		want[i] = r.Ops[0] // one trap per write, and DR6 names slot i
		ptWantTraps(t, r, 0, want)
		// Another variable is not watched.
		r = ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: (i + 1) % NumSlots, Count: n})
		ptWantTraps(t, r, 0, [NumSlots]uint64{})
		ptDo(t, p, func() error { return ptDisarm(p, 0, i) })
		r = ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: i, Count: n})
		ptWantTraps(t, r, 0, [NumSlots]uint64{})
	}
}

func TestPtraceAllSlotsAtOnce(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	ptDo(t, p, func() error {
		for i := 0; i < NumSlots; i++ {
			if err := ptArm(p, 0, i, Attr{Addr: h.VarAddr(0, i), Len: 8, Type: Write}); err != nil {
				return err
			}
		}
		return nil
	})
	for i := 0; i < NumSlots; i++ {
		r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: i, Count: uint64(10 + i)})
		var want [NumSlots]uint64
		want[i] = uint64(10 + i)
		ptWantTraps(t, r, 0, want)
	}
}

func TestPtraceReadWriteWatch(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	const n = 50
	// A write watchpoint ignores reads.
	ptDo(t, p, func() error { return ptArm(p, 0, 1, Attr{Addr: h.VarAddr(0, 2), Len: 8, Type: Write}) })
	r := ptRun(t, p, tracee.Command{Op: tracee.OpRead, Var: 2, Count: n})
	ptWantTraps(t, r, 0, [NumSlots]uint64{})
	// A read/write watchpoint traps on every read.
	ptDo(t, p, func() error { return ptArm(p, 0, 1, Attr{Addr: h.VarAddr(0, 2), Len: 8, Type: ReadWrite}) })
	r = ptRun(t, p, tracee.Command{Op: tracee.OpRead, Var: 2, Count: n})
	if r.Ops[0] != n {
		t.Fatalf("tracee counted %d reads, want %d", r.Ops[0], n)
	}
	ptWantTraps(t, r, 0, [NumSlots]uint64{0, n, 0, 0})
}

func TestPtraceExecBreakpoint(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	const n = 50
	ptDo(t, p, func() error { return ptArm(p, 0, 3, Attr{Addr: h.FuncAddr, Len: 1, Type: Exec}) })
	r := ptRun(t, p, tracee.Command{Op: tracee.OpExec, Count: n})
	if r.Ops[0] != n {
		t.Fatalf("tracee counted %d calls, want %d", r.Ops[0], n)
	}
	ptWantTraps(t, r, 0, [NumSlots]uint64{0, 0, 0, n})
	// Writes do not execute the function.
	r = ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Count: n})
	ptWantTraps(t, r, 0, [NumSlots]uint64{})
}

// TestPtraceBpModify1 follows tools/perf/arch/x86/tests/bp-modify.c
// (bp_modify1): after the address changes, the old one no longer traps and
// the new one does.
func TestPtraceBpModify1(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	const n = 20
	ptDo(t, p, func() error { return ptArm(p, 0, 0, Attr{Addr: h.VarAddr(0, 0), Len: 8, Type: Write}) })
	r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: n})
	ptWantTraps(t, r, 0, [NumSlots]uint64{n})
	// Modify in place: only DR0 changes, DR7 stays enabled.
	ptDo(t, p, func() error { return p.WriteDR(Target{Task: 0}, RegDR0, h.VarAddr(0, 1)) })
	r = ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: n})
	ptWantTraps(t, r, 0, [NumSlots]uint64{})
	r = ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 1, Count: n})
	ptWantTraps(t, r, 0, [NumSlots]uint64{n})
}

// TestPtraceBpModify2 follows bp-modify.c (bp_modify2): DR0 = -1 is refused
// and the old breakpoint still fires.
func TestPtraceBpModify2(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	const n = 20
	addr := h.VarAddr(0, 0)
	ptDo(t, p, func() error { return ptArm(p, 0, 0, Attr{Addr: addr, Len: 8, Type: Write}) })
	var werr error
	var dr0 uint64
	ptDo(t, p, func() error {
		werr = p.WriteDR(Target{Task: 0}, RegDR0, ^uint64(0))
		var err error
		dr0, err = p.ReadDR(Target{Task: 0}, RegDR0)
		return err
	})
	if !errors.Is(werr, alloc.ErrInvalid) || !errors.Is(werr, ErrBadAddr) || !errors.Is(werr, unix.EINVAL) {
		t.Fatalf("WriteDR(DR0 = -1) = %v, want ErrInvalid, ErrBadAddr and EINVAL", werr)
	}
	if dr0 != addr {
		t.Fatalf("DR0 after the refused write = %#x, want the old %#x", dr0, addr)
	}
	r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: n})
	ptWantTraps(t, r, 0, [NumSlots]uint64{n})
}

func TestPtraceBadRequests(t *testing.T) {
	p := ptStart(t, 2)
	writes := p.Writes()
	ptDo(t, p, func() error {
		for _, reg := range []int{4, 5, -1, 8} {
			if err := p.WriteDR(Target{Task: 0}, reg, 0); !errors.Is(err, alloc.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("DR%d", reg)) {
				return fmt.Errorf("WriteDR(DR%d) = %v, want ErrInvalid naming the register", reg, err)
			}
			if _, err := p.ReadDR(Target{Task: 0}, reg); !errors.Is(err, alloc.ErrInvalid) {
				return fmt.Errorf("ReadDR(DR%d) = %v, want ErrInvalid", reg, err)
			}
		}
		if err := p.WriteDR(Target{Task: alloc.NoTask, CPU: 0}, RegDR0, 0); !errors.Is(err, ErrUnsupported) {
			return fmt.Errorf("WriteDR(cpu=0) = %v, want ErrUnsupported", err)
		}
		if err := p.WriteDR(Target{Task: 2}, RegDR0, 0); !errors.Is(err, alloc.ErrInvalid) || !strings.Contains(err.Error(), "Task = 2") {
			return fmt.Errorf("WriteDR(task=2) of 2 threads = %v, want ErrInvalid naming Task", err)
		}
		return nil
	})
	if got := p.Writes(); got != writes {
		t.Errorf("refused requests counted %d writes; they made no syscall", got-writes)
	}
	// Off the tracer thread the kernel refuses and the error says why.
	err := p.WriteDR(Target{Task: 0}, RegDR0, 0x1000)
	if !errors.Is(err, ErrWrongThread) || !errors.Is(err, unix.ESRCH) {
		t.Errorf("WriteDR off the tracer thread = %v, want ErrWrongThread", err)
	}
	// A running thread's registers cannot be written.
	if err := p.Start(tracee.Command{Op: tracee.OpWrite, Count: 0}); err != nil {
		t.Fatal(err)
	}
	ptDo(t, p, func() error {
		if err := p.WriteDR(Target{Task: 1}, RegDR0, 0x1000); !errors.Is(err, ErrNotStopped) {
			return fmt.Errorf("WriteDR of a running thread = %v, want ErrNotStopped", err)
		}
		return nil
	})
	if err := p.Start(tracee.Command{Op: tracee.OpWrite}); err == nil {
		t.Error("Start while workers run succeeded")
	}
	// Halt only once both workers have started writing: a worker the
	// scheduler has not run yet would otherwise stop with 0 ops.
	before := make([]uint64, p.Threads())
	if err := p.ReadOps(before); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		now := make([]uint64, p.Threads())
		if err := p.ReadOps(now); err != nil {
			t.Fatal(err)
		}
		if now[0] > before[0] && now[1] > before[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers made no progress in 10 s: ops %v -> %v", before, now)
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	r, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops[0] == 0 || r.Ops[1] == 0 {
		t.Errorf("halted run: ops = %v, want both workers to have run", r.Ops)
	}
	if err := p.Start(tracee.Command{Op: tracee.OpWrite, Var: NumSlots}); !errors.Is(err, alloc.ErrInvalid) || !strings.Contains(err.Error(), "Command.Var") {
		t.Errorf("Start(Var = %d) = %v, want ErrInvalid naming Command.Var", NumSlots, err)
	}
}

// ptPerfBreakpoint opens a disabled task-bound write breakpoint on tid with
// perf_event_open, taking one of the thread's debug-register slots.
func ptPerfBreakpoint(tid int, addr uint64) (int, error) {
	attr := unix.PerfEventAttr{
		Type:        unix.PERF_TYPE_BREAKPOINT,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:        unix.PerfBitDisabled,
		Bp_type:     hwBreakpointW,
		Ext1:        addr,
		Ext2:        hwBreakpointLen8,
		Sample_type: 0,
	}
	return unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
}

// ptFillSlots fills tid's four slots with perf breakpoints at addr(0..3),
// skipping the test without a breakpoint PMU or the permission. The fds
// left in the returned slice are closed at cleanup.
func ptFillSlots(t *testing.T, tid int, addr func(i int) uint64) *[]int {
	t.Helper()
	fds := new([]int)
	t.Cleanup(func() {
		for _, fd := range *fds {
			unix.Close(fd)
		}
	})
	for i := 0; i < NumSlots; i++ {
		fd, err := ptPerfBreakpoint(tid, addr(i))
		testenv.SkipIfUnsupported(t, perfErr(err))
		if err != nil {
			t.Fatalf("perf breakpoint %d on tid %d: %v", i, tid, err)
		}
		*fds = append(*fds, fd)
	}
	return fds
}

// TestPtraceNoSlotFromPerf fills a tracee thread's four slots with perf
// breakpoints; a ptrace DR0 write, which reserves a slot in the kernel,
// then fails with ENOSPC mapped to alloc.ErrNoSlot.
func TestPtraceNoSlotFromPerf(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	fds := ptFillSlots(t, p.Tids()[0], func(i int) uint64 { return h.VarAddr(0, i) })
	var err error
	ptDo(t, p, func() error { err = p.WriteDR(Target{Task: 0}, RegDR0, h.VarAddr(0, 0)); return nil })
	if !errors.Is(err, alloc.ErrNoSlot) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("DR0 write with four perf breakpoints on the thread = %v, want ErrNoSlot (ENOSPC)", err)
	}
	unix.Close((*fds)[0])
	*fds = (*fds)[1:]
	ptDo(t, p, func() error { return ptArm(p, 0, 0, Attr{Addr: h.VarAddr(0, 0), Len: 8, Type: Write}) })
	r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: 10})
	ptWantTraps(t, r, 0, [NumSlots]uint64{10})
}

func TestPtraceThreads(t *testing.T) {
	for _, n := range []int{8, 64} {
		t.Run(fmt.Sprintf("threads=%d", n), func(t *testing.T) {
			p := ptStart(t, n)
			h := p.Hello()
			seen := map[int]bool{p.Pid(): true}
			for i, tid := range p.Tids() {
				if tid <= 0 || seen[tid] {
					t.Fatalf("thread %d: tid %d is not a distinct thread", i, tid)
				}
				seen[tid] = true
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", p.Pid(), tid)); err != nil {
					t.Fatalf("thread %d: tid %d is not a thread of tracee %d: %v", i, tid, p.Pid(), err)
				}
			}
			// One process-wide watchpoint: the same slot and address on every thread.
			shared := Attr{Addr: h.SharedVarAddr(0), Len: 8, Type: Write}
			ptDo(t, p, func() error {
				for i := 0; i < n; i++ {
					if err := ptArm(p, i, 2, shared); err != nil {
						return err
					}
				}
				return nil
			})
			const count = 25
			r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: count, Shared: true})
			for i := 0; i < n; i++ {
				if r.Ops[i] != count {
					t.Errorf("thread %d counted %d writes, want %d", i, r.Ops[i], count)
				}
				ptWantTraps(t, r, i, [NumSlots]uint64{0, 0, r.Ops[i], 0})
			}
			// Stop threads in a run without end, clear the watchpoint and
			// resume them, as an eager debugger does.
			if err := p.Start(tracee.Command{Op: tracee.OpWrite, Var: 1, Count: 0, Shared: true}); err != nil {
				t.Fatal(err)
			}
			// One by one with 8 threads; with 64 on two CPUs each interrupt
			// waits for its thread's turn to run, so stop them all at once.
			if n <= 8 {
				for i := 0; i < n; i++ {
					if err := p.StopThread(i); err != nil {
						t.Fatal(err)
					}
					if !p.Stopped(i) {
						t.Fatalf("thread %d not stopped after StopThread", i)
					}
					ptDo(t, p, func() error { return ptDisarm(p, i, 2) })
					if err := p.ResumeThread(i); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				if err := p.StopAll(); err != nil {
					t.Fatal(err)
				}
				ptDo(t, p, func() error {
					for i := 0; i < n; i++ {
						if !p.Stopped(i) {
							return fmt.Errorf("thread %d not stopped after StopAll", i)
						}
						if err := ptDisarm(p, i, 2); err != nil {
							return err
						}
					}
					return nil
				})
				if err := p.ResumeAll(); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Halt(); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			r = ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: count, Shared: true})
			for i := 0; i < n; i++ {
				ptWantTraps(t, r, i, [NumSlots]uint64{})
			}
		})
	}
}

// ptOpenFDs counts this process's open file descriptors.
func ptOpenFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

// ptProcState returns the state letter of /proc/pid/stat ("" if pid is gone).
func ptProcState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// ptWantGone fails unless pid and tids no longer exist, not even as zombies.
func ptWantGone(tb testing.TB, pid int, tids []int) {
	tb.Helper()
	for _, id := range append([]int{pid}, tids...) {
		if st := ptProcState(id); st != "" {
			tb.Errorf("tracee task %d still exists (state %s)", id, st)
		}
	}
}

func TestPtraceCloseLeavesNothing(t *testing.T) {
	testenv.LockDebugRegs(t)
	before := ptOpenFDs(t)
	p, err := StartPtrace(PtraceOptions{Threads: 4})
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	pid, tids := p.Pid(), p.Tids()
	if st := ptProcState(pid); st == "" {
		t.Fatalf("tracee %d not running after StartPtrace", pid)
	}
	ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Count: 10})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	ptWantGone(t, pid, tids)
	if after := ptOpenFDs(t); after != before {
		t.Errorf("open fds: %d before StartPtrace, %d after Close", before, after)
	}
	if err := p.Do(func() {}); !errors.Is(err, ErrTracerClosed) {
		t.Errorf("Do after Close = %v, want ErrTracerClosed", err)
	}
	if _, err := p.Run(tracee.Command{Op: tracee.OpWrite}); !errors.Is(err, ErrTracerClosed) {
		t.Errorf("Run after Close = %v, want ErrTracerClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestPtracePanicInDoKillsTracee(t *testing.T) {
	p := ptStart(t, 2)
	pid, tids := p.Pid(), p.Tids()
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("Do re-panicked with %v, want boom", v)
			}
		}()
		p.Do(func() { panic("boom") })
	}()
	ptWantGone(t, pid, tids)
	if _, err := p.Run(tracee.Command{Op: tracee.OpWrite}); !errors.Is(err, ErrTracerClosed) {
		t.Errorf("Run after a panic = %v, want ErrTracerClosed", err)
	}
}

func TestPtraceGoexitInDoKillsTracee(t *testing.T) {
	p := ptStart(t, 1)
	pid, tids := p.Pid(), p.Tids()
	if err := p.Do(runtime.Goexit); !errors.Is(err, ErrTracerClosed) {
		t.Errorf("Do(runtime.Goexit) = %v, want ErrTracerClosed", err)
	}
	ptWantGone(t, pid, tids)
}

// ptHelperMode is the child mode TestPtraceSignalKillsTracee runs its
// tracer in: it starts a tracee, prints its pid and thread ids and waits
// to be killed by a signal.
const ptHelperMode = "hwregs-test-ptrace-helper"

func init() { child.Add(ptHelperMode, ptHelperMain) }

func ptHelperMain() int {
	// The parent test holds the debug-register lock for us.
	p, err := StartPtrace(PtraceOptions{Threads: 3})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("tracee", p.Pid(), strings.Trim(fmt.Sprint(p.Tids()), "[]"))
	// Leave the workers running, the hardest case to clean up.
	if err := p.Start(tracee.Command{Op: tracee.OpWrite, Count: 0}); err != nil {
		fmt.Println("error", err)
		return 1
	}
	select {}
}

// TestPtraceSignalKillsTracee kills a tracer process with SIGTERM and
// SIGINT and checks that its tracee dies too.
func TestPtraceSignalKillsTracee(t *testing.T) {
	testenv.LockDebugRegs(t)
	probe, err := StartPtrace(PtraceOptions{})
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run("signal="+unix.SignalName(sig), func(t *testing.T) {
			path, argv, err := child.Self(ptHelperMode)
			if err != nil {
				t.Fatal(err)
			}
			cmd := &exec.Cmd{Path: path, Args: argv, Env: append(os.Environ(), child.Env(ptHelperMode))}
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("helper said nothing: %v", err)
			}
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "tracee" {
				t.Fatalf("helper: %s", line)
			}
			var ids []int
			for _, s := range f[1:] {
				id, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("helper: %s", line)
				}
				ids = append(ids, id)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			// The orphaned tracee is killed by the kernel and reaped by init;
			// wait for that rather than assume how long it takes.
			deadline := time.Now().Add(10 * time.Second)
			for ptProcState(ids[0]) != "" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			ptWantGone(t, ids[0], ids[1:])
		})
	}
}

// TestPtraceWriter programs a real tracee through the shared Writer under
// both policies: traps follow Register, Modify (bp_modify1), a refused
// Modify (bp_modify2), Reregister and Unregister.
func TestPtraceWriter(t *testing.T) {
	p := ptStart(t, 1)
	h := p.Hello()
	const n = 30
	for _, pol := range Policies {
		t.Run("policy="+PolicyName(pol), func(t *testing.T) {
			a, err := alloc.New("mutex", alloc.X86(1))
			if err != nil {
				t.Fatal(err)
			}
			ptDo(t, p, func() error { return ptReset(p) })
			w := NewWriter(a, p, pol)
			req := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}
			var bp Breakpoint
			ptDo(t, p, func() (err error) {
				bp, err = w.Register(req, Attr{Addr: h.VarAddr(0, 0), Len: 8, Type: Write})
				return err
			})
			slot := bp.Slot.Index()
			want := func(v uint64) (w [NumSlots]uint64) { w[slot] = v; return }
			r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: n})
			ptWantTraps(t, r, 0, want(n))

			ptDo(t, p, func() error { return w.Modify(&bp, Attr{Addr: h.VarAddr(0, 1), Len: 4, Type: Write}) })
			ptWantTraps(t, ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 0, Count: n}), 0, want(0))
			ptWantTraps(t, ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 1, Count: n}), 0, want(n))

			var merr error
			ptDo(t, p, func() error { merr = w.Modify(&bp, Attr{Addr: MaxUserAddr, Len: 8, Type: Write}); return nil })
			if !errors.Is(merr, alloc.ErrInvalid) {
				t.Errorf("Modify to a kernel address = %v, want ErrInvalid", merr)
			}
			ptWantTraps(t, ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: 1, Count: n}), 0, want(n))

			ptDo(t, p, func() error {
				return w.DisableModifyEnable(&bp, Attr{Addr: h.VarAddr(0, 2), Len: 8, Type: ReadWrite})
			})
			ptWantTraps(t, ptRun(t, p, tracee.Command{Op: tracee.OpRead, Var: 2, Count: n}), 0, want(n))

			ptDo(t, p, func() (err error) {
				_, err = w.Reregister(&bp, Attr{Addr: h.FuncAddr, Len: 1, Type: Exec})
				return err
			})
			slot = bp.Slot.Index()
			ptWantTraps(t, ptRun(t, p, tracee.Command{Op: tracee.OpExec, Count: n}), 0, want(n))

			ptDo(t, p, func() error { return w.Unregister(bp) })
			ptWantTraps(t, ptRun(t, p, tracee.Command{Op: tracee.OpExec, Count: n}), 0, [NumSlots]uint64{})
			if a.InUse() {
				t.Error("allocator still in use after Unregister")
			}
		})
	}
}

// TestPtraceWriterConcurrent drives one Writer from several goroutines, each
// owning one tracee thread's breakpoint, through Do (run with -race); every
// thread's registers and traps must match its last Modify.
func TestPtraceWriterConcurrent(t *testing.T) {
	const threads, rounds = 4, 200
	p := ptStart(t, threads)
	h := p.Hello()
	a, err := alloc.New("mutex", alloc.X86(1))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(a, p, WriteChanged)
	errs := make(chan error, threads)
	for th := 0; th < threads; th++ {
		go func() {
			var err error
			derr := p.Do(func() {
				var bp Breakpoint
				if bp, err = w.Register(alloc.Request{Task: th, CPU: alloc.AnyCPU, Kind: alloc.Data}, Attr{Addr: h.VarAddr(th, 0), Len: 8, Type: Write}); err != nil {
					return
				}
				for i := 0; i < rounds && err == nil; i++ {
					err = w.Modify(&bp, Attr{Addr: h.VarAddr(th, i%NumSlots), Len: 8, Type: Write})
				}
			})
			errs <- errors.Join(derr, err)
		}()
	}
	for range threads {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	last := (rounds - 1) % NumSlots
	ptDo(t, p, func() error {
		for th := 0; th < threads; th++ {
			v, err := p.ReadDR(Target{Task: th}, RegDR0)
			if err != nil {
				return err
			}
			if v != h.VarAddr(th, last) {
				return fmt.Errorf("thread %d DR0 = %#x, want %#x", th, v, h.VarAddr(th, last))
			}
		}
		return nil
	})
	r := ptRun(t, p, tracee.Command{Op: tracee.OpWrite, Var: last, Count: 10})
	for th := 0; th < threads; th++ {
		ptWantTraps(t, r, th, [NumSlots]uint64{10})
	}
}
