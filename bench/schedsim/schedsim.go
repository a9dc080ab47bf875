// Package schedsim simulates what a kernel does with the x86 debug
// registers at context switches: C CPUs, each with its own four address
// registers and DR7, run T tasks, some of which hold task breakpoints; tasks
// migrate between CPUs and touch their watched addresses. An install
// policy decides which registers are written at each switch-in and how the
// debug exception handler treats a trap, and an oracle checks every access
// against what each task asked for.
//
// The policies are the ones argued over in the 2009 hw_breakpoint review
// ("Re: [Patch 00/11] Hardware Breakpoint interfaces", Alan Stern and K.
// Prasad): write the registers at every switch-in (Eager, the patch's
// arch_install_thread_hw_breakpoint "on the hot path"); write only those
// that differ from a per-CPU mirror (Changed); and lazy switching, which
// leaves a task's registers installed when the next task has none and lets
// the handler recognise a leftover trap by comparing the running task with
// last_debugged_task, kept per CPU (LazyPerCPU, the reviewer's fix) or in
// one global variable (LazyGlobal, the version he showed "won't work right
// on SMP systems").
//
// Addresses are virtual addresses in the tasks' own address spaces, so two
// tasks may use the same address for different memory: a trap on a
// leftover register is a false alarm the handler must not deliver.
package schedsim

import (
	"errors"
	"fmt"

	"bpbench/internal/enum"
)

// ErrInvalid is wrapped by every error about bad input.
var ErrInvalid = errors.New("schedsim: invalid argument")

// NumSlots is the number of debug address registers per CPU (DR0-DR3).
const NumSlots = 4

// Idle is the task id of a CPU's idle task, which has no breakpoints.
const Idle = -1

// InstallPolicy is a debug-register install policy: when the registers are
// written at a context switch.
type InstallPolicy uint8

const (
	// Eager writes, at every switch-in of a task with breakpoints, each
	// address register it uses and DR7; at a switch from such a task to
	// one without, DR7 = 0 (the 2009 patch: __switch_to_xtra runs only
	// when the previous or the next task has TIF_DEBUG).
	Eager InstallPolicy = iota
	// Changed is Eager that skips each register whose per-CPU mirror
	// already holds the value to write.
	Changed
	// LazyPerCPU leaves the registers as they are when switching to a task
	// without breakpoints (so it also never clears them there), writes
	// what differs from the mirror when switching to one with, and records
	// that task as its CPU's last_debugged_task. A trap taken while the
	// running task is not its CPU's last_debugged_task is a leftover: the
	// handler clears DR7 and delivers nothing.
	LazyPerCPU
	// LazyGlobal is LazyPerCPU with one last_debugged_task for all CPUs:
	// a switch-in of a debugged task on any CPU overwrites it, so a real
	// trap on another CPU is taken for a leftover and cleared, and that
	// task's breakpoints are gone until its next switch-in.
	LazyGlobal
	numInstallPolicies
)

// InstallPolicies lists every policy in presentation order.
var InstallPolicies = []InstallPolicy{Eager, Changed, LazyPerCPU, LazyGlobal}

// installPolicyNames are the names of the InstallPolicy values, for String
// and ParseInstallPolicy.
var installPolicyNames = [...]string{Eager: "eager", Changed: "changed", LazyPerCPU: "lazy-percpu", LazyGlobal: "lazy-global"}

// String returns "eager", "changed", "lazy-percpu" or "lazy-global".
func (p InstallPolicy) String() string { return enum.Name("InstallPolicy", installPolicyNames[:], p) }

// ParseInstallPolicy returns the policy named s (as String prints it).
func ParseInstallPolicy(s string) (InstallPolicy, error) {
	if p, ok := enum.Parse[InstallPolicy](installPolicyNames[:], s); ok {
		return p, nil
	}
	return 0, fmt.Errorf("%w: policy %q (want eager, changed, lazy-percpu or lazy-global)", ErrInvalid, s)
}

func (p InstallPolicy) lazy() bool { return p == LazyPerCPU || p == LazyGlobal }

// Task is what one task asked for: up to four write watchpoints, one per
// address register, at distinct nonzero addresses.
type Task struct {
	Watch []uint64
}

