// Package alloc models hardware-breakpoint slot reservation with Linux's
// admission rules (kernel/events/hw_breakpoint.c, 6.x) behind several
// synchronisation strategies.
//
// A breakpoint is bound to a task on every CPU (Task >= 0, CPU == AnyCPU), to
// a task on one CPU (Task >= 0, CPU >= 0) or to a CPU alone (Task == NoTask,
// CPU >= 0). Strategies differ only in how they synchronise; the admission
// arithmetic is shared.
package alloc

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"bpbench/internal/enum"
)

// NoTask is Request.Task of a CPU-bound breakpoint.
const NoTask = -1

// AnyCPU is Request.CPU of a task breakpoint that follows its task on every CPU.
const AnyCPU = -1

// MaxSlots is the largest pool size (Config.Slots, Config.InstSlots) any
// strategy can represent.
const MaxSlots = 16

// Kind says which register pool a breakpoint draws from.
type Kind uint8

const (
	// Data is a data (watchpoint) breakpoint.
	Data Kind = iota
	// Inst is an instruction (execution) breakpoint.
	Inst
	numKinds
)

// kindNames are the names of the Kind values, for String.
var kindNames = [...]string{Data: "data", Inst: "inst"}

// String returns "data" or "inst".
func (k Kind) String() string { return enum.Name("Kind", kindNames[:], k) }

// Request asks for one breakpoint slot.
type Request struct {
	Task int  // task id >= 0, or NoTask for a CPU-bound breakpoint
	CPU  int  // CPU in [0, Config.CPUs), or AnyCPU for a task on every CPU
	Kind Kind // Data or Inst
}

// String describes the request's target, e.g. "task=3/cpu=any/data".
func (r Request) String() string {
	t := "none"
	if r.Task != NoTask {
		t = fmt.Sprint(r.Task)
	}
	c := "any"
	if r.CPU != AnyCPU {
		c = fmt.Sprint(r.CPU)
	}
	return fmt.Sprintf("task=%s/cpu=%s/%s", t, c, r.Kind)
}

// IsCPUBound reports whether the request is for a CPU-bound breakpoint.
func (r Request) IsCPUBound() bool { return r.Task == NoTask }

// Config describes the simulated machine.
type Config struct {
	CPUs      int // simulated CPUs, >= 1
	Slots     int // registers per CPU for data (and, on x86, instructions too)
	InstSlots int // 0: instructions share the data pool (x86); > 0: separate pool (arm64, powerpc)
}

// X86 returns the x86 configuration with the given number of CPUs: four
// registers shared by data and instruction breakpoints.
func X86(cpus int) Config { return Config{CPUs: cpus, Slots: 4} }

// Validate reports a Config the strategies cannot model, wrapping ErrInvalid.
func (c Config) Validate() error {
	switch {
	case c.CPUs < 1:
		return fmt.Errorf("%w: Config.CPUs = %d, need >= 1", ErrInvalid, c.CPUs)
	case c.CPUs > MaxCPUs:
		return fmt.Errorf("%w: Config.CPUs = %d, at most %d supported", ErrInvalid, c.CPUs, MaxCPUs)
	case c.Slots < 1:
		return fmt.Errorf("%w: Config.Slots = %d, need >= 1", ErrInvalid, c.Slots)
	case c.Slots > MaxSlots:
		return fmt.Errorf("%w: Config.Slots = %d, at most %d supported", ErrInvalid, c.Slots, MaxSlots)
	case c.InstSlots < 0:
		return fmt.Errorf("%w: Config.InstSlots = %d, need >= 0 (0 shares the data pool)", ErrInvalid, c.InstSlots)
	case c.InstSlots > MaxSlots:
		return fmt.Errorf("%w: Config.InstSlots = %d, at most %d supported", ErrInvalid, c.InstSlots, MaxSlots)
	}
	return nil
}

// MaxCPUs is the largest Config.CPUs supported.
const MaxCPUs = 4096

// Pool returns the pool a kind draws from: Data for both kinds when
// instructions share the data pool.
func (c Config) Pool(k Kind) Kind {
	if k == Inst && c.InstSlots > 0 {
		return Inst
	}
	return Data
}

