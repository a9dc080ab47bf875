package debuggers

import (
	"fmt"
	"sort"
)

// Counts is what one window of a trace holds: the debugger's ptrace
// requests (counted) and what the kernel made of its debug-register
// writes (inferred by Kernel) and what write policies would have written
// for the same register states (Replay).
type Counts struct {
	// Ptrace counts every ptrace request; ByRequest by kind ("pokeuser").
	Ptrace    int
	ByRequest map[string]int
	// DRWrites and DRReads count POKEUSER and PEEKUSER requests on a
	// debug register; DR7Writes and DR6Writes are among DRWrites.
	DRWrites, DRReads    int
	DR7Writes, DR6Writes int
	// Redundant counts successful writes of the value already held.
	Redundant int
	// Outcomes counts the kernel's inferred outcomes, per slot touched.
	Outcomes map[Outcome]int
	// Changes counts thread register states changed (Replay's runs).
	Changes int
	// Policy counts the writes each policy would make for those changes.
	Policy map[string]int
	// DR7ByThread counts DR7 writes per target thread.
	DR7ByThread map[int]int
}

func newCounts() Counts {
	return Counts{ByRequest: map[string]int{}, Outcomes: map[Outcome]int{}, Policy: map[string]int{}, DR7ByThread: map[int]int{}}
}

// Reserves is the number of slots reserved.
func (c Counts) Reserves() int { return c.Outcomes[Reserved] }

// Modifies is the number of in-place modifications of held slots.
func (c Counts) Modifies() int {
	n := 0
	for o, k := range c.Outcomes {
		if o.Modifies() {
			n += k
		}
	}
	return n
}

// Window is the part of a trace between one marker and the next.
type Window struct {
	Mark   Mark
	Counts Counts
	// Held is, per target thread written so far, the slots the kernel
	// model says it holds at the window's end.
	Held map[int]int
}

// Accounting is a whole trace accounted: its windows in order, and the
// kernel model after the last event.
type Accounting struct {
	Windows []Window
	// Setup counts what came before the first marker (attach and release
	// of the target).
	Setup  Counts
	Kernel *Kernel
	// Touched counts, per thread, the ptrace requests the debugger made on
	// it over the whole trace: a thread of the target it never touched is
	// one it did not attach to (a thread the Go runtime started while the
	// debugger was attaching, say), and no watchpoint is armed there.
	Touched map[int]int
}

// Account splits events into windows at the markers and counts each.
// Every event goes through the kernel model and the replay, the ones
// before the first marker too, so that the state each window starts from
// is the one the debugger left. Markers must have increasing Seq.
func Account(events []Event, policies []NamedPolicy) (*Accounting, error) {
	a := &Accounting{Setup: newCounts(), Kernel: NewKernel(), Touched: map[int]int{}}
	rp := NewReplay(policies)
	cur := &a.Setup
	closeWindow := func() {
		rp.Flush()
		w, ch := rp.Take()
		cur.Changes += ch
		for k, v := range w {
			cur.Policy[k] += v
		}
		if n := len(a.Windows); n > 0 {
			held := map[int]int{}
			for _, tid := range a.Kernel.Threads() {
				held[tid] = a.Kernel.Held(tid)
			}
			a.Windows[n-1].Held = held
		}
	}
	var outs []SlotOutcome
	lastSeq := -1
	for _, e := range events {
		if e.Mark != nil {
			if e.Mark.Seq <= lastSeq {
				return nil, fmt.Errorf("%w: line %d: marker %d after marker %d", ErrTrace, e.Mark.Line, e.Mark.Seq, lastSeq)
			}
			lastSeq = e.Mark.Seq
			closeWindow()
			a.Windows = append(a.Windows, Window{Mark: *e.Mark, Counts: newCounts()})
			cur = &a.Windows[len(a.Windows)-1].Counts
			continue
		}
		c := *e.Call
		a.Touched[c.Tid]++
		cur.Ptrace++
		cur.ByRequest[RequestName(c.Req)]++
		rp.Call(c)
		switch {
		case c.DRRead():
			cur.DRReads++
		case c.DRWrite():
			cur.DRWrites++
			reg := c.DR()
			switch reg {
			case 7:
				cur.DR7Writes++
				cur.DR7ByThread[c.Tid]++
			case 6:
				cur.DR6Writes++
			}
			var changed bool
			outs, changed = a.Kernel.Write(outs[:0], c.Tid, reg, c.Data, c.OK())
			if c.OK() && !changed {
				cur.Redundant++
			}
			for _, o := range outs {
				cur.Outcomes[o.Outcome]++
			}
		}
	}
	closeWindow()
	return a, nil
}

// ByAction groups the windows of the measured repetitions (Rep >= 1; 0
// is the warm-up) by action, one Counts per repetition in order.
func (a *Accounting) ByAction() map[string][]Counts {
	out := map[string][]Counts{}
	for _, w := range a.Windows {
		if w.Mark.Rep < 1 {
			continue
		}
		out[w.Mark.Action] = append(out[w.Mark.Action], w.Counts)
	}
	return out
}

// Warmup returns the windows of the warm-up repetition (Rep 0) by action.
func (a *Accounting) Warmup() map[string]Counts {
	out := map[string]Counts{}
	for _, w := range a.Windows {
		if w.Mark.Rep == 0 {
			out[w.Mark.Action] = w.Counts
		}
	}
	return out
}

// Requests returns the request kinds seen anywhere in cs, sorted.
func Requests(cs []Counts) []string {
	seen := map[string]bool{}
	for _, c := range cs {
		for k := range c.ByRequest {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
