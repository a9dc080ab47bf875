// Package bench turns alloc and hwregs into experiments that answer design
// questions with numbers: each experiment is a list of cases, each case
// yields a Result named like its `go test -bench` entry point, so the CLI's
// bench.txt and `go test -bench` output can be compared with benchstat.
package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"bpbench/bench/harness"
	"bpbench/internal/support"
)

// ErrSkip is wrapped by a case that cannot run on this machine; the message
// says why (no permission, no breakpoint PMU, perf not installed...).
var ErrSkip = support.New("skipped")

// Skipf returns an error wrapping ErrSkip with a reason.
func Skipf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSkip, fmt.Sprintf(format, args...))
}

// Types shared with the harness (bench/harness), re-exported because they
// are part of a Result.
type (
	// Machine records where a run happened; see harness.Machine.
	Machine = harness.Machine
	// Histogram summarises a latency distribution; see harness.Histogram.
	Histogram = harness.Histogram
	// CDFPoint is one point of a cumulative distribution.
	CDFPoint = harness.CDFPoint
	// Timer is the part of *testing.B a case uses to keep setup out of timing.
	Timer = harness.Timer
)

// NopTimer is the Timer of runs outside `go test`.
var NopTimer = harness.NopTimer

// Result is one measured case.
type Result struct {
	// Experiment is the experiment's name ("update", "race", ...).
	Experiment string `json:"experiment"`
	// Name is the benchmark name without the "Benchmark" prefix, e.g.
	// "Update/backend=sim/strategy=mutex/op=modify". Its key=value parts
	// are also in Params.
	Name string `json:"name"`
	// Params are the key=value parts of Name plus configuration that is not
	// in the name: strategy, backend, pinned_cpu, slots, seed, cpus, ...
	Params map[string]string `json:"params"`
	// Iterations is the number of operations measured.
	Iterations int64 `json:"iterations"`
	// NsPerOp is wall time per operation.
	NsPerOp float64 `json:"ns_per_op"`
	// Metrics are extra per-op figures with benchmark-style units:
	// "steals/op", "window-ns/p50", "usecs/op", "writes/op", "p99-ns", ...
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Latency is the per-op latency distribution, when sampled.
	Latency *Histogram `json:"latency,omitempty"`
	// Window is the race window distribution (release -> successful reserve).
	Window *Histogram `json:"window,omitempty"`
	// Batches holds, per unit ("ns/op" and any Metrics unit), the figure
	// measured over independent consecutive batches of this run's
	// operations, so that a case run once still has an interval (see
	// cli's intervals). Absent when the case cannot be batched.
	Batches map[string][]float64 `json:"batches,omitempty"`
	// Noise is what the machine did while the case ran (the CLI fills it
	// in around each run of a case).
	Noise *harness.Noise `json:"noise,omitempty"`
}

// Options select the size of an experiment run.
type Options struct {
	// Full selects the long form (the CLI's --full); otherwise the quick one.
	Full bool
	// Strategies restricts model experiments to these alloc strategies
	// (nil: all of alloc.Strategies()).
	Strategies []string
	// Policies restricts the registers experiment to these register-writing
	// policies, by their hwregs names (nil: every registered one).
	Policies []string
	// PinCPU is the CPU that tracer threads pin to (default 0).
	PinCPU int
	// Seed seeds every random choice.
	Seed int64
}

// Case is one measurable unit of an experiment.
type Case struct {
	// Name is the benchmark name without "Benchmark" (see Result.Name).
	Name string
	// Estimate is the expected wall time, for progress bars.
	Estimate time.Duration
	// Run measures the case over n operations (n <= 0: the case's own
	// default for Options.Full). It returns an error wrapping ErrSkip when
	// the machine cannot run it, and stops early when ctx is cancelled.
	// Setup and teardown run with t stopped, so that under `go test -bench`
	// (t is the *testing.B) only the measured loop is timed; the CLI passes
	// NopTimer. The Result carries its own NsPerOp either way.
	Run func(ctx context.Context, n int64, t Timer) (Result, error)
}

// Experiment is a named design question.
type Experiment struct {
	// Name is the short name used by the CLI ("update", "race", ...).
	Name string
	// Question is the design question it answers, one sentence.
	Question string
	// Cases lists the cases to run for the given options.
	Cases func(Options) ([]Case, error)
	// Check, when set, checks what must hold across the experiment's
	// results once every case has run (every repetition of each): a
	// figure that breaks it is not a finding but a measurement that did
	// not measure what it says. Each violation is a failed case.
	Check func(rs []Result) []Violation
}

// Violation is one case whose results break what must hold across an
// experiment's cases.
type Violation struct {
	// Name is the case's name.
	Name string
	// Reason says what broke, with the figures.
	Reason string
}

// NameParams parses the key=value elements of a case name
// ("Update/backend=sim/op=modify" has backend and op).
func NameParams(name string) map[string]string {
	p := map[string]string{}
	for _, part := range strings.Split(name, "/")[1:] {
		if k, v, ok := strings.Cut(part, "="); ok {
			p[k] = v
		}
	}
	return p
}
