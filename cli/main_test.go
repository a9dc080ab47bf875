package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/perf/benchfmt"

	"bpbench/alloc"
	"bpbench/bench"
	"bpbench/hwregs"
)

// invoke runs one command in-process and returns its exit status and output.
func invoke(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = runMain(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

// dirEntries lists dir's names, including hidden ones.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// fixtureDir copies testdata/<name>/results.json into a fresh directory and
// adds the bench.txt that run would have written with it.
func fixtureDir(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, resultsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := loadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bt bytes.Buffer
	if err := writeBench(&bt, run); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, benchFile), bt.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	notResults := t.TempDir()
	os.WriteFile(filepath.Join(notResults, resultsFile), []byte("{not json"), 0o644)
	tests := []struct {
		args []string
		want string // substring of the error line
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"run", "--bogus"}, "flag provided but not defined: -bogus (accepted flags: --count"},
		{[]string{"run", "--experiments", "update,nope"}, `unknown experiment "nope" (accepted: `},
		{[]string{"run", "--strategies", "nope"}, `unknown strategy "nope" (accepted: `},
		{[]string{"run", "--count", "0"}, "--count 0: need a repetition count >= 1"},
		{[]string{"run", "--count", "x"}, `invalid value "x" for flag -count`},
		{[]string{"run", "--quick", "--full"}, "--quick and --full are exclusive"},
		{[]string{"run", "--pin-cpu", "999"}, "--pin-cpu 999: out of range"},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "--out", notResults}, "already exists"},
		{[]string{"plot"}, "want exactly one results directory"},
		{[]string{"plot", missing}, "cannot read results directory"},
		{[]string{"plot", notResults}, "cannot parse"},
		{[]string{"report", missing}, "cannot read results directory"},
		{[]string{"compare", missing}, "want two results directories"},
		{[]string{"compare", missing, missing}, "compare: cannot read"},
		{[]string{"doctor", "x"}, "doctor takes no arguments"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			cwd := t.TempDir()
			t.Chdir(cwd)
			code, stdout, stderr := invoke(t, context.Background(), tc.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr is not one line: %q", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			if names := dirEntries(t, cwd); len(names) != 0 {
				t.Errorf("wrote %v into the working directory", names)
			}
			if names := dirEntries(t, notResults); len(names) != 1 {
				t.Errorf("results dir changed: %v", names)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"run", "-h"}} {
		code, stdout, _ := invoke(t, context.Background(), args...)
		if code != 0 || !strings.Contains(stdout, "bpbench run [--quick|--full]") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
}

// TestRunRealExperiment runs the real exclusion experiment (model only,
// no debug registers) end to end and checks every file of the result.
func TestRunRealExperiment(t *testing.T) {
	if _, err := bench.Lookup("exclusion"); err != nil {
		t.Skipf("exclusion experiment not registered: %v", err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "res")
	code, stdout, stderr := invoke(t, context.Background(), "run", "--experiments", "exclusion", "--count", "2", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "estimated") || !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("stdout lacks the estimate or the summary: %s", stdout)
	}
	if names := dirEntries(t, parent); len(names) != 1 || names[0] != "res" {
		t.Errorf("parent holds %v, want only the results dir (no temporary left)", names)
	}

	js, err := os.ReadFile(filepath.Join(out, resultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var run bench.Run
	if err := json.Unmarshal(js, &run); err != nil {
		t.Fatal(err)
	}
	again, err := marshalRun(&run)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, again) {
		t.Error("results.json does not round-trip through bench.Run")
	}
	if len(run.Results) == 0 || run.Mode != "quick" || run.Machine.GOOS == "" {
		t.Fatalf("results.json: %d results, mode %q, machine %+v", len(run.Results), run.Mode, run.Machine)
	}
	perName := map[string]int{}
	for _, r := range run.Results {
		perName[r.Name]++
		if r.Experiment != "exclusion" || r.NsPerOp <= 0 || r.Iterations <= 0 {
			t.Errorf("result %+v: want experiment exclusion with positive ns/op and iterations", r)
		}
	}
	for name, n := range perName {
		if n != 2 {
			t.Errorf("%s ran %d times, want --count 2", name, n)
		}
	}

	bt, err := os.ReadFile(filepath.Join(out, benchFile))
	if err != nil {
		t.Fatal(err)
	}
	rd := benchfmt.NewReader(bytes.NewReader(bt), benchFile)
	lines := 0
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Fatalf("bench.txt: %v", rec)
		case *benchfmt.Result:
			lines++
			for _, k := range []string{"goos", "goarch", "cpu", "kernel", "gomaxprocs", "pinned-cpu", "slots", "commit"} {
				if rec.GetConfig(k) == "" {
					t.Errorf("bench.txt result %s lacks config %q", rec.Name, k)
				}
			}
			if _, ok := rec.Value("sec/op"); !ok { // the reader tidies ns/op
				t.Errorf("bench.txt result %s has no time per op", rec.Name)
			}
		}
	}
	if lines != len(run.Results) {
		t.Errorf("bench.txt has %d results, results.json %d", lines, len(run.Results))
	}
	for _, f := range []string{reportFile, filepath.Join(plotsDir, "exclusion-cost.png"), filepath.Join(plotsDir, "exclusion-cost.svg")} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
}

