package bench

import (
	"context"
	"strings"
	"testing"

	"bpbench/alloc"
	"bpbench/bench/harness"
	"bpbench/internal/testenv"
)

func BenchmarkUpdate(b *testing.B) { runCases(b, "Update", casesOf(b, "update", Options{})) }

// runCaseOrSkip runs c for n operations and returns its result, skipping
// the test with the case's reason when the machine cannot run it. Cases
// that touch real debug registers take the kernlock themselves, so the
// test must not hold it too (flock is per open file, even in one process).
func runCaseOrSkip(t *testing.T, c Case, n int64) Result {
	t.Helper()
	res, err := c.Run(context.Background(), n, NopTimer)
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return res
}

// checkResult asserts what every result of these experiments must carry:
// its own name, n iterations, a latency histogram with the samples a
// TimeLoop of n ops takes (wantSamples), per-batch ns/op, the p50/p99 and
// sampler-ns metrics, and the params that say where and how it ran, plus
// every key=value part of its name.
func checkResult(t *testing.T, c Case, res Result, n, wantSamples int64, exp string, keys ...string) {
	t.Helper()
	if res.Name != c.Name || res.Experiment != exp {
		t.Errorf("result named %s/%s, want %s/%s", res.Experiment, res.Name, exp, c.Name)
	}
	if res.Iterations != n {
		t.Errorf("%s: %d iterations, want %d", c.Name, res.Iterations, n)
	}
	if res.NsPerOp <= 0 {
		t.Errorf("%s: NsPerOp = %v", c.Name, res.NsPerOp)
	}
	if res.Latency == nil || res.Latency.Count != uint64(wantSamples) || res.Latency.Min > res.Latency.P50 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("%s: latency histogram %+v, want %d ordered samples", c.Name, res.Latency, wantSamples)
	}
	if len(res.Batches[UnitNsPerOp]) < 2 {
		t.Errorf("%s: batches %v, want ns/op over several batches", c.Name, res.Batches)
	}
	for _, m := range []string{MetricP50, MetricP99, MetricSamplerNs} {
		if _, ok := res.Metrics[m]; !ok {
			t.Errorf("%s: metric %s missing (have %v)", c.Name, m, res.Metrics)
		}
	}
	for _, part := range strings.Split(c.Name, "/")[1:] {
		k, v, _ := strings.Cut(part, "=")
		if res.Params[k] != v {
			t.Errorf("%s: Params[%q] = %q, want %q from the name", c.Name, k, res.Params[k], v)
		}
	}
	for _, k := range append([]string{"kernel", "gomaxprocs", "seed", "pinned_cpu", "slots"}, keys...) {
		if res.Params[k] == "" {
			t.Errorf("%s: Params[%q] missing (have %v)", c.Name, k, res.Params)
		}
	}
}

// experimentCases returns the named experiment's cases for o, and checks
// that it refuses a negative PinCPU.
func experimentCases(t *testing.T, name string, o Options) []Case {
	t.Helper()
	cs := casesOf(t, name, o)
	if _, err := lookup(t, name).Cases(Options{PinCPU: -1}); err == nil {
		t.Errorf("%s: Options.PinCPU = -1 accepted", name)
	}
	return cs
}

// wantWrites is the register writes per op of each update op under
// WriteChanged when the breakpoint alternates between two addresses of the
// same length and type: modify writes DR0 only; disable-enable writes DR7,
// DR0, DR7; reregister writes DR7 (unregister), then DR0 and DR7.
var wantWrites = map[string]float64{"modify": 1, "disable-enable": 3, "reregister": 3}

// TestUpdateCases runs every update case briefly: the sim cases for every
// strategy (each one checks that the strategy holds nothing afterwards),
// and ptrace and perf on the real kernel.
func TestUpdateCases(t *testing.T) {
	if len(alloc.Strategies()) == 0 {
		t.Fatal("no alloc strategies registered")
	}
	cs := experimentCases(t, "update", Options{})
	if want := 3*len(alloc.Strategies()) + 6; len(cs) != want {
		t.Fatalf("%d update cases, want %d", len(cs), want)
	}
	const n = 300
	for _, c := range cs {
		t.Run(strings.TrimPrefix(c.Name, "Update/"), func(t *testing.T) {
			res := runCaseOrSkip(t, c, n)
			op := res.Params[ParamOp]
			switch res.Params[ParamBackend] {
			case "sim":
				checkResult(t, c, res, n, harness.Sampled(n, 1), "update", "strategy", "policy")
				if got := res.Metrics[MetricWrites]; got != wantWrites[op] {
					t.Errorf("writes/op = %v, want %v", got, wantWrites[op])
				}
			case "ptrace":
				checkResult(t, c, res, n, harness.Sampled(n, 1), "update", "strategy", "policy")
				if got := res.Metrics[MetricWrites]; got != wantWrites[op] {
					t.Errorf("writes/op = %v, want %v", got, wantWrites[op])
				}
				fallthrough
			case "perf":
				checkResult(t, c, res, n, harness.Sampled(n, 1), "update")
				if res.Metrics[MetricFloorNs] <= 0 || res.Metrics[MetricXFloor] <= 0 {
					t.Errorf("floor metrics missing: %v", res.Metrics)
				}
			default:
				t.Errorf("unknown backend in params %v", res.Params)
			}
		})
	}
}
