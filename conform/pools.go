package conform

import (
	"fmt"
	"runtime"

	"bpbench/alloc"
	"bpbench/hwregs"
)

// Pools is what one thread can hold, probed from the running kernel: the
// model is configured from it rather than from an architecture's
// constants (x86 has 4 registers shared by instruction and data
// breakpoints; arm64 has separate pools of 2 to 16 each, 6 instruction
// breakpoints and 4 data watchpoints on QEMU's max CPU).
type Pools struct {
	// Data is the data watchpoints a thread can hold; Inst the
	// instruction breakpoints.
	Data, Inst int
	// Shared says whether the two draw from one pool (x86), so that a
	// thread holding Data watchpoints is refused an instruction
	// breakpoint.
	Shared bool
	// InstBesideData is how many instruction breakpoints were admitted
	// to a thread already holding Data watchpoints (0 in a shared pool);
	// DataBesideInst the reverse.
	InstBesideData, DataBesideInst int
}

// Config is the model machine these pools describe on cpus CPUs.
func (p Pools) Config(cpus int) alloc.Config {
	c := alloc.Config{CPUs: cpus, Slots: p.Data}
	if !p.Shared {
		c.InstSlots = p.Inst
	}
	return c
}

// String says it in a few words: "4 shared" or "6 inst + 4 data".
func (p Pools) String() string {
	if p.Shared {
		return fmt.Sprintf("%d shared by instruction and data breakpoints", p.Data)
	}
	return fmt.Sprintf("%d instruction + %d data, separate", p.Inst, p.Data)
}

// archShared is whether the architecture's Linux port puts instruction
// and data breakpoints in one pool (CONFIG_HAVE_MIXED_BREAKPOINTS_REGS,
// which x86 selects and arm64 does not), and whether it is known at all:
// the pools fact holds when the probe finds what the port says.
func archShared(goarch string) (shared, known bool) {
	switch goarch {
	case "amd64", "386":
		return true, true
	case "arm64":
		return false, true
	}
	return false, false
}

// attrOf is the breakpoint of kind k conform places: an exec breakpoint
// on instTarget, or a write watchpoint on one of watched (i picks it).
func attrOf(k alloc.Kind, i int) hwregs.Attr {
	if k == alloc.Inst {
		return instAttr()
	}
	return dataAttr(i)
}

// probePools counts what thread tid can hold of each kind, then asks
// whether the kinds share a pool: with Data watchpoints held, is an
// instruction breakpoint refused (and the reverse)?
func probePools(tid int) (Pools, error) {
	var p Pools
	var err error
	if p.Data, err = fill(tid, -1, alloc.Data, alloc.MaxSlots+1); err != nil {
		return p, err
	}
	if p.Inst, err = fill(tid, -1, alloc.Inst, alloc.MaxSlots+1); err != nil {
		return p, err
	}
	switch {
	case p.Data == 0 && p.Inst == 0:
		return p, fmt.Errorf("%w: no breakpoint fits on a thread", ErrUnavailable)
	case p.Data == 0:
		return p, fmt.Errorf("%w: no data watchpoint fits on a thread (%d instruction breakpoints do)", ErrUnavailable, p.Inst)
	case p.Data > alloc.MaxSlots || p.Inst > alloc.MaxSlots:
		return p, fmt.Errorf("%w: a thread holds more than %d breakpoints of a kind (%d data, %d instruction): more than the model represents", ErrUnavailable, alloc.MaxSlots, p.Data, p.Inst)
	}
	if p.InstBesideData, err = besides(tid, alloc.Data, p.Data, alloc.Inst); err != nil {
		return p, err
	}
	if p.DataBesideInst, err = besides(tid, alloc.Inst, p.Inst, alloc.Data); err != nil {
		return p, err
	}
	p.Shared = p.InstBesideData == 0 && p.DataBesideInst == 0
	if !p.Shared && (p.InstBesideData != p.Inst || p.DataBesideInst != p.Data) {
		return p, fmt.Errorf("%w: pools neither shared nor separate: beside %d data watchpoints %d of %d instruction breakpoints fit, beside %d instruction breakpoints %d of %d data watchpoints: the model has no such machine",
			ErrUnavailable, p.Data, p.InstBesideData, p.Inst, p.Inst, p.DataBesideInst, p.Data)
	}
	if p.Shared && p.Data != p.Inst {
		return p, fmt.Errorf("%w: one pool, yet %d data watchpoints and %d instruction breakpoints fit on a thread: the model has no such machine", ErrUnavailable, p.Data, p.Inst)
	}
	return p, nil
}

// besides holds n breakpoints of kind held on tid and counts how many of
// kind then still fit.
func besides(tid int, held alloc.Kind, n int, kind alloc.Kind) (fit int, err error) {
	evs, err := openN(tid, held, n)
	defer func() { closeAll(evs, &err) }()
	if err != nil {
		return 0, err
	}
	return fill(tid, -1, kind, alloc.MaxSlots+1)
}

// poolFacts turns the probe into facts: the counts are read, the sharing
// is what the architecture's port says where it is known.
func poolFacts(p Pools) []Fact {
	shared := Fact{
		Name:     "inst-data-one-pool",
		Question: "Do instruction and data breakpoints share one pool of registers?",
		Value:    yesNo(p.Shared),
		Detail: fmt.Sprintf("with %d data watchpoints on a thread, %d instruction breakpoints were admitted; with %d instruction breakpoints, %d data watchpoints",
			p.Data, p.InstBesideData, p.Inst, p.DataBesideInst),
	}
	if s, known := archShared(runtime.GOARCH); known {
		shared.Assumed = yesNo(s)
		shared.Detail += fmt.Sprintf(" (Linux on %s: %s)", runtime.GOARCH, map[bool]string{true: "one pool, CONFIG_HAVE_MIXED_BREAKPOINTS_REGS", false: "separate pools"}[s])
	}
	return []Fact{{
		Name:     "slots-per-thread",
		Question: "How many data watchpoints can one thread hold?",
		Value:    fmt.Sprint(p.Data),
		Detail:   fmt.Sprintf("perf_event_open of write watchpoints on one thread (cpu = -1) until ENOSPC: %d fit", p.Data),
	}, {
		Name:     "inst-slots-per-thread",
		Question: "How many instruction breakpoints can one thread hold?",
		Value:    fmt.Sprint(p.Inst),
		Detail:   fmt.Sprintf("perf_event_open of exec breakpoints on one thread (cpu = -1) until ENOSPC: %d fit", p.Inst),
	}, shared}
}
