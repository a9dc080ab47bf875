package debuggers

import (
	"context"
	"errors"
	"testing"
	"unsafe"

	"bpbench/alloc"
	"bpbench/hwregs"
	"bpbench/internal/testenv"
)

// skipUnavailable skips t when err says the debugger or a tool cannot be
// had here (testenv.SkipIfUnsupported: ErrSkip is a support sentinel),
// with the reason; any other error fails it.
func skipUnavailable(t *testing.T, err error) {
	t.Helper()
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
}

var perfProbeVar [4]uint64

// perfFree counts how many perf breakpoints still fit on thread tid (at
// most 4): the kernel's own answer to how many slots the thread's ptrace
// breakpoints leave.
func perfFree(t *testing.T, tid int) int {
	t.Helper()
	var evs []*hwregs.PerfEvent
	defer func() {
		for _, e := range evs {
			e.Close()
		}
	}()
	for len(evs) < hwregs.NumSlots {
		a := hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&perfProbeVar[len(evs)]))), Len: 8, Type: hwregs.Write}
		e, err := hwregs.OpenPerf(a, tid, -1)
		if errors.Is(err, alloc.ErrNoSlot) {
			break
		}
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatalf("perf breakpoint on thread %d: %v", tid, err)
		}
		evs = append(evs, e)
	}
	return len(evs)
}

// checkGone fails t for every process of the session still in /proc.
func checkGone(t *testing.T, p Pids) {
	t.Helper()
	for what, pid := range map[string]int{"target": p.Target, "debugger": p.Debugger, "strace": p.Strace} {
		if pid != 0 && Alive(pid) {
			t.Errorf("%s (pid %d) outlived the session", what, pid)
		}
	}
}

// realSession runs a traced session of debugger on threads threads and
// checks what every real session must show: each action's stop reported
// by the debugger (the watchpoint's variable for set, hit, move and fill),
// at least one DR7 write per target thread between setting the watchpoint
// and its first hit, the kernel model's slot count after the first set
// equal to what perf_event_open finds free on each thread, and no process
// left behind. It returns the session.
func realSession(t *testing.T, debugger string, threads int) *Session {
	testenv.LockDebugRegs(t)
	free := map[int]int{}
	s, err := Run(context.Background(), Config{Debugger: debugger, Threads: threads, Reps: 1, Trace: true}, Hooks{
		AfterAction: func(s *Session, st Step) error {
			if st.Mark.Rep == 0 && st.Mark.Action == ActionSet {
				for _, tid := range s.Tasks {
					free[tid] = perfFree(t, tid)
				}
			}
			return nil
		},
	})
	if s != nil {
		defer checkGone(t, s.Pids)
	}
	skipUnavailable(t, err)
	if s.Pids.Target == 0 || s.Pids.Debugger == 0 || s.Pids.Strace == 0 {
		t.Fatalf("pids %+v", s.Pids)
	}
	if debugger == GDB && len(s.Tasks) != threads {
		t.Errorf("C target has %d threads, want %d", len(s.Tasks), threads)
	}
	if len(s.Tasks) < threads {
		t.Errorf("target has %d threads, want at least %d", len(s.Tasks), threads)
	}
	vars := map[string][]string{GDB: {"watch0", "watch1", "watch2"}, Delve: {"main.Watch0", "main.Watch1", "main.Watch2"}}[debugger]
	wantStop := map[string]map[string]bool{
		ActionSet:   {vars[0]: true},
		ActionHit:   {vars[0]: true},
		ActionMove:  {vars[1]: true},
		ActionFill:  {vars[0]: true, vars[1]: true, vars[2]: true, vars[1][:len(vars[1])-1] + "3": true},
		ActionClear: {"interrupted": true},
	}
	if len(s.Steps) != 2*len(Actions) {
		t.Fatalf("%d steps, want %d", len(s.Steps), 2*len(Actions))
	}
	for _, st := range s.Steps {
		if !wantStop[st.Mark.Action][st.Stop] {
			t.Errorf("%+v: stopped by %q", st.Mark, st.Stop)
		}
	}
	set := s.Acct.Windows[0]
	if set.Mark.Action != ActionSet || set.Mark.Rep != 0 {
		t.Fatalf("first window is %+v", set.Mark)
	}
	var untouched []int
	for _, tid := range s.Tasks {
		if s.Acct.Touched[tid] == 0 {
			// The debugger never attached to it: a thread the Go runtime
			// was starting while Delve enumerated the target's threads.
			// No watchpoint is armed there, and perf must agree.
			untouched = append(untouched, tid)
			if free[tid] != hwregs.NumSlots {
				t.Errorf("thread %d, never touched by the debugger, has %d slots free", tid, free[tid])
			}
			continue
		}
		if set.Counts.DR7ByThread[tid] < 1 {
			t.Errorf("no DR7 write on thread %d between setting the watchpoint and its first hit (%d DR7 writes in all)", tid, set.Counts.DR7Writes)
		}
		if got, want := free[tid], hwregs.NumSlots-set.Held[tid]; got != want {
			t.Errorf("thread %d after set: perf finds %d slots free, the model says %d are held (so %d free)", tid, got, set.Held[tid], want)
		}
	}
	if len(untouched) > 0 {
		t.Logf("%s never made a ptrace request on threads %v of the target's %d", debugger, untouched, len(s.Tasks))
	}
	if len(untouched) > len(s.Tasks)/2 {
		t.Errorf("%s touched only %d of the target's %d threads", debugger, len(s.Tasks)-len(untouched), len(s.Tasks))
	}
	return s
}

