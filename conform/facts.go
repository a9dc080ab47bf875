package conform

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"bpbench/alloc"
	"bpbench/hwregs"
)

// Fact is one kernel behaviour the model assumes, probed on the live
// kernel.
type Fact struct {
	// Name identifies the fact, e.g. "slots-per-thread".
	Name string `json:"name"`
	// Question is what was asked, one sentence.
	Question string `json:"question"`
	// Value is the answer: a number, "yes" or "no".
	Value string `json:"value"`
	// Assumed is the answer the model relies on ("" when it only reads the
	// value), so Holds can say whether the model's premise stands.
	Assumed string `json:"assumed,omitempty"`
	// Detail says how the answer was found.
	Detail string `json:"detail"`
	// Error is set when the probe could not run; Value is then "".
	Error string `json:"error,omitempty"`
	// Skipped says why the fact does not apply on this architecture
	// (the ptrace facts are about x86's debug registers); Value is then
	// "".
	Skipped string `json:"skipped,omitempty"`
}

// Holds reports whether the probed answer is the one the model assumes
// (true too when the model assumes nothing about it, or the fact does not
// apply here).
func (f Fact) Holds() bool {
	return f.Error == "" && (f.Skipped != "" || f.Assumed == "" || f.Value == f.Assumed)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// probeFacts probes every fact with thread tid of this process (for perf)
// and, on x86, a ptrace tracee of its own (for the ptrace facts). The
// caller holds the debug-register lock and has probed the pools p.
func probeFacts(ctx context.Context, tid int, p Pools) ([]Fact, error) {
	facts := poolFacts(p)
	f, err := modifyKeeps(tid, p.Data)
	if err != nil {
		return nil, err
	}
	facts = append(facts, f)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return append(facts, ptraceFacts(p.Data)...), nil
}

// modifyKeeps asks whether PERF_EVENT_IOC_MODIFY_ATTRIBUTES keeps the
// slot: a thread holding every slot modifies one, and a CPU-bound
// breakpoint is then still refused; after one of the thread's is closed, a
// CPU-bound one is admitted (so the probe can tell the difference).
func modifyKeeps(tid, slots int) (f Fact, err error) {
	f = Fact{
		Name:     "modify-keeps-slot",
		Question: "Does PERF_EVENT_IOC_MODIFY_ATTRIBUTES keep the breakpoint's slot reserved?",
		Assumed:  "yes",
	}
	evs, err := openN(tid, alloc.Data, slots)
	defer func() { closeAll(evs, &err) }()
	if err != nil {
		return f, err
	}
	if err := evs[0].Modify(dataAttr(len(watched) - 1)); err != nil {
		return f, fmt.Errorf("conform: modify probe: %w", err)
	}
	held, err := cpuBoundFits(0)
	if err != nil {
		return f, err
	}
	if err := evs[len(evs)-1].Close(); err != nil {
		return f, err
	}
	evs = evs[:len(evs)-1]
	freed, err := cpuBoundFits(0)
	if err != nil {
		return f, err
	}
	if !freed {
		f.Error = "a CPU-bound breakpoint was refused even after the thread closed one of its breakpoints: the probe cannot tell"
		return f, nil
	}
	f.Value = yesNo(!held)
	f.Detail = fmt.Sprintf("a thread holding %d breakpoints modified one in place; a CPU-bound breakpoint on CPU 0 was then %s (and admitted once the thread closed one)", slots, admittedWord(held))
	return f, nil
}

// ptraceFacts asks when a ptrace caller's breakpoint holds a slot: after
// writing DR0 alone (DR7 still 0), after enabling it in DR7, and after
// writing DR7 = 0 again. Each is read by counting how many perf
// breakpoints still fit on the tracee's thread.
func ptraceFacts(slots int) []Fact {
	facts := []Fact{
		{Name: "ptrace-dr-write-reserves", Question: "Does writing DR0 through ptrace reserve a slot before DR7 enables it?", Assumed: "yes"},
		{Name: "ptrace-dr7-enable-keeps", Question: "Does enabling the breakpoint in DR7 keep exactly that one slot?", Assumed: "yes"},
		{Name: "ptrace-dr7-zero-releases", Question: "Does writing DR7 = 0 release the slot?"},
	}
	if why := ptraceFactsSkip(); why != "" {
		for i := range facts {
			facts[i].Skipped = why
		}
		return facts
	}
	fail := func(err error) []Fact {
		for i := range facts {
			facts[i].Error = err.Error()
		}
		return facts
	}
	p, err := hwregs.StartPtrace(hwregs.PtraceOptions{Threads: 1, CPU: hwregs.NoPin})
	if err != nil {
		return fail(fmt.Errorf("starting a tracee: %w", err))
	}
	defer p.Close()
	tid := p.Tids()[0]
	addr := p.Hello().VarAddr(0, 0)
	t := hwregs.Target{Task: 0}
	fits := make([]int, 3)
	step := func(reg int, val uint64) func() error {
		return func() error { return p.WriteDR(t, reg, val) }
	}
	dr7 := hwregs.DR7(0).WithSlot(0, hwregs.Attr{Addr: addr, Len: 8, Type: hwregs.Write})
	for i, write := range []func() error{step(0, addr), step(hwregs.RegDR7, uint64(dr7)), step(hwregs.RegDR7, 0)} {
		var werr error
		if err := p.Do(func() { werr = write() }); err != nil {
			return fail(err)
		}
		if werr != nil {
			return fail(werr)
		}
		if fits[i], err = fill(tid, -1, alloc.Data, slots); err != nil {
			return fail(err)
		}
	}
	facts[0].Value = yesNo(fits[0] == slots-1)
	facts[0].Detail = fmt.Sprintf("after POKEUSER DR0 with DR7 = 0, %d of %d perf breakpoints fit on the tracee thread", fits[0], slots)
	facts[1].Value = yesNo(fits[1] == fits[0])
	facts[1].Detail = fmt.Sprintf("after enabling slot 0 in DR7, %d fit", fits[1])
	facts[2].Value = yesNo(fits[2] == slots)
	facts[2].Detail = fmt.Sprintf("after DR7 = 0, %d fit", fits[2])
	if fits[2] < slots {
		facts[2].Detail += ": the breakpoint is disabled, not unregistered, and keeps its slot"
	}
	return facts
}

func admittedWord(ok bool) string {
	if ok {
		return "admitted"
	}
	return "refused (ENOSPC)"
}

// ptraceFactsSkip says why the ptrace facts do not apply here, or "":
// they write x86's DR0 and DR7 in the tracee's struct user
// (PTRACE_POKEUSER at u_debugreg), which other architectures do not have
// (arm64's debug registers go through PTRACE_SETREGSET with
// NT_ARM_HW_BREAK and NT_ARM_HW_WATCH, which bpbench does not drive).
func ptraceFactsSkip() string {
	if runtime.GOARCH == "amd64" {
		return ""
	}
	return "x86 only: the probe writes DR0 and DR7 through PTRACE_POKEUSER, which " + runtime.GOARCH + " does not have"
}

// cpuBoundFits reports whether a CPU-bound data breakpoint on cpu is
// admitted now (and closes it).
func cpuBoundFits(cpu int) (bool, error) {
	n, err := fill(-1, cpu, alloc.Data, 1)
	return n == 1, err
}

// openN opens n breakpoints of kind k on thread tid; all must fit.
func openN(tid int, k alloc.Kind, n int) ([]*hwregs.PerfEvent, error) {
	var evs []*hwregs.PerfEvent
	for i := 0; i < n; i++ {
		e, err := hwregs.OpenPerf(attrOf(k, i), tid, -1)
		if _, cerr := classify(err); cerr != nil {
			return evs, cerr
		}
		if err != nil {
			return evs, fmt.Errorf("conform: %s breakpoint %d of %d on a thread: %w", k, i+1, n, err)
		}
		evs = append(evs, e)
	}
	return evs, nil
}

func closeAll(evs []*hwregs.PerfEvent, err *error) {
	for _, e := range evs {
		if cerr := e.Close(); cerr != nil && *err == nil && !errors.Is(cerr, alloc.ErrInvalid) {
			*err = cerr
		}
	}
}