// TestRunInterrupted cancels a real run midway: nothing may be left.
func TestRunInterrupted(t *testing.T) {
	if _, err := bench.Lookup("scaling"); err != nil {
		t.Skipf("scaling experiment not registered: %v", err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "res")
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	code, _, stderr := invoke(t, ctx, "run", "--experiments", "scaling,exclusion", "--out", out)
	if code != 130 {
		t.Errorf("exit %d, want 130; stderr %s", code, stderr)
	}
	if !strings.Contains(stderr, "interrupted: nothing written") {
		t.Errorf("stderr does not say it was interrupted: %q", stderr)
	}
	if names := dirEntries(t, parent); len(names) != 0 {
		t.Errorf("interrupted run left %v", names)
	}
}

// TestRunRecordsSkipsAndFailures drives the runner with experiment values
// built here (not registered anywhere) to get a skip and a failure on
// demand: the run still writes everything and exits 1.
func TestRunRecordsSkipsAndFailures(t *testing.T) {
	ok := bench.Case{Name: "Fixture/case=ok", Estimate: time.Millisecond, Run: func(ctx context.Context, n int64, _ bench.Timer) (bench.Result, error) {
		return bench.Result{Iterations: 10, NsPerOp: 5, Metrics: map[string]float64{"writes/op": 2}}, nil
	}}
	skip := bench.Case{Name: "Fixture/case=skip", Estimate: time.Millisecond, Run: func(context.Context, int64, bench.Timer) (bench.Result, error) {
		return bench.Result{}, bench.Skipf("no such hardware")
	}}
	fail := bench.Case{Name: "Fixture/case=fail", Estimate: time.Millisecond, Run: func(context.Context, int64, bench.Timer) (bench.Result, error) {
		return bench.Result{}, errors.New("tracee vanished")
	}}
	exp := bench.Experiment{Name: "fixture", Cases: func(bench.Options) ([]bench.Case, error) { return []bench.Case{ok, skip, fail}, nil }}
	out := filepath.Join(t.TempDir(), "res")
	var o, e bytes.Buffer
	err := runExperiments(context.Background(), &runConfig{exps: []bench.Experiment{exp}, count: 3, out: out}, &o, &e)
	if exitCode(err) != 1 {
		t.Fatalf("err %v (exit %d), want a failure (exit 1)", err, exitCode(err))
	}
	run, lerr := loadRun(out)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(run.Results) != 3 || run.Results[0].Name != "Fixture/case=ok" || run.Results[0].Experiment != "fixture" {
		t.Errorf("results %+v, want 3 repetitions of the ok case named by the runner", run.Results)
	}
	if len(run.Skipped) != 1 || !strings.Contains(run.Skipped[0].Reason, "no such hardware") {
		t.Errorf("skipped %+v", run.Skipped)
	}
	if len(run.Failed) != 1 || run.Failed[0].Error != "tracee vanished" {
		t.Errorf("failed %+v", run.Failed)
	}
	// stderr is not a terminal: one plain line per case, no bar redraws,
	// then the failures again in the summary.
	lines := strings.Split(strings.TrimSuffix(e.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "[1/3] Fixture/case=ok ") ||
		!strings.HasPrefix(lines[1], "[2/3] skip Fixture/case=skip: ") || lines[2] != "[3/3] FAIL Fixture/case=fail: tracee vanished" {
		t.Errorf("stderr is not one line per case naming the skip and the failure:\n%s", e.String())
	}
	if strings.Contains(e.String(), "\r") {
		t.Errorf("stderr holds carriage returns of a progress bar: %q", e.String())
	}
}

func TestCompareFixtures(t *testing.T) {
	old, new := fixtureDir(t, "old"), fixtureDir(t, "new")
	code, stdout, stderr := invoke(t, context.Background(), "compare", old, new)
	if code != 0 {
		t.Fatal(stderr)
	}
	for _, want := range []string{
		"commit: 0123456789abcdef -> fedcba9876543210",
		"\nsec/op ",
		"\nsteals/op ",
		"Update/backend=ptrace/op=modify ",
		"p=0.008 n=5",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("compare output lacks %q:\n%s", want, stdout)
		}
	}
	// new is the same workload at 0.8x the time (plus the fixture's 2%
	// noise): a significant drop of about 20%.
	if !strings.Contains(stdout, "-19.83%  p=0.008 n=5") {
		t.Errorf("ptrace modify row shows no significant -19.83%% delta")
	}
	if strings.Contains(stdout, "n too small") {
		t.Error("5+5 samples flagged as too small")
	}
}

func TestCompareTooFewSamples(t *testing.T) {
	mk := func(ns float64) string {
		dir := t.TempDir()
		run := &bench.Run{Machine: bench.Machine{GOOS: "linux", GOMAXPROCS: 2}, Results: []bench.Result{{Name: "Update/backend=sim/op=modify", Iterations: 100, NsPerOp: ns}}}
		var b bytes.Buffer
		if err := writeBench(&b, run); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, benchFile), b.Bytes(), 0o644)
		return dir
	}
	code, stdout, stderr := invoke(t, context.Background(), "compare", mk(100), mk(50))
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stdout, "~") || !strings.Contains(stdout, "(n too small)") || !strings.Contains(stdout, "--count 5") {
		t.Errorf("1+1 samples not reported as ~ with a note:\n%s", stdout)
	}
}

