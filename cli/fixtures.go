package cli

import (
	"bpbench/bench"
	"fmt"
	"path/filepath"
	"testing"
)

// caseResult is a result for the plot tests: name, ns/op and metrics.
func caseResult(name string, ns float64, metrics map[string]float64) bench.Result {
	return bench.Result{Name: name, Iterations: 100, NsPerOp: ns, Metrics: metrics}
}

// reps returns one result per value of ns, the case run len(ns) times;
// metric, when set, gives each run's metrics.
func reps(name string, ns []float64, metric func(i int) map[string]float64) []bench.Result {
	var out []bench.Result
	for i, v := range ns {
		var m map[string]float64
		if metric != nil {
			m = metric(i)
		}
		out = append(out, caseResult(name, v, m))
	}
	return out
}

// switchRun is a synthetic run of both halves of the switch experiments.
func switchRun() *bench.Run {
	run := &bench.Run{Machine: bench.Machine{NumCPU: 2}}
	run.Results = append(run.Results, reps("Switch/backend=perfbench/breakpoints=0/threads-with=0", []float64{1, 1, 1, 1, 1, 1}, func(i int) map[string]float64 {
		return map[string]float64{"usecs/op": 4.5 + 0.01*float64(i)}
	})...)
	for _, be := range []string{"perf", "ptrace"} {
		for _, b := range []int{0, 1, 2, 4} {
			name := fmt.Sprintf("Switch/backend=%s/breakpoints=%d/threads-with=2", be, b)
			run.Results = append(run.Results, reps(name, []float64{1, 1, 1, 1, 1, 1}, func(i int) map[string]float64 {
				us := 4.7 + 1.3*float64(b) + 0.01*float64(i)
				if be == "ptrace" {
					us += 2
				}
				return map[string]float64{"usecs/op": us, "slowdown": us / 4.7}
			})...)
		}
	}
	for _, pol := range []string{"eager", "changed", "lazy-percpu", "lazy-global"} {
		for _, cpus := range []int{2, 8, 64} {
			w := map[string]float64{"eager": 4, "changed": 2, "lazy-percpu": 0.5, "lazy-global": 0.4}[pol]
			lost := 0.0
			if pol == "lazy-global" {
				lost = 0.001 * float64(cpus)
			}
			name := fmt.Sprintf("SwitchModel/policy=%s/cpus=%d/tasks=64/debugged=8", pol, cpus)
			run.Results = append(run.Results, reps(name, []float64{10, 10, 10, 10, 10, 10}, func(i int) map[string]float64 {
				return map[string]float64{"writes/switch": w + 0.001*float64(i), "exceptions/switch": 0, "lost/op": lost, "misdelivered/op": 0}
			})...)
		}
	}
	return run
}

// referenceRun loads the committed reference run, the one directory under
// ../results; its absence is a failure, not a skip, since the repository
// ships it.
func referenceRun(t *testing.T) *bench.Run {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("..", "results", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if haveResults(d) {
			run, err := loadRun(d)
			if err != nil {
				t.Fatal(err)
			}
			return run
		}
	}
	t.Fatal("no reference run under ../results")
	return nil
}
