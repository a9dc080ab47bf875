package harness

import (
	"os"
	"strconv"
	"strings"
	"time"

	"bpbench/internal/kernlock"
)

// Noise records what the machine did while one case ran, so that a figure
// measured under load says so instead of hiding it.
type Noise struct {
	// LoadAvg1 is the 1-minute load average at the end of the case.
	LoadAvg1 float64 `json:"loadavg1"`
	// Busy is the fraction of all CPUs' time spent outside idle and
	// iowait during the case (ours included).
	Busy float64 `json:"busy"`
	// Steal is the fraction of all CPUs' time the hypervisor gave to
	// someone else during the case.
	Steal float64 `json:"steal"`
	// RunnableMax is the most runnable tasks seen in /proc/stat
	// (procs_running, the reader included) at the start and end.
	RunnableMax int `json:"runnable_max"`
	// Others is the CPU time of everything but this process and its
	// descendants (the tracees, perf bench, the kernel experiment's
	// workload) over the case, as a fraction of all CPUs' time: what the
	// case competed with. Busy and RunnableMax include the case's own
	// threads and children (a race case with a competitor is two runnable
	// threads by design); Others does not.
	Others float64 `json:"others"`
	// Ticks is the CPU time that passed over all CPUs during the case, in
	// /proc/stat's clock ticks (USER_HZ, 10 ms on Linux): what Busy,
	// Steal and Others are fractions of, and what says how finely they
	// can tell (Margin). 0 in results recorded before it was.
	Ticks uint64 `json:"ticks,omitempty"`
	// CPUs is how many CPUs /proc/stat's counters summed over.
	CPUs int `json:"cpus,omitempty"`
	// LockWait is how long the case waited for the machine-wide
	// debug-register lock held by another process.
	LockWait time.Duration `json:"lock_wait_ns,omitempty"`
	// PinLost counts pinned measuring threads found off their CPU.
	PinLost int `json:"pin_lost,omitempty"`
}

// Load thresholds (Noise.Loaded): a case shared the machine when other
// processes took more than OthersLoaded of all CPUs' time or the
// hypervisor stole more than StealLoaded, beyond what the tick counters
// can resolve (Noise.Margin).
const (
	OthersLoaded = 0.10
	StealLoaded  = 0.02
)

// Margin is the share of a case's CPU time that the clock-tick counters
// cannot resolve: /proc/stat charges each CPU's time a whole tick to
// whatever runs when the tick fires, so over a case each CPU's share is
// off by up to a tick, and this process's and its children's times are
// truncated to ticks. That is CPUs+1 ticks of Ticks. A case of 40 ms on
// 2 CPUs spans 8 ticks, and one stray tick is 12.5% of them: Others moves
// in steps of 12.5%, and only a share above OthersLoaded + 3/8 says load.
// Margin is 1 (nothing resolved) when Ticks is 0.
func (n Noise) Margin() float64 {
	if n.Ticks == 0 {
		return 1
	}
	return float64(max(n.CPUs, 1)+1) / float64(n.Ticks)
}

// Resolved reports whether the tick counters spanned enough ticks to
// tell load from noise at all: a share above OthersLoaded + Margin must
// be possible.
func (n Noise) Resolved() bool { return OthersLoaded+n.Margin() < 1 }

// Loaded reports whether the case shared the machine: other processes
// took more than OthersLoaded of all CPUs' time, or the hypervisor stole
// more than StealLoaded, by more than the counters' Margin; the case
// waited for the debug-register lock; or a pinned thread was found off
// its CPU.
func (n Noise) Loaded() bool {
	if n.LockWait > 0 || n.PinLost > 0 {
		return true
	}
	m := n.Margin()
	return n.Others > OthersLoaded+m || n.Steal > StealLoaded+m
}

// NoiseProbe measures Noise between Start and Stop.
type NoiseProbe struct {
	cpu0     cpuTimes
	self0    uint64
	runnable int
	wait0    time.Duration
}

// StartNoise begins recording the machine's noise.
func StartNoise() *NoiseProbe {
	c, r := readStat()
	return &NoiseProbe{cpu0: c, self0: familyTicks(), runnable: r, wait0: kernlock.Waited()}
}

// Stop ends the recording and returns what happened since StartNoise.
func (p *NoiseProbe) Stop() Noise {
	// Both ends read /proc/stat first and then this process's family,
	// whose own reading comes first: the few microseconds between the
	// two are all either reading misses.
	c, r := readStat()
	self := familyTicks()
	n := Noise{RunnableMax: max(p.runnable, r), LockWait: kernlock.Waited() - p.wait0, CPUs: c.cpus}
	n.setShares(p.cpu0, c, self-p.self0)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			n.LoadAvg1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return n
}

// setShares fills Ticks, Busy, Steal and Others from /proc/stat's
// counters at the start and end of a case and the ticks this process and
// its descendants took over it.
func (n *Noise) setShares(c0, c1 cpuTimes, family uint64) {
	if c1.total <= c0.total {
		return
	}
	total := c1.total - c0.total
	n.Ticks = total
	n.Busy = float64(c1.busy-c0.busy) / float64(total)
	n.Steal = float64(c1.steal-c0.steal) / float64(total)
	others := float64(c1.busy-c0.busy) - float64(family)
	n.Others = max(0, others) / float64(total)
}

