package harness

import (
	"fmt"
	"strconv"
	"time"
)

// Scenario is an experiment configuration as data: everything that decides
// what a case does, so that a Result can record it and a run can be
// repeated.
type Scenario struct {
	Experiment string `json:"experiment"`
	// Strategy is the alloc strategy doing admission ("" for the real kernel).
	Strategy string `json:"strategy,omitempty"`
	// Backend is "sim", "ptrace" or "perf".
	Backend string `json:"backend,omitempty"`
	// CPUs is the number of simulated CPUs of the model.
	CPUs int `json:"cpus,omitempty"`
	// Slots is the number of registers per CPU (4 on x86).
	Slots int `json:"slots,omitempty"`
	// Tasks is the number of live tasks already holding breakpoints.
	Tasks int `json:"tasks,omitempty"`
	// Workers is the number of worker goroutines.
	Workers int `json:"workers,omitempty"`
	// Mix is the op mix, e.g. "modify", "reregister", "cpu", "task", "taskcpu".
	Mix string `json:"mix,omitempty"`
	// Competitors is the number of competing goroutines or threads.
	Competitors int `json:"competitors,omitempty"`
	// Rate is each competitor's attempt rate in operations per second
	// (0: as fast as it can).
	Rate float64 `json:"rate,omitempty"`
	// Ops is the number of measured operations (0: use Duration).
	Ops int64 `json:"ops,omitempty"`
	// Duration bounds the measurement when Ops is 0.
	Duration time.Duration `json:"duration,omitempty"`
	// Seed seeds every random choice.
	Seed int64 `json:"seed"`
	// PinCPU is the CPU the measuring thread is pinned to, -1 for none.
	PinCPU int `json:"pin_cpu"`
}

// Params renders the scenario as Result.Params entries (zero fields left
// out), merged into extra.
func (s Scenario) Params(extra map[string]string) map[string]string {
	p := map[string]string{}
	set := func(k, v string) {
		if v != "" && v != "0" {
			p[k] = v
		}
	}
	set("strategy", s.Strategy)
	set("backend", s.Backend)
	set("cpus", strconv.Itoa(s.CPUs))
	set("slots", strconv.Itoa(s.Slots))
	set("tasks", strconv.Itoa(s.Tasks))
	set("workers", strconv.Itoa(s.Workers))
	set("mix", s.Mix)
	set("competitors", strconv.Itoa(s.Competitors))
	if s.Rate != 0 {
		p["rate"] = strconv.FormatFloat(s.Rate, 'g', -1, 64)
	}
	set("ops", strconv.FormatInt(s.Ops, 10))
	if s.Duration != 0 {
		p["duration"] = s.Duration.String()
	}
	p["seed"] = strconv.FormatInt(s.Seed, 10)
	p["pinned_cpu"] = strconv.Itoa(s.PinCPU)
	if s.PinCPU < 0 {
		p["pinned_cpu"] = "none"
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// Validate reports a scenario that cannot run, naming the bad field.
func (s Scenario) Validate() error {
	switch {
	case s.Workers < 0:
		return fmt.Errorf("scenario %s: Workers = %d, need >= 0", s.Experiment, s.Workers)
	case s.Competitors < 0:
		return fmt.Errorf("scenario %s: Competitors = %d, need >= 0", s.Experiment, s.Competitors)
	case s.Rate < 0:
		return fmt.Errorf("scenario %s: Rate = %g, need >= 0", s.Experiment, s.Rate)
	case s.Ops < 0:
		return fmt.Errorf("scenario %s: Ops = %d, need >= 0", s.Experiment, s.Ops)
	case s.Ops == 0 && s.Duration <= 0:
		return fmt.Errorf("scenario %s: neither Ops nor Duration set", s.Experiment)
	case s.Tasks < 0:
		return fmt.Errorf("scenario %s: Tasks = %d, need >= 0", s.Experiment, s.Tasks)
	}
	return nil
}
