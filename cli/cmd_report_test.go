package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"bpbench/internal/fixtures"
	"bpbench/runfile"
)

func TestReportFixture(t *testing.T) {
	dir := fixtureDir(t, "old")
	if code, _, stderr := invoke(t, context.Background(), "plot", dir); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := invoke(t, context.Background(), "report", dir)
	if code != 0 {
		t.Fatal(stderr)
	}
	written, err := os.ReadFile(filepath.Join(dir, runfile.ReportFile))
	if err != nil || string(written) != stdout {
		t.Fatalf("report.md differs from the printed report (%v)", err)
	}
	// Every figure below is the median over the fixture's five
	// repetitions, with [min–max] (94% coverage for 5 runs).
	fixtures.WantAll(t, stdout,
		"| kernel | 6.18.0-fixture |",
		"| breakpoint slots per thread | 4 |",
		"(clean tree)",
		"- **perf**: modify in place costs 2.11 µs [2.07–2.14 of 5 runs, 94%] per update; it is 3.44× cheaper than re-register (7.27 µs [7.18–7.44 of 5 runs, 94%])",
		"under competition modify lost 0 of 30000 (0% [0%, 0.0128%]) slots against 11900 of 30000 (39.7% [39.1%, 40.2%]) for re-register",
		"- **sim**: modify in place lost 0 of 30000 (0% [0%, 0.0128%]); re-register lost 7135 of 30000 (23.8% [23.3%, 24.3%])",
		"At 8 goroutines (time-sliced on 2 vCPUs) percpu is fastest, 1.20× the throughput of the next, cas, and 25.3× that of legacy.",
		"at 4096 tasks legacy costs 125 µs [118–126 of 5 runs, 94%] per reservation against 19.2 ns [19.1–19.4 of 5 runs, 94%] for cas: 6474× slower.",
		"| `KernelThread/breakpoints=4/parallelism=2/threads=4` | 68.1 [67.3–70.5 of 5 runs, 94%] | 59.6 [58.7–61.2 of 5 runs, 94%] | 1.14× |",
		"- **ptrace**: write-changed costs 3.12 µs [3.06–3.33 of 5 runs, 94%] per update against 9.55 µs [9.41–9.69 of 5 runs, 94%] for write-all (3.06× cheaper), with 2.00 register writes per update against 6.00.",
		"- 1024 tasks: exclusion on",
		"| Apply threads | eager | lazy |",
		"| BlindWindow threads | eager | lazy |",
		"![update cost per backend](plots/update-cost.png)",
		"![steals vs achieved competitor rate, backend=sim](plots/race-steals-sim.png)",
		"![steals vs achieved competitor rate, backend=perf](plots/race-steals-perf.png)",
		"_No conformance results in this run; section omitted._",
		"_No Switch/SwitchModel results in this run; section omitted._",
		"- `Update/backend=ptrace/op=exec`: skipped: fixture: no exec breakpoints",
	)
}