func (t *Task) watches(addr uint64) bool {
	for _, a := range t.Watch {
		if a == addr {
			return true
		}
	}
	return false
}

// Stats counts what a Machine did. An op, for the per-op figures, is an
// access the oracle says must trap: a task touching an address it watches.
type Stats struct {
	Switches     uint64 // context switches (idle included)
	Writes       uint64 // debug-register writes, DR0-DR3 and DR7, handler's included
	Exceptions   uint64 // debug exceptions taken (false alarms included)
	FalseAlarms  uint64 // exceptions the handler took for leftovers and cleared
	Accesses     uint64 // accesses to watched-candidate addresses
	Watched      uint64 // accesses that must trap (ops)
	Delivered    uint64 // traps delivered to the running task that asked for them
	Lost         uint64 // accesses that must trap but were not delivered
	Misdelivered uint64 // traps delivered to a task that did not ask for them
}

// Sub returns s - o, field by field.
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		Switches: s.Switches - o.Switches, Writes: s.Writes - o.Writes,
		Exceptions: s.Exceptions - o.Exceptions, FalseAlarms: s.FalseAlarms - o.FalseAlarms,
		Accesses: s.Accesses - o.Accesses, Watched: s.Watched - o.Watched,
		Delivered: s.Delivered - o.Delivered, Lost: s.Lost - o.Lost, Misdelivered: s.Misdelivered - o.Misdelivered,
	}
}

func per(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// WritesPerSwitch is Writes / Switches.
func (s Stats) WritesPerSwitch() float64 { return per(s.Writes, s.Switches) }

// ExceptionsPerSwitch is Exceptions / Switches.
func (s Stats) ExceptionsPerSwitch() float64 { return per(s.Exceptions, s.Switches) }

// LostPerOp is Lost / Watched.
func (s Stats) LostPerOp() float64 { return per(s.Lost, s.Watched) }

// MisdeliveredPerOp is Misdelivered / Watched.
func (s Stats) MisdeliveredPerOp() float64 { return per(s.Misdelivered, s.Watched) }

// cpuRegs is one CPU's debug registers, which are also the mirror the
// policies compare with: the simulation knows exactly what the CPU holds.
type cpuRegs struct {
	dr  [NumSlots]uint64
	dr7 uint8 // enable bit per slot
}

// Machine is C CPUs' debug registers under one policy. It is not safe for
// concurrent use.
type Machine struct {
	pol        InstallPolicy
	tasks      []Task
	cur        []int // running task per CPU, or Idle
	cpu        []int // CPU each task runs on, or -1
	regs       []cpuRegs
	lastPerCPU []int // LazyPerCPU's last_debugged_task per CPU
	lastGlobal int   // LazyGlobal's
	st         Stats
}

// NewMachine returns cpus CPUs running their idle tasks, with tasks'
// breakpoints, under pol.
func NewMachine(cpus int, tasks []Task, pol InstallPolicy) (*Machine, error) {
	if cpus < 1 {
		return nil, fmt.Errorf("%w: cpus = %d, want >= 1", ErrInvalid, cpus)
	}
	if pol >= numInstallPolicies {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, pol)
	}
	for i, t := range tasks {
		if len(t.Watch) > NumSlots {
			return nil, fmt.Errorf("%w: task %d watches %d addresses, at most %d", ErrInvalid, i, len(t.Watch), NumSlots)
		}
		for j, a := range t.Watch {
			if a == 0 {
				return nil, fmt.Errorf("%w: task %d watch %d at address 0", ErrInvalid, i, j)
			}
			for _, b := range t.Watch[:j] {
				if a == b {
					return nil, fmt.Errorf("%w: task %d watches %#x twice", ErrInvalid, i, a)
				}
			}
		}
	}
	m := &Machine{pol: pol, tasks: tasks, cur: make([]int, cpus), cpu: make([]int, len(tasks)),
		regs: make([]cpuRegs, cpus), lastPerCPU: make([]int, cpus), lastGlobal: Idle}
	for c := range m.cur {
		m.cur[c], m.lastPerCPU[c] = Idle, Idle
	}
	for t := range m.cpu {
		m.cpu[t] = -1
	}
	return m, nil
}