// PoolSize returns the number of registers in kind k's pool.
func (c Config) PoolSize(k Kind) int {
	if c.Pool(k) == Inst {
		return c.InstSlots
	}
	return c.Slots
}

// ValidateRequest reports a request that no rule can judge, wrapping ErrInvalid.
func (c Config) ValidateRequest(r Request) error {
	switch {
	case r.Kind >= numKinds:
		return fmt.Errorf("%w: %v: unknown Kind %d (want Data or Inst)", ErrInvalid, r, uint8(r.Kind))
	case r.Task < NoTask:
		return fmt.Errorf("%w: Task = %d: negative task id (NoTask = -1 for CPU-bound)", ErrInvalid, r.Task)
	case r.Task == NoTask && r.CPU == AnyCPU:
		return fmt.Errorf("%w: %v: a CPU-bound breakpoint (NoTask) needs a CPU, not AnyCPU", ErrInvalid, r)
	case r.CPU < AnyCPU || r.CPU >= c.CPUs:
		return fmt.Errorf("%w: CPU = %d out of range [0, %d) (or AnyCPU = -1)", ErrInvalid, r.CPU, c.CPUs)
	}
	return nil
}

// Slot is a held reservation. It is a small comparable value.
//
// A strategy builds its slots with NewSlot and must guarantee, for every
// slot it hands out and until that slot is released:
//
//   - Request() is the request exactly as reserved (after validation, so
//     Release can find the target again from the slot alone);
//   - Index() is a register number, 0 <= Index() < the pool size
//     (Config.PoolSize of the request's Kind), unique among the live slots
//     of the same target and pool that can be active on the same CPU (the
//     same CPU for CPU-bound slots; the same task, on every CPU or on a
//     common one, for task slots), and the lowest number free at the moment
//     of the reservation; it is NoIndex only in the corner NoIndex
//     describes;
//   - Gen() is non-zero, and differs from the Gen of every earlier slot
//     that had the same request and index, so a double or stale Release
//     (of a slot whose index a later reservation reuses) is told apart from
//     the current holder's and returns ErrNotReserved.
//
// bpbench/alloc/alloctest checks all of this.
type Slot struct {
	req   Request
	index int32
	gen   uint32 // distinguishes reuse of the same index; 0 is never live
}

// Index returns the register number on the slot's target (the task for task
// breakpoints, the CPU for CPU-bound ones): unique among live slots of that
// target and pool that can be active on the same CPU, 0 <= Index < pool size,
// lowest free first. It is NoIndex in one corner, see NoIndex.
func (s Slot) Index() int {
	if s.index < 0 {
		return NoIndex
	}
	return int(s.index)
}

// NoIndex is Slot.Index of an admitted all-CPU task breakpoint for which no
// register number is free on every CPU. Admission follows the kernel's rules
// exactly, and they can admit it: a task whose one-CPU breakpoints sit on
// different registers on different CPUs (say DR0 on CPU 1 and DR1 on CPU 0,
// with two registers) still has a register free on each CPU, but not the same
// one. Linux has no such problem because it picks the register per CPU when
// the task is scheduled in (arch_install_hw_breakpoint); a register writer
// given a NoIndex slot must do the same. Strategies never renumber live
// slots, so this is the only case without a fixed index.
const NoIndex = -1

// Request returns the request the slot was reserved for.
func (s Slot) Request() Request { return s.req }

// Valid reports whether s came from a successful Reserve (the zero Slot is not).
func (s Slot) Valid() bool { return s.gen != 0 }

// NewSlot builds the Slot a strategy returns from Reserve for req, with
// register index and generation gen, which must be non-zero; see Slot for
// what the three must satisfy. Any negative index reads back as NoIndex
// from Index, but distinct negative values keep the Slots distinct, so a
// strategy can number its NoIndex slots -1, -2, ... and tell them apart.
// Strategies outside this package need nothing else: a Slot is compared
// by value, so a strategy can key its own tables by Slot or by
// (Request(), Index(), Gen()). Callers get slots from Reserve.
func NewSlot(req Request, index int, gen uint32) Slot {
	return Slot{req: req, index: int32(index), gen: gen}
}

