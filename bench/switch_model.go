package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"bpbench/bench/harness"
	"bpbench/bench/schedsim"
)

// The switch-model experiment runs bench/schedsim: C CPUs' simulated debug
// registers under the four install policies of the 2009 hw_breakpoint
// review (eager, changed, lazy-percpu, lazy-global), driven by a seeded
// scheduler with migrations and tasks that touch their watched addresses,
// and checked by an oracle of what each task asked for. Per policy it
// reports debug-register writes and debug exceptions (false alarms
// included) per context switch, and traps lost or delivered to the wrong
// task per op, where an op is an access the oracle says must trap.

const (
	switchModelQuickEvents = 400_000
	switchModelFullEvents  = 4_000_000
	switchModelBatches     = 10
)

// SwitchModelSpec is one switch-model case.
type SwitchModelSpec struct {
	Policy   schedsim.InstallPolicy
	CPUs     int
	Tasks    int
	Debugged int // tasks holding breakpoints
}

// Name is the case's benchmark name without "Benchmark".
func (s SwitchModelSpec) Name() string {
	return fmt.Sprintf("SwitchModel/policy=%s/cpus=%d/tasks=%d/debugged=%d", s.Policy, s.CPUs, s.Tasks, s.Debugged)
}

// switchModelSpecs: every policy on 1 CPU (lazy-global's control), 2, 16
// and 256, with 64 and 1024 tasks of which 1/8 or 1/2 are debugged.
func switchModelSpecs() []SwitchModelSpec {
	var ss []SwitchModelSpec
	for _, pol := range schedsim.InstallPolicies {
		for _, c := range []int{1, 2, 16, 256} {
			for _, t := range []int{64, 1024} {
				for _, d := range []int{t / 8, t / 2} {
					ss = append(ss, SwitchModelSpec{Policy: pol, CPUs: c, Tasks: t, Debugged: d})
				}
			}
		}
	}
	return ss
}

func switchModelCases(o Options) ([]Case, error) {
	events := int64(switchModelQuickEvents)
	if o.Full {
		events = switchModelFullEvents
	}
	var cs []Case
	for _, s := range switchModelSpecs() {
		cs = append(cs, Case{
			Name:     s.Name(),
			Estimate: time.Duration(events) * 40 * time.Nanosecond,
			Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
				if n <= 0 {
					n = events
				}
				return runSwitchModel(ctx, s, o, n, t)
			},
		})
	}
	return cs, nil
}

var switchModelExperiment = Experiment{Name: "switch-model", Cases: switchModelCases,
	Question: "Does lazy debug-register switching pay at a context switch, and is it correct on SMP: writes and exceptions per switch, lost and misdelivered traps, for eager, changed-only, lazy with a per-CPU and with a global last_debugged_task?"}

// runSwitchModel runs n scheduler events in switchModelBatches batches;
// an op of go test's ns/op is one event.
func runSwitchModel(ctx context.Context, s SwitchModelSpec, o Options, n int64, t Timer) (Result, error) {
	t.StopTimer()
	sim, err := schedsim.NewSim(schedsim.Config{Policy: s.Policy, CPUs: s.CPUs, Tasks: s.Tasks, Debugged: s.Debugged, Seed: o.Seed})
	if err != nil {
		return Result{}, fmt.Errorf("bench: %s: %w", s.Name(), err)
	}
	m := sim.Machine()
	batches := map[string][]float64{}
	var start schedsim.Stats
	var elapsed time.Duration
	per := max(1, n/switchModelBatches)
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		k := min(per, n-done)
		t.StartTimer()
		t0 := time.Now()
		sim.Step(int(k))
		el := time.Since(t0)
		t.StopTimer()
		elapsed += el
		done += k
		st := m.Stats()
		d := st.Sub(start)
		start = st
		batches["ns/op"] = append(batches["ns/op"], float64(el.Nanoseconds())/float64(k))
		for unit, v := range switchModelMetrics(d) {
			batches[unit] = append(batches[unit], v)
		}
	}
	st := m.Stats()
	sc := harness.Scenario{Experiment: "switch-model", Backend: "sim", CPUs: s.CPUs,
		Slots: schedsim.NumSlots, Tasks: s.Tasks, Ops: n, Seed: o.Seed, PinCPU: -1}
	metrics := switchModelMetrics(st)
	metrics["switches"] = float64(st.Switches)
	metrics["ops"] = float64(st.Watched)
	return Result{
		Experiment: "switch-model",
		Name:       s.Name(),
		Params: commonParams(sc, "policy", s.Policy.String(), "debugged", strconv.Itoa(s.Debugged),
			"events", strconv.FormatInt(n, 10), "op", "an access that must trap (metrics /op); ns/op is per scheduler event"),
		Iterations: n,
		NsPerOp:    float64(elapsed.Nanoseconds()) / float64(n),
		Metrics:    metrics,
		Batches:    batches,
	}, nil
}

func switchModelMetrics(st schedsim.Stats) map[string]float64 {
	return map[string]float64{
		MetricWritesPerSwitch:     st.WritesPerSwitch(),
		MetricExceptionsPerSwitch: st.ExceptionsPerSwitch(),
		"falsealarms/switch":      float64(st.FalseAlarms) / float64(max(1, st.Switches)),
		MetricLost:                st.LostPerOp(),
		MetricMisdelivered:        st.MisdeliveredPerOp(),
	}
}
