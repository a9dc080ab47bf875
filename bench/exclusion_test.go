package bench

import (
	"strings"
	"testing"

	"bpbench/bench/harness"
)

func BenchmarkExclusion(b *testing.B) { runCases(b, "Exclusion", casesOf(b, "exclusion", Options{})) }

// TestExclusionCases runs every quick exclusion case with a small op count:
// no reservation is refused (the workload's ranges never overlap), the
// lists and the allocator are empty afterwards (the case checks), and the
// results are named and described completely.
func TestExclusionCases(t *testing.T) {
	cs := experimentCases(t, "exclusion", Options{})
	if want := 2 * len(scalingTasks(Options{})); len(cs) != want {
		t.Fatalf("%d exclusion cases, want %d", len(cs), want)
	}
	const n = 500
	for _, c := range cs {
		t.Run(strings.TrimPrefix(c.Name, "Exclusion/"), func(t *testing.T) {
			res := runCaseOrSkip(t, c, n)
			checkResult(t, c, res, n, harness.Sampled(n, 2), "exclusion", "strategy", "tasks", "mode")
			for _, m := range []string{"perf-cpu-ns/op", "ptrace-ns/op"} {
				if res.Metrics[m] <= 0 {
					t.Errorf("metric %s = %v (have %v)", m, res.Metrics[m], res.Metrics)
				}
			}
		})
	}
}