// TestGDBSession runs GDB on the C target with 4 threads. GDB writes only
// DR0 and DR7, so after one watchpoint every thread holds one slot.
func TestGDBSession(t *testing.T) {
	s := realSession(t, GDB, 4)
	for _, tid := range s.Tasks {
		if h := s.Acct.Windows[0].Held[tid]; h != 1 && s.Acct.Touched[tid] > 0 {
			t.Errorf("GDB: thread %d holds %d slots after one watchpoint, want 1", tid, h)
		}
	}
}

// TestDelveSession runs the pinned Delve (built into the cache on first
// use) on the Go target with 4 worker threads. Delve writes DR0-DR3 on
// its first change, so one watchpoint takes every slot of every thread.
func TestDelveSession(t *testing.T) {
	s := realSession(t, Delve, 4)
	for _, tid := range s.Tasks {
		if h := s.Acct.Windows[0].Held[tid]; h != 4 && s.Acct.Touched[tid] > 0 {
			t.Errorf("Delve: thread %d holds %d slots after one watchpoint, want 4", tid, h)
		}
	}
}

// TestSessionCleanup checks that a session that fails, by a command the
// debugger refuses or by cancellation, still kills and reaps the target,
// the debugger and strace.
func TestSessionCleanup(t *testing.T) {
	testenv.LockDebugRegs(t)
	for _, debugger := range []string{GDB, Delve} {
		t.Run(debugger+"/refused", func(t *testing.T) {
			s, err := Run(context.Background(), Config{Debugger: debugger, Threads: 2, Reps: 1, Trace: true,
				Vars: []string{"no_such_variable", "b", "c", "d"}}, Hooks{})
			testenv.SkipIfUnsupported(t, err)
			if !errors.Is(err, ErrSession) {
				t.Fatalf("watching a variable that does not exist: error %v, want ErrSession", err)
			}
			if s == nil || s.Pids.Target == 0 || s.Pids.Debugger == 0 || s.Pids.Strace == 0 {
				t.Fatalf("session %+v: want the pids of all three processes", s)
			}
			checkGone(t, s.Pids)
		})
		t.Run(debugger+"/cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := Run(ctx, Config{Debugger: debugger, Threads: 2, Reps: 1}, Hooks{
				AfterAction: func(*Session, Step) error { cancel(); return nil },
			})
			testenv.SkipIfUnsupported(t, err)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled session: error %v, want context.Canceled", err)
			}
			if s == nil || s.Pids.Target == 0 || s.Pids.Debugger == 0 {
				t.Fatalf("session %+v: want the pids", s)
			}
			checkGone(t, s.Pids)
		})
	}
}

// TestConfigValidate refuses sessions that cannot run.
func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Debugger: "lldb", Threads: 1, Reps: 1},
		{Debugger: GDB, Threads: 0, Reps: 1},
		{Debugger: GDB, Threads: 1, Reps: 0},
		{Debugger: GDB, Threads: 1, Reps: 1, Vars: []string{"a"}},
	} {
		if _, err := Run(context.Background(), c, Hooks{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want ErrConfig", c, err)
		}
	}
}

// TestGDBAlwaysInserted checks why GDB's hit writes DR7 on every thread
// though nothing changed: GDB removes its breakpoints when the target
// stops and inserts them again when it resumes (breakpoint always-inserted
// off, its default), which re-programs every thread. With the setting on,
// a hit writes at most DR6 on the thread that hit.
func TestGDBAlwaysInserted(t *testing.T) {
	testenv.LockDebugRegs(t)
	const threads = 4
	hitWrites := func(set []string) float64 {
		s, err := Run(context.Background(), Config{Debugger: GDB, Threads: threads, Reps: 2, Trace: true, GDBSet: set}, Hooks{})
		if s != nil {
			defer checkGone(t, s.Pids)
		}
		skipUnavailable(t, err)
		sum, err := Summarise(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sum[ActionHit].Metrics[MetricDRWrites]
	}
	off, on := hitWrites(nil), hitWrites([]string{"breakpoint always-inserted on"})
	if off < threads {
		t.Errorf("default GDB: %v DR writes per hit on %d threads, want at least one per thread", off, threads)
	}
	if on > 1 {
		t.Errorf("always-inserted on: %v DR writes per hit, want at most 1 (DR6 of the thread that hit)", on)
	}
}