// Policy returns the machine's policy.
func (m *Machine) Policy() InstallPolicy { return m.pol }

// CPUs returns the number of CPUs.
func (m *Machine) CPUs() int { return len(m.cur) }

// Current returns the task running on cpu, or Idle.
func (m *Machine) Current(cpu int) int { return m.cur[cpu] }

// Stats returns the counts so far.
func (m *Machine) Stats() Stats { return m.st }

func (m *Machine) checkCPU(cpu int) error {
	if cpu < 0 || cpu >= len(m.cur) {
		return fmt.Errorf("%w: cpu %d out of range [0,%d)", ErrInvalid, cpu, len(m.cur))
	}
	return nil
}

// Switch switches cpu from its current task to task (Idle for the idle
// task), which must not be running elsewhere, and installs registers by
// the policy. Switching to the task already running does nothing.
func (m *Machine) Switch(cpu, task int) error {
	if err := m.checkCPU(cpu); err != nil {
		return err
	}
	if task < Idle || task >= len(m.tasks) {
		return fmt.Errorf("%w: task %d out of range [-1,%d)", ErrInvalid, task, len(m.tasks))
	}
	if task != Idle && m.cpu[task] >= 0 && m.cpu[task] != cpu {
		return fmt.Errorf("%w: task %d is running on cpu %d", ErrInvalid, task, m.cpu[task])
	}
	m.doSwitch(cpu, task)
	return nil
}

// doSwitch is Switch on checked arguments.
func (m *Machine) doSwitch(cpu, task int) {
	prev := m.cur[cpu]
	if prev == task {
		return
	}
	if prev != Idle {
		m.cpu[prev] = -1
	}
	if task != Idle {
		m.cpu[task] = cpu
	}
	m.cur[cpu] = task
	m.st.Switches++
	r := &m.regs[cpu]
	var watch []uint64
	if task != Idle {
		watch = m.tasks[task].Watch
	}
	if len(watch) == 0 {
		switch {
		case m.pol == Eager:
			if prev != Idle && len(m.tasks[prev].Watch) > 0 {
				r.dr7 = 0
				m.st.Writes++
			}
		case m.pol == Changed:
			if r.dr7 != 0 {
				r.dr7 = 0
				m.st.Writes++
			}
		}
		// Lazy policies leave the registers in place.
		return
	}
	var want uint8
	for i, a := range watch {
		want |= 1 << i
		if m.pol == Eager || r.dr[i] != a {
			r.dr[i] = a
			m.st.Writes++
		}
	}
	if m.pol == Eager || r.dr7 != want {
		r.dr7 = want
		m.st.Writes++
	}
	switch m.pol {
	case LazyPerCPU:
		m.lastPerCPU[cpu] = task
	case LazyGlobal:
		m.lastGlobal = task
	}
}

// Access is the task running on cpu touching addr (a write, which every
// watchpoint here traps). It reports whether a trap was delivered to the
// task.
func (m *Machine) Access(cpu int, addr uint64) (bool, error) {
	if err := m.checkCPU(cpu); err != nil {
		return false, err
	}
	return m.access(cpu, addr), nil
}

// access is Access on a checked CPU.
func (m *Machine) access(cpu int, addr uint64) bool {
	t := m.cur[cpu]
	asked := t != Idle && m.tasks[t].watches(addr)
	m.st.Accesses++
	if asked {
		m.st.Watched++
	}
	r := &m.regs[cpu]
	hit := false
	for i := 0; i < NumSlots; i++ {
		if r.dr7&(1<<i) != 0 && r.dr[i] == addr {
			hit = true
			break
		}
	}
	if !hit {
		if asked {
			m.st.Lost++
		}
		return false
	}
	m.st.Exceptions++
	if m.pol.lazy() {
		last := m.lastGlobal
		if m.pol == LazyPerCPU {
			last = m.lastPerCPU[cpu]
		}
		if t != last {
			// Taken for a leftover of lazy switching: clear, deliver nothing.
			m.st.FalseAlarms++
			r.dr7 = 0
			m.st.Writes++
			if asked {
				m.st.Lost++
			}
			return false
		}
	}
	if asked {
		m.st.Delivered++
	} else {
		m.st.Misdelivered++
	}
	return true
}
