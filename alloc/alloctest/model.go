package alloctest

import (
	"fmt"

	"bpbench/alloc"
)

// model is the obviously correct reference: the live breakpoints in a list
// and the formulas of kernel/events/hw_breakpoint.c evaluated by brute
// force, with no cleverness to share bugs with a strategy.
type model struct {
	cfg  alloc.Config
	live []modelBP
}

type modelBP struct {
	r   alloc.Request
	idx int // alloc.NoIndex for an all-CPU breakpoint without a register
}

func runsOn(r alloc.Request, c int) bool { return r.CPU == alloc.AnyCPU || r.CPU == c }

// pinned is pinned_t(c) of task in kind k's pool; for alloc.NoTask it is
// cpu_pinned[c].
func (m *model) pinned(task, c int, k alloc.Kind) int {
	n := 0
	for _, b := range m.live {
		if m.cfg.Pool(b.r.Kind) == m.cfg.Pool(k) && b.r.Task == task && runsOn(b.r, c) {
			n++
		}
	}
	return n
}

// taskSide is the task-side term of r's rule on CPU c: max over tasks of
// pinned_t(c) for a CPU-bound request, the requesting task's own otherwise.
func (m *model) taskSide(r alloc.Request, c int) int {
	if !r.IsCPUBound() {
		return m.pinned(r.Task, c, r.Kind)
	}
	most := 0
	for _, b := range m.live {
		if b.r.Task != alloc.NoTask && m.cfg.Pool(b.r.Kind) == m.cfg.Pool(r.Kind) {
			most = max(most, m.pinned(b.r.Task, c, r.Kind))
		}
	}
	return most
}

// rule names the admission formula that judges r (anchors.md, "Linux
// admission rules").
func rule(r alloc.Request) string {
	switch {
	case r.IsCPUBound():
		return "cpu-bound rule: cpu_pinned[c] + max_t pinned_t(c) + 1 <= N"
	case r.CPU == alloc.AnyCPU:
		return "task-on-all-CPUs rule: max_c(cpu_pinned[c] + pinned_t(c)) + 1 <= N"
	}
	return "task-on-one-CPU rule: cpu_pinned[c] + pinned_t(c) + 1 <= N"
}

// fits applies r's rule with pool size n on every CPU r runs on, without
// allocating: whether it admits r, and the figures of the busiest CPU.
func (m *model) fits(r alloc.Request, n int) (ok bool, cpu, cpuPinned, taskSide int) {
	worst := -1
	for c := 0; c < m.cfg.CPUs; c++ {
		if !runsOn(r, c) {
			continue
		}
		cp, tp := m.pinned(alloc.NoTask, c, r.Kind), m.taskSide(r, c)
		if cp+tp > worst {
			worst, cpu, cpuPinned, taskSide = cp+tp, c, cp, tp
		}
	}
	return worst+1 <= n, cpu, cpuPinned, taskSide
}

// admit judges r: whether its rule admits it, and why.
func (m *model) admit(r alloc.Request) (bool, string) {
	n := m.cfg.PoolSize(r.Kind)
	ok, c, cp, tp := m.fits(r, n)
	return ok, fmt.Sprintf("%s; on CPU %d: cpu_pinned %d + task side %d + 1 vs N = %d", rule(r), c, cp, tp, n)
}

// index is the lowest register no live breakpoint of the same target that
// can run on a common CPU uses, or alloc.NoIndex.
func (m *model) index(r alloc.Request) int {
	n := m.cfg.PoolSize(r.Kind)
	for i := 0; i < n; i++ {
		if !m.indexUsed(r, i) {
			return i
		}
	}
	return alloc.NoIndex
}

func (m *model) indexUsed(r alloc.Request, i int) bool {
	for _, b := range m.live {
		if b.idx == i && m.cfg.Pool(b.r.Kind) == m.cfg.Pool(r.Kind) && sameTarget(b.r, r) {
			return true
		}
	}
	return false
}

// sameTarget reports whether a and b compete for register numbers: the
// same CPU for CPU-bound breakpoints, the same task on a common CPU for
// task ones.
func sameTarget(a, b alloc.Request) bool {
	if a.Task != b.Task {
		return false
	}
	if a.IsCPUBound() {
		return a.CPU == b.CPU
	}
	return a.CPU == alloc.AnyCPU || b.CPU == alloc.AnyCPU || a.CPU == b.CPU
}

func (m *model) add(r alloc.Request, idx int) { m.live = append(m.live, modelBP{r, idx}) }

func (m *model) remove(i int) { m.live = append(m.live[:i], m.live[i+1:]...) }

// violation checks a set of held slots after the fact: every rule must
// hold on every CPU, every index must be in its pool and unique for its
// target. It returns "" when the state is one the rules allow.
func violation(cfg alloc.Config, held []alloc.Slot) string {
	m := &model{cfg: cfg}
	for _, s := range held {
		m.add(s.Request(), s.Index())
	}
	for _, k := range []alloc.Kind{alloc.Data, alloc.Inst} {
		n := cfg.PoolSize(k)
		for c := 0; c < cfg.CPUs; c++ {
			probe := alloc.Request{Task: alloc.NoTask, CPU: c, Kind: k}
			if cp, tp := m.pinned(alloc.NoTask, c, k), m.taskSide(probe, c); cp+tp > n {
				return fmt.Sprintf("%s pool on CPU %d: cpu_pinned %d + max_t pinned_t %d > N = %d", cfg.Pool(k), c, cp, tp, n)
			}
		}
	}
	for i, a := range held {
		ai := a.Index()
		if ai == alloc.NoIndex {
			continue
		}
		if ai < 0 || ai >= cfg.PoolSize(a.Request().Kind) {
			return fmt.Sprintf("%v: index %d outside its pool of %d", a.Request(), ai, cfg.PoolSize(a.Request().Kind))
		}
		for _, b := range held[:i] {
			if b.Index() == ai && cfg.Pool(b.Request().Kind) == cfg.Pool(a.Request().Kind) && sameTarget(a.Request(), b.Request()) {
				return fmt.Sprintf("index %d held twice on one target: %v and %v", ai, a.Request(), b.Request())
			}
		}
	}
	return ""
}
