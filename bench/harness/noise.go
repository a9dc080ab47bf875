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
	// Others is the CPU time of everything but this process over the
	// case, as a fraction of all CPUs' time: what the case competed with.
	// Busy and RunnableMax include the case's own threads (a race case
	// with a competitor is two runnable threads by design); Others does
	// not.
	Others float64 `json:"others"`
	// LockWait is how long the case waited for the machine-wide
	// debug-register lock held by another process.
	LockWait time.Duration `json:"lock_wait_ns,omitempty"`
	// PinLost counts pinned measuring threads found off their CPU.
	PinLost int `json:"pin_lost,omitempty"`
}

// Loaded reports whether the case shared the machine: other processes
// took more than a tenth of all CPUs' time, the hypervisor stole more than
// 2%, the case waited for the debug-register lock, or a pinned thread was
// found off its CPU.
func (n Noise) Loaded() bool {
	return n.Others > 0.10 || n.Steal > 0.02 || n.LockWait > 0 || n.PinLost > 0
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
	return &NoiseProbe{cpu0: c, self0: selfTicks(), runnable: r, wait0: kernlock.Waited()}
}

// Stop ends the recording and returns what happened since StartNoise.
func (p *NoiseProbe) Stop() Noise {
	c, r := readStat()
	n := Noise{RunnableMax: max(p.runnable, r), LockWait: kernlock.Waited() - p.wait0}
	if total := c.total - p.cpu0.total; total > 0 {
		n.Busy = float64(c.busy-p.cpu0.busy) / float64(total)
		n.Steal = float64(c.steal-p.cpu0.steal) / float64(total)
		others := float64(c.busy-p.cpu0.busy) - float64(selfTicks()-p.self0)
		n.Others = max(0, others) / float64(total)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			n.LoadAvg1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return n
}

type cpuTimes struct{ total, busy, steal uint64 }

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
		case len(f) == 2 && f[0] == "procs_running":
			runnable, _ = strconv.Atoi(f[1])
		}
	}
	return c, runnable
}

// selfTicks is this process's user and system time in clock ticks
// (/proc/self/stat fields 14 and 15, the unit of /proc/stat's counters).
func selfTicks() uint64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}
