package schedsim

import (
	"fmt"
	"math/rand/v2"
)

// Config is one simulated machine and workload.
type Config struct {
	Policy InstallPolicy
	CPUs   int // 1 to 256 in the experiment; any >= 1 here
	Tasks  int // >= 1
	// Debugged is how many of the tasks hold breakpoints (each 1 to 4, at
	// addresses drawn from a pool of AddrPool virtual addresses).
	Debugged int
	Seed     int64
	// SwitchProb is the chance that an event is a context switch on its
	// CPU rather than an access by the running task (default 0.2).
	SwitchProb float64
	// MigrateProb is the chance that a task switched out is queued on a
	// random CPU rather than its own (default 0.1).
	MigrateProb float64
	// AddrPool is the number of distinct virtual addresses breakpoints and
	// accesses use (default 64). Tasks live in their own address spaces,
	// so the same address in two tasks is different memory.
	AddrPool int
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.SwitchProb == 0 {
		c.SwitchProb = 0.2
	}
	if c.MigrateProb == 0 {
		c.MigrateProb = 0.1
	}
	if c.AddrPool == 0 {
		c.AddrPool = 64
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Policy >= numInstallPolicies:
		return fmt.Errorf("%w: Config.Policy = %v", ErrInvalid, c.Policy)
	case c.CPUs < 1:
		return fmt.Errorf("%w: Config.CPUs = %d, want >= 1", ErrInvalid, c.CPUs)
	case c.Tasks < 1:
		return fmt.Errorf("%w: Config.Tasks = %d, want >= 1", ErrInvalid, c.Tasks)
	case c.Debugged < 0 || c.Debugged > c.Tasks:
		return fmt.Errorf("%w: Config.Debugged = %d, want 0..%d (Tasks)", ErrInvalid, c.Debugged, c.Tasks)
	case c.SwitchProb <= 0 || c.SwitchProb > 1:
		return fmt.Errorf("%w: Config.SwitchProb = %g, want (0,1]", ErrInvalid, c.SwitchProb)
	case c.MigrateProb < 0 || c.MigrateProb > 1:
		return fmt.Errorf("%w: Config.MigrateProb = %g, want [0,1]", ErrInvalid, c.MigrateProb)
	case c.AddrPool < NumSlots:
		return fmt.Errorf("%w: Config.AddrPool = %d, want >= %d", ErrInvalid, c.AddrPool, NumSlots)
	}
	return nil
}

// Sim drives a Machine with a random but seeded scheduler: per-CPU FIFO
// run queues, tasks queued on their own CPU when switched out or, with
// MigrateProb, on a random one; each event picks a CPU and either switches
// it to the head of its queue (the idle task when it is empty) or has its
// running task touch an address: a debugged task one of its own watched
// addresses half the time, any task an address of the pool otherwise
// (which may be one that another task, or a leftover register, watches).
type Sim struct {
	cfg    Config
	m      *Machine
	rng    *rand.Rand
	queues []ring
}

// ring is a FIFO of task ids with room for every task.
type ring struct {
	buf        []int32
	head, size int
}

func (r *ring) push(t int) {
	r.buf[(r.head+r.size)%len(r.buf)] = int32(t)
	r.size++
}

func (r *ring) pop() int {
	t := int(r.buf[r.head])
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return t
}

// poolAddr is address j of the pool: 8-byte aligned, nonzero.
func poolAddr(j int) uint64 { return 0x10000 + 8*uint64(j) }

// NewSim builds the tasks (Debugged of them, drawn from the seed, hold 1
// to 4 breakpoints each), starts every CPU on the head of its queue
// (task t is first queued on CPU t mod CPUs) and returns the simulation.
func NewSim(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x73636865647369))
	tasks := make([]Task, cfg.Tasks)
	// The debugged tasks are a random subset, so that they are not
	// neighbours in every run queue.
	for _, t := range rng.Perm(cfg.Tasks)[:cfg.Debugged] {
		k := 1 + rng.IntN(NumSlots)
		perm := rng.Perm(cfg.AddrPool)[:k]
		for _, j := range perm {
			tasks[t].Watch = append(tasks[t].Watch, poolAddr(j))
		}
	}
	m, err := NewMachine(cfg.CPUs, tasks, cfg.Policy)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, m: m, rng: rng, queues: make([]ring, cfg.CPUs)}
	for c := range s.queues {
		s.queues[c].buf = make([]int32, cfg.Tasks)
	}
	for t := 0; t < cfg.Tasks; t++ {
		s.queues[t%cfg.CPUs].push(t)
	}
	for c := range s.queues {
		if s.queues[c].size > 0 {
			m.doSwitch(c, s.queues[c].pop())
		}
	}
	m.st = Stats{} // start-up is not measured
	return s, nil
}

// Machine returns the simulated machine.
func (s *Sim) Machine() *Machine { return s.m }

// Step runs n events.
func (s *Sim) Step(n int) {
	cfg, m, rng := &s.cfg, s.m, s.rng
	for ; n > 0; n-- {
		c := rng.IntN(cfg.CPUs)
		if rng.Float64() < cfg.SwitchProb {
			out := m.cur[c]
			q := &s.queues[c]
			if out != Idle {
				dst := c
				if rng.Float64() < cfg.MigrateProb {
					dst = rng.IntN(cfg.CPUs)
				}
				s.queues[dst].push(out)
			}
			next := Idle
			if q.size > 0 {
				next = q.pop()
			}
			m.doSwitch(c, next)
			continue
		}
		t := m.cur[c]
		if t == Idle {
			continue
		}
		var addr uint64
		if w := m.tasks[t].Watch; len(w) > 0 && rng.IntN(2) == 0 {
			addr = w[rng.IntN(len(w))]
		} else {
			addr = poolAddr(rng.IntN(cfg.AddrPool))
		}
		m.access(c, addr)
	}
}
