package hwregs

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Errors of the simulated backend; test with errors.Is.
var (
	// ErrInjected: a write failed because the test asked for it
	// (Sim.InjectFaults).
	ErrInjected = errors.New("injected debug register write fault")
)

// simShards spreads targets over independently locked shards so goroutines
// programming different targets rarely contend. A power of two.
const simShards = 64

// Sim is an in-memory Backend: one register file per Target, created on the
// first write. It refuses what the kernel's ptrace path refuses
// (arch/x86/kernel/ptrace.c, ptrace_set_debugreg): an address register
// outside user space, DR4/DR5, and a DR7 that enables an I/O breakpoint or a
// slot whose address does not fit its length; a refused write leaves the
// register file unchanged. Sim is safe for concurrent use and does not
// allocate once a target's register file exists.
type Sim struct {
	shards [simShards]simShard

	writes atomic.Uint64
	_      [56]byte // keep the hot counter off the fault-injection line

	faulty  atomic.Bool // fast-path check: is a fault plan armed?
	faultMu sync.Mutex
	skip    int // writes still to let through before failing
	fail    int // writes still to fail
}

type simShard struct {
	mu    sync.Mutex
	files map[Target]*simFile
	_     [40]byte // pad to a cache line against false sharing between shards
}

// simFile is one target's debug registers.
type simFile struct {
	dr  [NumSlots]uint64
	dr6 DR6
	dr7 DR7
}

// NewSim returns a Sim with no register files.
func NewSim() *Sim {
	s := &Sim{}
	for i := range s.shards {
		s.shards[i].files = make(map[Target]*simFile)
	}
	return s
}

// Name returns "sim".
func (s *Sim) Name() string { return "sim" }

// Writes returns the number of WriteDR calls so far, refused ones included.
func (s *Sim) Writes() uint64 { return s.writes.Load() }

func (s *Sim) shard(t Target) *simShard {
	h := uint64(int64(t.Task))*0x9e3779b97f4a7c15 ^ uint64(int64(t.CPU))*0xc2b2ae3d27d4eb4f
	return &s.shards[(h>>32)&(simShards-1)]
}

// lockFile locks sh and returns t's register file in it, nil when t was
// never written. The caller unlocks sh.mu.
func (sh *simShard) lockFile(t Target) *simFile {
	sh.mu.Lock()
	return sh.files[t]
}

// InjectFaults makes WriteDR let the next skip writes through and then fail
// the fail writes after them with ErrInjected, leaving the registers as
// they were; it replaces any earlier plan. It lets tests break a Writer
// operation at each of its writes.
func (s *Sim) InjectFaults(skip, fail int) {
	s.faultMu.Lock()
	s.skip, s.fail = max(skip, 0), max(fail, 0)
	s.faulty.Store(s.fail > 0)
	s.faultMu.Unlock()
}

// injected reports whether this write must fail under the fault plan.
func (s *Sim) injected() bool {
	if !s.faulty.Load() {
		return false
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	switch {
	case s.skip > 0:
		s.skip--
		return false
	case s.fail > 0:
		s.fail--
		s.faulty.Store(s.fail > 0)
		return true
	}
	return false
}

// WriteDR writes one register of t, refusing what the kernel refuses.
func (s *Sim) WriteDR(t Target, reg int, val uint64) error {
	s.writes.Add(1)
	if err := checkReg(reg); err != nil {
		return fmt.Errorf("sim: write %v: %w", t, err)
	}
	if s.injected() {
		return fmt.Errorf("sim: write %v DR%d = %#x: %w", t, reg, val, ErrInjected)
	}
	sh := s.shard(t)
	f := sh.lockFile(t)
	defer sh.mu.Unlock()
	if f == nil {
		f = &simFile{}
		sh.files[t] = f
	}
	switch reg {
	case RegDR6:
		f.dr6 = DR6(val)
		return nil
	case RegDR7:
		d := DR7(val)
		for i := 0; i < NumSlots; i++ {
			if err := kernelAccepts(d, i, f.dr[i]); err != nil {
				return fmt.Errorf("sim: write %v DR7 = %#x: %w", t, val, err)
			}
		}
		f.dr7 = d
		return nil
	}
	// An address register: the kernel re-validates the breakpoint it backs,
	// with the slot's current DR7 fields when it is enabled.
	if err := kernelAccepts(f.dr7, reg, val); err != nil {
		return fmt.Errorf("sim: write %v DR%d = %#x: %w", t, reg, val, err)
	}
	f.dr[reg] = val
	return nil
}

// ReadDR reads one register of t; a target never written reads as zero.
func (s *Sim) ReadDR(t Target, reg int) (uint64, error) {
	if err := checkReg(reg); err != nil {
		return 0, fmt.Errorf("sim: read %v: %w", t, err)
	}
	sh := s.shard(t)
	f := sh.lockFile(t)
	defer sh.mu.Unlock()
	if f == nil {
		return 0, nil
	}
	switch reg {
	case RegDR6:
		return uint64(f.dr6), nil
	case RegDR7:
		return uint64(f.dr7), nil
	}
	return f.dr[reg], nil
}

// Access evaluates DR7 and DR0-DR3 of t against one memory access of size
// bytes at addr, as the CPU does: a data access traps on an enabled Write
// slot if write is set, and on an enabled ReadWrite slot either way, when
// [addr, addr+size) overlaps the watched range; an instruction fetch (exec)
// traps on an enabled Exec slot whose address equals addr. It returns DR6
// with B_i set for every slot that matched (also stored in t's DR6, as the
// kernel's virtual DR6 would be) and whether any did.
func (s *Sim) Access(t Target, addr uint64, size int, write, exec bool) (dr6 DR6, hit bool) {
	sh := s.shard(t)
	f := sh.lockFile(t)
	defer sh.mu.Unlock()
	if f == nil {
		return 0, false
	}
	for i := 0; i < NumSlots; i++ {
		c := f.dr7.Slot(i)
		if !c.Enabled() {
			continue
		}
		var match bool
		switch {
		case exec:
			match = c.Type == Exec && addr == f.dr[i]
		case c.Type == Write && write, c.Type == ReadWrite:
			// The CPU ignores the low address bits covered by LEN, so an
			// overlapping access matches even if it starts below DRi.
			lo, hi := f.dr[i]&^uint64(c.Len-1), f.dr[i]&^uint64(c.Len-1)+uint64(c.Len)
			match = size > 0 && addr < hi && addr+uint64(size) > lo
		}
		if match {
			dr6 |= 1 << i
		}
	}
	if dr6 != 0 {
		f.dr6 = f.dr6&^dr6Slots | dr6
	}
	return dr6, dr6 != 0
}

var _ Backend = (*Sim)(nil)