// Gen returns the slot's generation number, which strategies use to detect
// a release of a slot no longer held.
func (s Slot) Gen() uint32 { return s.gen }

// Allocator reserves breakpoint slots under Linux's admission rules.
//
// An implementation must be safe for concurrent use, must admit exactly
// what the rules of kernel/events/hw_breakpoint.c admit (a strategy whose
// concurrent reservations can race may refuse more, but must then count
// those refusals through SpuriousRefusals; it may never admit more), must
// hand out slots as Slot describes, and must never panic on a Request or
// Slot, however malformed. bpbench/alloc/alloctest.Run checks all of this.
type Allocator interface {
	// Reserve admits the request or returns an error wrapping ErrNoSlot
	// (the rules refuse it) or ErrInvalid (the request is malformed).
	// A refusal should not allocate: it is the hot path under contention.
	Reserve(Request) (Slot, error)
	// Release returns a slot; ErrNotReserved for a slot not currently held
	// (the zero Slot, a double or stale release, a slot of another
	// allocator), without changing what is held.
	Release(Slot) error
	// InUse reports whether any slot is held (the kernel's hw_breakpoint_is_used).
	InUse() bool
}

// Sentinel errors; test with errors.Is.
var (
	ErrNoSlot      = errors.New("no breakpoint slot available")
	ErrNotReserved = errors.New("slot not reserved")
	ErrInvalid     = errors.New("invalid breakpoint request")
	ErrUnknown     = errors.New("unknown strategy")
	// ErrDuplicate is wrapped by Register for a name already registered.
	ErrDuplicate = errors.New("strategy already registered")
	// ErrBadName is wrapped by Register for a name that cannot name a
	// strategy: empty, or with characters that break test, benchmark and
	// command-line names (space, '/', '=', ',').
	ErrBadName = errors.New("invalid strategy name")
)

// SpuriousRefusals is implemented by strategies that can refuse a
// reservation some serial order would have admitted (tentative holds that
// race); it returns how many times that happened. The count must grow by
// at least one for every such refusal: alloctest's stress test tells them
// from the rules' refusals by it, and holds a strategy whose count did not
// move to refusing only what the rules refuse.
type SpuriousRefusals interface {
	SpuriousRefusals() uint64
}

type constructor func(Config) (Allocator, error)

var (
	regMu    sync.Mutex
	registry = map[string]constructor{}
)

// Register adds a strategy under name, so that it appears in Strategies
// and New (and so in every command and benchmark that takes a strategy
// name). It is meant to be called from the init function of the package
// that implements the strategy, like database/sql.Register; it is safe to
// call at any time from any goroutine. New validates the Config before
// calling f, so f only sees valid ones. The error wraps ErrBadName for an
// empty or unusable name, ErrDuplicate for a name already taken, and
// ErrInvalid for a nil f.
func Register(name string, f func(Config) (Allocator, error)) error {
	switch {
	case name == "":
		return fmt.Errorf("alloc.Register: %w: the name is empty", ErrBadName)
	case strings.ContainsAny(name, " \t\n/=,"):
		return fmt.Errorf("alloc.Register(%q): %w: no spaces, '/', '=' or ','", name, ErrBadName)
	case f == nil:
		return fmt.Errorf("alloc.Register(%q): %w: nil constructor", name, ErrInvalid)
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		return fmt.Errorf("alloc.Register(%q): %w", name, ErrDuplicate)
	}
	registry[name] = f
	return nil
}

// register is Register for the built-in strategies' init functions, where
// an error is this package's own bug.
func register(name string, c constructor) {
	if err := Register(name, c); err != nil {
		panic(err)
	}
}

// Strategies returns every registered strategy name, sorted.
func Strategies() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns an allocator of the named strategy for cfg.
func New(strategy string, cfg Config) (Allocator, error) {
	regMu.Lock()
	c, ok := registry[strategy]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (have %v)", ErrUnknown, strategy, Strategies())
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return c(cfg)
}