type cpuTimes struct {
	total, busy, steal uint64
	cpus               int // the cpuN lines the aggregate sums
}

// readStat reads the aggregate cpu line and procs_running of /proc/stat.
func readStat() (c cpuTimes, runnable int) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 9 && f[0] == "cpu":
			// user nice system idle iowait irq softirq steal [guest guest_nice]
			var v [8]uint64
			for i := range v {
				v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
			}
			for _, x := range v {
				c.total += x
			}
			c.busy = v[0] + v[1] + v[2] + v[5] + v[6]
			c.steal = v[7]
		case len(f) >= 9 && strings.HasPrefix(f[0], "cpu"):
			c.cpus++
		case len(f) == 2 && f[0] == "procs_running":
			runnable, _ = strconv.Atoi(f[1])
		}
	}
	return c, runnable
}

// The CPU time of this process's family: its own, its reaped children's
// and every live descendant's. A case's children (tracees, perf bench,
// the kernel experiment's workload) work for the case, so they are not
// the "other processes" it competed with.
//
// Over a case, each descendant's time lands in the difference of two
// readings exactly once: one started and reaped within the case is in
// this process's cutime/cstime at the end only; one alive at both ends
// is in its own utime/stime (and its cutime/cstime, for what it reaped)
// at both; one alive at the start and reaped within is read live at the
// start and in cutime/cstime at the end; one started within and alive at
// the end is read live at the end only. The kernel adds a child's whole
// utime+stime+cutime+cstime to its parent's cutime/cstime when the
// parent reaps it (wait_task_zombie), so a live descendant counts as
// utime+stime+cutime+cstime of its own, the same sum. Only a descendant
// orphaned by a dying parent (reparented to init, which reaps it) leaves
// the family with its time.

// procStat is what /proc/<pid>/stat says about one process (all its
// threads, exited ones included), in clock ticks.
type procStat struct {
	ppid   int
	zombie bool
	own    uint64 // utime + stime
	reaped uint64 // cutime + cstime: its reaped children's totals
}

// readProcStat reads /proc/<pid>/stat ("self" for this process); ok is
// false when the process is gone.
func readProcStat(pid string) (st procStat, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return st, false
	}
	// The command name may hold spaces and parentheses: fields count from
	// after its last ')'. f[0] is field 3 (state), f[1] the ppid, f[11]..
	// f[14] utime, stime, cutime, cstime (fields 14-17).
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 15 {
		return st, false
	}
	st.zombie = f[0] == "Z"
	st.ppid, _ = strconv.Atoi(f[1])
	var v [4]uint64
	for i := range v {
		v[i], _ = strconv.ParseUint(f[11+i], 10, 64)
	}
	st.own, st.reaped = v[0]+v[1], v[2]+v[3]
	return st, true
}

// member is a live descendant and its parent, as a scan of /proc found
// them.
type member struct{ pid, parent int }

// descendants lists the live descendants of pid, parents before their
// children, from one scan of /proc.
func descendants(pid int) []member {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if st, ok := readProcStat(e.Name()); ok {
			kids[st.ppid] = append(kids[st.ppid], p)
		}
	}
	var out []member
	for _, k := range kids[pid] {
		out = append(out, member{k, pid})
	}
	for i := 0; i < len(out); i++ {
		for _, k := range kids[out[i].pid] {
			out = append(out, member{k, out[i].pid})
		}
	}
	return out
}

// familyAttempts bounds the re-readings of a family caught reaping.
const familyAttempts = 5

// familyTicks is the CPU time of this process and its descendants, live
// and reaped, in clock ticks (the unit of /proc/stat's counters). It
// reads the family top-down, parents before children, and re-reads every
// reaped total after: a child reaped in between shows there (its parent's
// total moved, or it is gone) and the reading starts over, so that no
// child is counted both live and reaped, or neither. A zombie may be in
// the middle of being reaped (its time already added to its parent's
// total, its /proc entry not yet removed), so a family with one waits a
// moment before the check.
func familyTicks() uint64 {
	self := os.Getpid()
	var sum uint64
	for attempt := 0; attempt < familyAttempts; attempt++ {
		tree := descendants(self)
		me, ok := readProcStat("self")
		if !ok {
			return 0
		}
		sum = me.own + me.reaped
		read := make([]procStat, 0, len(tree))
		zombie := false
		consistent := true
		for _, d := range tree {
			st, ok := readProcStat(strconv.Itoa(d.pid))
			if !ok || st.ppid != d.parent {
				consistent = false // reaped or orphaned since the scan
			}
			sum += st.own + st.reaped
			read = append(read, st)
			zombie = zombie || st.zombie
		}
		if !consistent {
			continue
		}
		if zombie {
			time.Sleep(time.Millisecond)
		}
		if again, ok := readProcStat("self"); !ok || again.reaped != me.reaped {
			continue
		}
		for i, d := range tree {
			again, ok := readProcStat(strconv.Itoa(d.pid))
			if !ok || again.reaped != read[i].reaped || again.ppid != d.parent {
				consistent = false
				break
			}
		}
		if consistent {
			return sum
		}
	}
	return sum
}
