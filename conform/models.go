package conform

import (
	"errors"
	"fmt"

	"bpbench/alloc"
	"bpbench/hwregs"
)

// live is one breakpoint the kernel holds in the sequence.
type live struct {
	// op is the position of the open that created it.
	op  int
	req alloc.Request
	// ev is the kernel's breakpoint (nil when a recorded sequence is
	// replayed).
	ev    *hwregs.PerfEvent
	slots []alloc.Slot // per strategy; zero Slot where it refused
}

func (l *live) String() string { return l.req.String() }

// models is every strategy under check, following the kernel's answers op
// by op: the live lockstep and the replay of a recorded sequence share it,
// so both judge the model by the same rules.
type models struct {
	cfg    alloc.Config
	names  []string
	as     []alloc.Allocator
	agree  []Agreement
	maxDiv int
	// held is what the kernel holds, in order of admission.
	held []*live
}

func newModels(cfg alloc.Config, names []string, maxDiv int) (*models, error) {
	m := &models{cfg: cfg, names: names, maxDiv: maxDiv}
	for _, n := range names {
		a, err := alloc.New(n, cfg)
		if err != nil {
			return nil, err
		}
		m.as = append(m.as, a)
		m.agree = append(m.agree, Agreement{Strategy: n})
	}
	return m, nil
}

// open asks every strategy for req, which the kernel admitted or refused
// at position op, and records who agreed. A strategy that disagrees is
// made to follow the kernel: a slot the kernel refused is given back; one
// the kernel admitted and the strategy refused leaves it in a state the
// kernel is not in, so it is rebuilt from the kernel's live breakpoints.
func (m *models) open(op int, req alloc.Request, ev *hwregs.PerfEvent, admitted bool) error {
	l := &live{op: op, req: req, ev: ev, slots: make([]alloc.Slot, len(m.as))}
	kernel := answer(admitted)
	for i, a := range m.as {
		s, err := a.Reserve(req)
		ok := err == nil
		if err != nil && !errors.Is(err, alloc.ErrNoSlot) {
			return fmt.Errorf("conform: %s: op %d %v: %w", m.names[i], op, req, err)
		}
		ag := &m.agree[i]
		if ok == admitted {
			ag.Agreed++
			if ok {
				l.slots[i] = s
			}
			continue
		}
		ag.Diverged++
		if len(ag.Divergences) < m.maxDiv {
			d := Divergence{Op: op, Request: req.String(), Kernel: kernel, Model: answer(ok)}
			for _, h := range m.held {
				d.Before = append(d.Before, h.String())
			}
			ag.Divergences = append(ag.Divergences, d)
		}
		if ok {
			if err := a.Release(s); err != nil {
				return err
			}
			continue
		}
		fresh, err := alloc.New(m.names[i], m.cfg)
		if err != nil {
			return err
		}
		m.as[i] = fresh
		for _, h := range append(m.held, l) {
			h.slots[i] = alloc.Slot{}
			if s, err := fresh.Reserve(h.req); err == nil {
				h.slots[i] = s
			}
		}
	}
	if admitted {
		m.held = append(m.held, l)
	}
	return nil
}

// close releases, on every strategy that holds it, the j-th live
// breakpoint, which the kernel has closed, and returns it.
func (m *models) close(j int) (*live, error) {
	l := m.held[j]
	m.held = append(m.held[:j], m.held[j+1:]...)
	for i, a := range m.as {
		if l.slots[i].Valid() {
			if err := a.Release(l.slots[i]); err != nil {
				return l, fmt.Errorf("conform: %s: release %v after the kernel closed it: %w", m.names[i], l.req, err)
			}
		}
	}
	return l, nil
}

// answer names an open's outcome as the report does.
func answer(admitted bool) string {
	if admitted {
		return "admitted"
	}
	return "ENOSPC"
}
