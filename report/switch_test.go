package report

import (
	"strings"
	"testing"

	"bpbench/bench"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
	"bpbench/stats"
)

// TestAnchorCause: the report says whether the address-space switch is why
// perf bench's round trip is longer than the Go ping-pong's, from the
// intervals, and only as far as they resolve it.
func TestAnchorCause(t *testing.T) {
	iv := func(lo, med, hi float64) stats.Interval {
		return stats.Interval{Lo: lo, Median: med, Hi: hi, N: 11, From: "batches"}
	}
	for _, c := range []struct {
		pt, gp, gt stats.Interval
		want       string
	}{
		// Processes 1.5× threads, Go 0.67× processes and 1.0× threads:
		// the address space is the whole gap.
		{iv(1.4, 1.5, 1.6), iv(0.6, 0.67, 0.7), iv(0.95, 1.0, 1.05), "The address-space switch is why"},
		// Go 0.5× processes, 0.75× threads: (2-1.33)/(2-1) = 2/3 of the gap.
		{iv(1.4, 1.5, 1.6), iv(0.45, 0.5, 0.55), iv(0.7, 0.75, 0.8), "part of why perf bench's round trip is longer than the Go ping-pong's: about 66.7% of the gap"},
		{iv(0.95, 1.02, 1.05), iv(0.6, 0.67, 0.7), iv(0.6, 0.67, 0.7), "is not resolved: perf bench as processes against threads"},
		{iv(0.8, 0.85, 0.9), iv(0.6, 0.67, 0.7), iv(0.6, 0.67, 0.7), "The address-space switch is not why"},
		{iv(1.4, 1.5, 1.6), iv(0.95, 1.0, 1.1), iv(1.4, 1.5, 1.6), "no gap to explain"},
		{stats.Interval{Median: 1.5, Lo: 1.5, Hi: 1.5, N: 1}, iv(0.6, 0.67, 0.7), iv(0.95, 1.0, 1.05), "not resolved"},
	} {
		if got := anchorCause(c.pt, c.gp, c.gt); !strings.Contains(got, c.want) {
			t.Errorf("pt %v gp %v gt %v: %q, want %q in it", c.pt, c.gp, c.gt, got, c.want)
		}
	}
}

// TestReportSwitchAnchorThreads: a run with perf bench's -T form gives
// both forms' round trips and the answer in the switch section.
func TestReportSwitchAnchorThreads(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	run.Results = fixtures.Reps("Switch/backend=perfbench/breakpoints=0/threads-with=0", []float64{1, 1, 1, 1, 1, 1}, func(i int) map[string]float64 {
		d := 0.01 * float64(i)
		return map[string]float64{
			bench.MetricUsecs: 4.5 + d, bench.MetricThreadsUsecs: 3 + d, bench.MetricGoUsecs: 3 + d,
			bench.MetricGoPerPerfBench: 0.667 + d, bench.MetricGoPerPerfBenchThreads: 0.98 + d, bench.MetricProcessesPerThreads: 1.5 + d,
		}
	})
	buildWant(t, run,
		"Two threads of one tracee ping-pong through a futex on one CPU",
		"µs with -T, as two threads of one process",
		"The address-space switch is why perf bench's round trip is longer than the Go ping-pong's",
	)
}
