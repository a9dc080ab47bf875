package debuggers

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// loadFixture parses and accounts a recorded trace and returns it with the
// target's threads.
func loadFixture(t *testing.T, file string) (*Accounting, []int) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := ParseStrace(f)
	if err != nil {
		t.Fatal(err)
	}
	pols, err := RegisteredPolicies()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Account(evs, pols)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", file+".tasks"))
	if err != nil {
		t.Fatal(err)
	}
	var tids []int
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, n)
	}
	// Every session is one warm-up and one measured repetition of the
	// five actions, then the end marker.
	if len(a.Windows) != 2*len(Actions)+1 {
		t.Fatalf("%d windows, want %d", len(a.Windows), 2*len(Actions)+1)
	}
	for i, w := range a.Windows[:2*len(Actions)] {
		if w.Mark.Seq != i+1 || w.Mark.Rep != i/len(Actions) || w.Mark.Action != Actions[i%len(Actions)] {
			t.Fatalf("window %d is %+v", i, w.Mark)
		}
	}
	return a, tids
}

// window returns the window of action in repetition rep.
func window(t *testing.T, a *Accounting, rep int, action string) Counts {
	t.Helper()
	for _, w := range a.Windows {
		if w.Mark.Rep == rep && w.Mark.Action == action {
			return w.Counts
		}
	}
	t.Fatalf("no window for %s in repetition %d", action, rep)
	return Counts{}
}

// TestFixtureGDB checks the accounting of a recorded GDB session (C
// target, 2 threads) against what gdb/nat/x86-dregs.c does: at each resume
// it writes, per thread whose mirror changed, DR7 = 0, the changed address
// registers, the new DR7 and DR6 = 0; nothing before.
func TestFixtureGDB(t *testing.T) {
	a, tids := loadFixture(t, "gdb-threads2.strace")
	n := len(tids)
	set := window(t, a, 0, ActionSet)
	// Per thread: DR7 = 0 (nothing held yet), DR0 (reserves slot 0),
	// DR7 enabling it, DR6 = 0.
	if set.DRWrites != 4*n || set.Reserves() != n || set.Outcomes[Enabled] != n || set.Outcomes[Status] != n {
		t.Errorf("set: %d writes, outcomes %v; want %d writes, %d reserved, enabled and status", set.DRWrites, set.Outcomes, 4*n, n)
	}
	for _, tid := range tids {
		if set.DR7ByThread[tid] < 1 {
			t.Errorf("set: no DR7 write on thread %d between setting the watchpoint and its first hit", tid)
		}
	}
	// The state reached is DR0 and DR7: two writes under write-changed,
	// six under write-all, per thread.
	if set.Changes != n || set.Policy["changed"] != 2*n || set.Policy["all"] != 6*n {
		t.Errorf("set: %d changes, policies %v", set.Changes, set.Policy)
	}
	// A continue with nothing changed rewrites DR7 (0, then the same
	// value) to the same state: no change for a policy to make.
	if hit := window(t, a, 0, ActionHit); hit.Changes != 0 || hit.Policy["changed"] != 0 || hit.DR7Writes == 0 {
		t.Errorf("hit: %d changes, %d DR7 writes, policies %v", hit.Changes, hit.DR7Writes, hit.Policy)
	}
	// Fill takes the three free slots: DR1-DR3 reserve them.
	if fill := window(t, a, 0, ActionFill); fill.Reserves() != 3*n {
		t.Errorf("fill: %d reserved, want %d", fill.Reserves(), 3*n)
	}
	// Clear writes DR7 = 0 per thread (and DR6 = 0 on the one that hit)
	// and leaves the addresses: four breakpoints disabled and still held.
	clr := window(t, a, 0, ActionClear)
	if clr.DR7Writes != n || clr.DRWrites-clr.DR6Writes != n || clr.Outcomes[Disabled] != 4*n || clr.Policy["changed"] != n {
		t.Errorf("clear: %d writes (%d DR7), outcomes %v, policies %v", clr.DRWrites, clr.DR7Writes, clr.Outcomes, clr.Policy)
	}
	for _, tid := range tids {
		if h := a.Kernel.Held(tid); h != 4 {
			t.Errorf("thread %d holds %d slots at the end, want 4 (nothing releases them)", tid, h)
		}
	}
	// The second repetition finds the slots held: nothing reserved.
	if set1 := window(t, a, 1, ActionSet); set1.Reserves() != 0 {
		t.Errorf("set, repetition 1: %d reserved", set1.Reserves())
	}
}

// TestFixtureDelve checks the accounting of a recorded Delve session (Go
// target) against what pkg/proc/native does: every change is a
// read-modify-write of DR0-DR3, DR6 and DR7 on every thread.
func TestFixtureDelve(t *testing.T) {
	a, tids := loadFixture(t, "dlv-threads1.strace")
	n := len(tids)
	for _, w := range a.Windows {
		c := w.Counts
		if c.DRWrites%6 != 0 || c.DRReads != c.DRWrites {
			t.Errorf("%+v: %d writes, %d reads; want whole read-modify-writes of six", w.Mark, c.DRWrites, c.DRReads)
		}
		if c.Policy["all"] != 6*c.Changes {
			t.Errorf("%+v: write-all planned %d for %d changes", w.Mark, c.Policy["all"], c.Changes)
		}
	}
	set := window(t, a, 0, ActionSet)
	// The first read-modify-write on a fresh thread writes DR0-DR3: four
	// slots reserved on every thread, for one watchpoint.
	if set.Reserves() != 4*n {
		t.Errorf("set: %d reserved on %d threads, want 4 each", set.Reserves(), n)
	}
	for _, tid := range tids {
		if set.DR7ByThread[tid] < 1 {
			t.Errorf("set: no DR7 write on thread %d", tid)
		}
		if h := a.Windows[0].Held[tid]; h != 4 {
			t.Errorf("thread %d holds %d slots after set, want 4", tid, h)
		}
	}
	// Clearing four watchpoints is four read-modify-writes per thread,
	// each disabling one slot.
	clr := window(t, a, 0, ActionClear)
	if clr.DRWrites != 4*6*n || clr.Outcomes[Disabled] != 4*n {
		t.Errorf("clear: %d writes, outcomes %v; want %d writes and %d disabled", clr.DRWrites, clr.Outcomes, 24*n, 4*n)
	}
}