// requireBreakpoints skips when this machine cannot create breakpoints,
// saying why; as root on the reference VM it never skips.
func requireBreakpoints(t *testing.T) {
	t.Helper()
	if err := hwregs.PerfSupported(); err != nil {
		t.Skipf("no perf breakpoints here: %v", err)
	}
}

// TestDoctor probes the real machine. doctor takes the kernlock itself
// while counting slots, so this test must not hold it.
func TestDoctor(t *testing.T) {
	requireBreakpoints(t)
	code, stdout, stderr := invoke(t, context.Background(), "doctor")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"perf_event_paranoid",
		"ok  breakpoint PMU",
		"ok  perf_event_open breakpoint",
		"4 breakpoints per thread before ENOSPC",
		"alloc strategies: " + strings.Join(alloc.Strategies(), ", "),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stdout, "ok  slots per thread") {
		t.Errorf("slot probe not ok:\n%s", stdout)
	}
	if os.Geteuid() == 0 && !strings.Contains(stdout, "ok  ptrace debug registers") {
		t.Errorf("ptrace probe failed as root:\n%s", stdout)
	}
	for _, e := range bench.Experiments() {
		if !strings.Contains(stdout, "  "+e.Name+" ") {
			t.Errorf("doctor does not judge experiment %s", e.Name)
		}
	}
}

func TestProbeSlots(t *testing.T) {
	requireBreakpoints(t)
	n, err := probeSlots()
	if err != nil || n != 4 {
		t.Errorf("probeSlots = %d, %v; want the 4 x86 debug registers", n, err)
	}
}
