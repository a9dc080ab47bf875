package cli

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bpbench/charts"
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
	// repetitions, with [min, max] (94% coverage for 5 runs), which the
	// report says once.
	fixtures.WantAll(t, stdout,
		"| kernel | 6.18.0-fixture |",
		"| breakpoint slots per thread | 4 |",
		"(clean tree)",
		"Each case ran 5 times. A figure is the median of its runs, and brackets are [min, max] of them, which holds the true median with 94% probability",
		"| Modify a held breakpoint in place, or re-register it: cost (perf) | modify in place, 3.44× cheaper | 2.11 µs [2.07, 2.14] vs 7.27 µs [7.18, 7.44] | yes |",
		"| perf | 2.11 µs [2.07, 2.14] | 3.84 µs [3.83, 3.95] | 7.27 µs [7.18, 7.44] | 3.44× cheaper |",
		"| sim | competitor on the other CPU (parallel) | 0 of 30,000 (95% upper bound 0.0128%) | 23.8% [23.3%, 24.3%] (7,135 of 30,000) | 12 |",
		"At 8 goroutines (time-sliced on 2 vCPUs) percpu is fastest, 1.20× the throughput of the next, cas, and 25.3× that of the slowest, legacy.",
		"| legacy | 90.3 ns [87.8, 92.2] | 125 µs [118, 126] | 1380× |",
		"| `KernelThread/breakpoints=4/parallelism=2/threads=4` | 68.1 [67.3, 70.5] | 59.6 [58.7, 61.2] | 1.14× |",
		"| ptrace | 3.12 µs [3.06, 3.33] | 9.55 µs [9.41, 9.69] | 3.06× cheaper | 2.00, 6.00 |",
		"| 1024 | 35.9 ns [34.5, 36.1] | 31.5 ns [29.9, 31.7] | 1.14× |",
		"| Apply threads | eager | lazy |",
		"| BlindWindow threads | eager | lazy |",
		"![update cost per backend](plots/update-cost.png)",
		"![steals vs achieved competitor rate, backend=sim, place=other](plots/race-steals-sim-other.png)",
		"![steals vs achieved competitor rate, backend=perf, place=other](plots/race-steals-perf-other.png)",
		"_Not in this run: Switch/SwitchModel, Debugger, the model checked against the kernel, KernelTasks._",
		"- `Update/backend=ptrace/op=exec`: skipped: fixture: no exec breakpoints",
	)
}

func TestPlotFixture(t *testing.T) {
	dir := fixtureDir(t, "old")
	out := filepath.Join(t.TempDir(), "plots")
	code, stdout, stderr := invoke(t, context.Background(), "plot", dir, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The fixture's Race cases run on the sim and perf backends: one steal
	// chart each, and none under the old single name.
	var stems []string
	for _, stem := range charts.Stems() {
		if slices.Contains(optionalStems, stem) {
			if !strings.Contains(stdout, "plot "+stem+": omitted: ") {
				t.Errorf("%s: not drawn, yet no reason given: %s", stem, stdout)
			}
			continue
		}
		if strings.Contains(stdout, "plot "+stem+": omitted") {
			t.Errorf("the fixture has data for %s, yet: %s", stem, stdout)
		}
		if stem != "race-steals" {
			stems = append(stems, stem)
		}
	}
	stems = append(stems, charts.RaceStealsStem("sim", "other"), charts.RaceStealsStem("perf", "other"))
	for _, stem := range stems {
		for _, ext := range []string{"png", "svg"} {
			path := filepath.Join(out, stem+"."+ext)
			b, err := os.ReadFile(path)
			if err != nil || len(b) < 1000 {
				t.Errorf("%s: %d bytes, %v", path, len(b), err)
				continue
			}
			if ext == "png" {
				cfg, err := png.DecodeConfig(bytes.NewReader(b))
				if err != nil || cfg.Width < 600 {
					t.Errorf("%s: not a readable PNG (%v, %dx%d)", path, err, cfg.Width, cfg.Height)
				}
			}
		}
	}
	if names := dirEntries(t, out); len(names) != 2*len(stems) {
		t.Errorf("plots dir holds %v, want exactly the PNG and SVG of %v", names, stems)
	}
}

// optionalStems are the charts the old fixture has no data for: CPU
// counts and context switches came later.
var optionalStems = []string{"tasks-cpus", "switch-cost", "switch-model-writes", "switch-model-lost", "debuggers-writes"}
