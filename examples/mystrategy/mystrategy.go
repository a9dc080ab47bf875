// Package mystrategy is a worked example of a breakpoint-slot strategy
// written outside package alloc, against its public API only: one global
// lock over a small table of counts. Importing it registers the strategy
// as "example-global", so every bpbench command and benchmark that takes
// a strategy name can run it:
//
//	import _ "bpbench/examples/mystrategy"
package mystrategy

import (
	"fmt"
	"sync"

	"bpbench/alloc"
)

// Name is the strategy's registered name.
const Name = "example-global"

func init() {
	if err := alloc.Register(Name, New); err != nil {
		panic(err)
	}
}

// Refusals are built once: under contention a refusal is the hot path,
// and alloc's contract asks that it not allocate.
var (
	errNoSlot      = fmt.Errorf("%s: %w", Name, alloc.ErrNoSlot)
	errNotReserved = fmt.Errorf("%s: %w", Name, alloc.ErrNotReserved)
)

// pool is one register pool's table: who holds which register.
type pool struct {
	n int
	// cpuBound[c][i] is the generation of CPU c's CPU-bound breakpoint
	// in register i, 0 if free.
	cpuBound [][]uint32
	// tasks holds each task's breakpoints in this pool.
	tasks map[int]*task
}

// task is one task's breakpoints: all-CPU ones, and one-CPU ones per CPU.
type task struct {
	all   []uint32   // [i]: generation of the all-CPU breakpoint in register i
	onCPU [][]uint32 // [c][i]: the same for a breakpoint bound to CPU c
	ov    []uint32   // all-CPU breakpoints without a common register (alloc.NoIndex)
	live  int
}

// global is the allocator: one mutex around everything. Simple and
// obviously correct; it serialises all reservations, which is what the
// benchmarks will show against the built-in strategies.
type global struct {
	cfg   alloc.Config
	mu    sync.Mutex
	gen   uint32
	pools [2]*pool
}

// New returns the strategy for cfg, which alloc.New has validated.
func New(cfg alloc.Config) (alloc.Allocator, error) {
	if err := cfg.Validate(); err != nil { // when called directly
		return nil, err
	}
	g := &global{cfg: cfg}
	for _, k := range []alloc.Kind{alloc.Data, alloc.Inst} {
		if p := cfg.Pool(k); g.pools[p] == nil {
			g.pools[p] = &pool{n: cfg.PoolSize(k), cpuBound: table(cfg.CPUs, cfg.PoolSize(k)), tasks: map[int]*task{}}
		}
	}
	return g, nil
}

func table(rows, cols int) [][]uint32 {
	t := make([][]uint32, rows)
	for i := range t {
		t[i] = make([]uint32, cols)
	}
	return t
}

func count(regs []uint32) int {
	n := 0
	for _, g := range regs {
		if g != 0 {
			n++
		}
	}
	return n
}

// pinned is the kernel's pinned_t(c): t's breakpoints that run on CPU c.
func (t *task) pinned(c int) int { return count(t.all) + count(t.ov) + count(t.onCPU[c]) }

// fits applies Linux's admission rule (kernel/events/hw_breakpoint.c) on
// every CPU the request runs on: the CPU-bound breakpoints there, the
// task side (the requesting task's own, or for a CPU-bound request the
// busiest task's) and the new one must fit in the pool.
func (p *pool) fits(r alloc.Request, cpus int) bool {
	for c := 0; c < cpus; c++ {
		if r.CPU != alloc.AnyCPU && r.CPU != c {
			continue
		}
		side := 0
		if r.IsCPUBound() {
			for _, t := range p.tasks {
				side = max(side, t.pinned(c))
			}
		} else if t := p.tasks[r.Task]; t != nil {
			side = t.pinned(c)
		}
		if count(p.cpuBound[c])+side+1 > p.n {
			return false
		}
	}
	return true
}

// regs returns the register tables a new breakpoint for r must avoid: the
// ones of its target that can run on a CPU in common with it.
func (p *pool) regs(r alloc.Request, t *task) [][]uint32 {
	switch {
	case r.IsCPUBound():
		return [][]uint32{p.cpuBound[r.CPU]}
	case r.CPU == alloc.AnyCPU:
		return append([][]uint32{t.all}, t.onCPU...)
	}
	return [][]uint32{t.all, t.onCPU[r.CPU]}
}

// cell is where register i of r's target records its holder's generation.
func (p *pool) cell(r alloc.Request, t *task, i int) *uint32 {
	switch {
	case r.IsCPUBound():
		return &p.cpuBound[r.CPU][i]
	case r.CPU == alloc.AnyCPU:
		return &t.all[i]
	}
	return &t.onCPU[r.CPU][i]
}

// lowestFree is the lowest register free in every table, or -1.
func lowestFree(tables [][]uint32, n int) int {
next:
	for i := 0; i < n; i++ {
		for _, t := range tables {
			if t[i] != 0 {
				continue next
			}
		}
		return i
	}
	return -1
}

// Reserve implements alloc.Allocator.
func (g *global) Reserve(r alloc.Request) (alloc.Slot, error) {
	if err := g.cfg.ValidateRequest(r); err != nil {
		return alloc.Slot{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.pools[g.cfg.Pool(r.Kind)]
	if !p.fits(r, g.cfg.CPUs) {
		return alloc.Slot{}, errNoSlot
	}
	var t *task
	if !r.IsCPUBound() {
		if t = p.tasks[r.Task]; t == nil {
			t = &task{all: make([]uint32, p.n), onCPU: table(g.cfg.CPUs, p.n), ov: make([]uint32, alloc.MaxSlots)}
			p.tasks[r.Task] = t
		}
		t.live++
	}
	g.gen++
	if g.gen == 0 { // never hand out generation 0, which marks the zero Slot
		g.gen++
	}
	i := lowestFree(p.regs(r, t), p.n)
	if i < 0 { // the one corner alloc.NoIndex describes
		j := lowestFree([][]uint32{t.ov}, len(t.ov))
		t.ov[j] = g.gen
		return alloc.NewSlot(r, -1-j, g.gen), nil
	}
	*p.cell(r, t, i) = g.gen
	return alloc.NewSlot(r, i, g.gen), nil
}

// Release implements alloc.Allocator.
func (g *global) Release(s alloc.Slot) error {
	r := s.Request()
	if !s.Valid() || g.cfg.ValidateRequest(r) != nil {
		return errNotReserved
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.pools[g.cfg.Pool(r.Kind)]
	t, i := p.tasks[r.Task], s.Index()
	var cell *uint32
	switch {
	case !r.IsCPUBound() && t == nil:
	case i == alloc.NoIndex && r.CPU == alloc.AnyCPU:
		for j := range t.ov {
			if t.ov[j] == s.Gen() {
				cell = &t.ov[j]
			}
		}
	case i >= 0 && i < p.n:
		cell = p.cell(r, t, i)
	}
	if cell == nil || *cell != s.Gen() {
		return errNotReserved
	}
	*cell = 0
	if t != nil {
		if t.live--; t.live == 0 {
			delete(p.tasks, r.Task)
		}
	}
	return nil
}

// InUse implements alloc.Allocator.
func (g *global) InUse() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.pools {
		if p == nil {
			continue
		}
		if len(p.tasks) > 0 {
			return true
		}
		for _, regs := range p.cpuBound {
			if count(regs) > 0 {
				return true
			}
		}
	}
	return false
}
