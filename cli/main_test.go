package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/perf/benchfmt"

	"bpbench/alloc"
	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/internal/fixtures"
	"bpbench/internal/kernlock"
	"bpbench/internal/testenv"
	"bpbench/report"
	"bpbench/runfile"
	"bpbench/stats"
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
	b, err := os.ReadFile(filepath.Join(fixtures.Dir(name), runfile.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, runfile.ResultsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := runfile.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeBenchTxt(t, dir, run)
	return dir
}

// writeBenchTxt writes into dir the bench.txt `bpbench run` writes with
// run's results.json.
func writeBenchTxt(t *testing.T, dir string, run *runfile.Run) {
	t.Helper()
	var bt bytes.Buffer
	if err := runfile.WriteBench(&bt, run); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, runfile.BenchFile), bt.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	notResults := t.TempDir()
	os.WriteFile(filepath.Join(notResults, runfile.ResultsFile), []byte("{not json"), 0o644)
	emptyDir := t.TempDir()
	emptyRun := t.TempDir()
	os.WriteFile(filepath.Join(emptyRun, runfile.ResultsFile), []byte("{}"), 0o644)
	fixture := fixtureDir(t, "old")
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
		{[]string{"run", "--experiments", ","}, `--experiments "," names no experiment (omit the flag for all; accepted: `},
		{[]string{"run", "--experiments="}, `--experiments "" names no experiment`},
		{[]string{"run", "--strategies", " , "}, `--strategies " , " names no strategy (omit the flag for all; accepted: `},
		{[]string{"report", emptyDir}, emptyDir + " holds no results.json"},
		{[]string{"plot", emptyDir}, emptyDir + " holds no results.json"},
		{[]string{"report", emptyRun}, "results.json records no machine, mode, started"},
		{[]string{"plot", emptyRun}, "results.json records no machine, mode, started"},
		{[]string{"compare", emptyRun, fixture}, "compare: " + emptyRun + "/results.json records no machine"},
		{[]string{"compare", "--format", "xml", fixture, fixture}, `--format "xml": want text, csv or json`},
		{[]string{"help", "frobnicate"}, `help: unknown command "frobnicate"`},
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
			for _, dir := range []string{notResults, emptyRun} {
				if names := dirEntries(t, dir); len(names) != 1 {
					t.Errorf("results dir changed: %v", names)
				}
			}
			if names := dirEntries(t, emptyDir); len(names) != 0 {
				t.Errorf("empty dir written to: %v", names)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, global, _ := invoke(t, context.Background(), "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		if code, stdout, _ := invoke(t, context.Background(), args...); code != 0 || stdout != global {
			t.Errorf("%v: exit %d, not the global usage: %q", args, code, stdout)
		}
	}
	for _, c := range commands {
		if !strings.Contains(global, "  "+c.synopsis()+"\n") {
			t.Errorf("global usage lacks %q", c.synopsis())
		}
		if c.name == "help" {
			continue
		}
		code, own, _ := invoke(t, context.Background(), c.name, "--help")
		if code != 0 || !strings.HasPrefix(own, "Usage: "+c.synopsis()+"\n") || own == global {
			t.Errorf("%s --help: exit %d, not its own usage:\n%s", c.name, code, own)
		}
		if _, viaHelp, _ := invoke(t, context.Background(), "help", c.name); viaHelp != own {
			t.Errorf("help %s differs from %s --help", c.name, c.name)
		}
		// Every flag is documented with its default.
		fs := flagsOf(t, c.name)
		fs.VisitAll(func(f *flag.Flag) {
			i := strings.Index(own, "\n  --"+f.Name)
			if i < 0 {
				t.Errorf("%s --help does not document --%s:\n%s", c.name, f.Name, own)
				return
			}
			entry, _, _ := strings.Cut(own[i+1:], "\n  --")
			if !strings.Contains(entry, "default") {
				t.Errorf("%s --help gives no default for --%s: %q", c.name, f.Name, entry)
			}
		})
	}
	_, run, _ := invoke(t, context.Background(), "run", "--help")
	for _, want := range []string{"--pin-cpu CPU", "(default 0)", "--seed N", "(default 1)", "--count N", "5 for --full"} {
		if !strings.Contains(run, want) {
			t.Errorf("run --help lacks %q:\n%s", want, run)
		}
	}
}

// flagsOf returns the flags a command accepts, read from the usage error
// that lists them.
func flagsOf(t *testing.T, cmd string) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	_, _, stderr := invoke(t, context.Background(), cmd, "--no-such-flag")
	_, list, ok := strings.Cut(stderr, "(accepted flags: ")
	if !ok {
		t.Fatalf("%s: no flag list in %q", cmd, stderr)
	}
	list = strings.TrimSuffix(strings.TrimSpace(list), ")")
	if list == "none" {
		return fs
	}
	for _, f := range strings.Split(list, ", ") {
		fs.Bool(strings.TrimPrefix(f, "--"), false, "")
	}
	return fs
}

// TestRunRealExperiment runs the real exclusion experiment (model only,
// no debug registers) end to end and checks every file of the result.
func TestRunRealExperiment(t *testing.T) {
	if _, err := bench.Lookup("exclusion"); err != nil {
		t.Skipf("exclusion experiment not registered: %v", err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "res")
	code, stdout, stderr := invoke(t, context.Background(), "run", "--experiments", "exclusion", "--count", "2", "--out", out, "--strategies", builtinStrategies())
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "estimated") || !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("stdout lacks the estimate or the summary: %s", stdout)
	}
	if names := dirEntries(t, parent); len(names) != 1 || names[0] != "res" {
		t.Errorf("parent holds %v, want only the results dir (no temporary left)", names)
	}

	js, err := os.ReadFile(filepath.Join(out, runfile.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var run runfile.Run
	if err := json.Unmarshal(js, &run); err != nil {
		t.Fatal(err)
	}
	again, err := runfile.Marshal(&run)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, again) {
		t.Error("results.json does not round-trip through runfile.Run")
	}
	if len(run.Results) == 0 || run.Mode != "quick" || run.Machine.GOOS == "" {
		t.Fatalf("results.json: %d results, mode %q, machine %+v", len(run.Results), run.Mode, run.Machine)
	}
	var file runfile.RunFile
	if err := json.Unmarshal(js, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Summaries) == 0 {
		t.Error("results.json has no summaries")
	}
	for _, s := range file.Summaries {
		if iv := s.CI["ns/op"]; iv.N != 2 || iv.From != "runs" || iv.Lo > iv.Median || iv.Median > iv.Hi {
			t.Errorf("summary of %s: ns/op interval %+v, want one over the 2 runs", s.Name, iv)
		}
	}
	perName := map[string]int{}
	for _, r := range run.Results {
		if r.Noise == nil {
			t.Errorf("result %s records no noise", r.Name)
		}
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

	bt, err := os.ReadFile(filepath.Join(out, runfile.BenchFile))
	if err != nil {
		t.Fatal(err)
	}
	rd := benchfmt.NewReader(bytes.NewReader(bt), runfile.BenchFile)
	lines := 0
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Fatalf("bench.txt: %v", rec)
		case *benchfmt.Result:
			lines++
			for _, k := range []string{"goos", "goarch", "cpu", "kernel", "gomaxprocs", "pinned-cpu", "slots", "commit", "dirty"} {
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
	for _, f := range []string{runfile.ReportFile, filepath.Join(runfile.PlotsDir, "exclusion-cost.png"), filepath.Join(runfile.PlotsDir, "exclusion-cost.svg")} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
}

// TestRunInterrupted cancels a real run midway: nothing may be left.
func TestRunInterrupted(t *testing.T) {
	exclusion, err := bench.Lookup("exclusion")
	if err != nil {
		t.Fatalf("exclusion experiment not registered: %v", err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "res")
	// The run is cancelled from inside it, after a real experiment has
	// run to completion: midway by construction, whatever the machine's
	// speed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := bench.Case{Name: "Cancel/case=now", Estimate: time.Millisecond, Run: func(ctx context.Context, _ int64, _ bench.Timer) (bench.Result, error) {
		cancel()
		<-ctx.Done()
		return bench.Result{}, ctx.Err()
	}}
	cancelling := bench.Experiment{Name: "cancel", Cases: func(bench.Options) ([]bench.Case, error) { return []bench.Case{stop}, nil }}
	var e bytes.Buffer
	rc := &runConfig{exps: []bench.Experiment{exclusion, cancelling}, count: 1, out: out, slots: fixedSlots, conform: noConform}
	code := finish(ctx, runExperiments(ctx, rc, io.Discard, &e), &e)
	if code != 130 {
		t.Errorf("exit %d, want 130; stderr %s", code, e.String())
	}
	if !strings.Contains(e.String(), "interrupted: nothing written") {
		t.Errorf("stderr does not say it was interrupted: %q", e.String())
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
	err := runExperiments(context.Background(), &runConfig{exps: []bench.Experiment{exp}, count: 3, out: out, slots: fixedSlots, conform: noConform}, &o, &e)
	if exitCode(context.Background(), err) != 1 {
		t.Fatalf("err %v (exit %d), want a failure (exit 1)", err, exitCode(context.Background(), err))
	}
	run, lerr := runfile.Load(out)
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
	if len(lines) > 0 && strings.HasPrefix(lines[0], "model not checked against the kernel") {
		lines = lines[1:] // the conformance check's verdict comes first
	}
	// Repetitions go round the plan: the skipped and the failed case
	// leave it after their first round.
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "[round 1/3, 1/3] Fixture/case=ok ") ||
		!strings.HasPrefix(lines[1], "[round 1/3, 2/3] skip Fixture/case=skip: ") || lines[2] != "[round 1/3, 3/3] FAIL Fixture/case=fail: tracee vanished" ||
		!strings.HasPrefix(lines[3], "[round 2/3, 1/3] Fixture/case=ok ") || !strings.HasPrefix(lines[4], "[round 3/3, 1/3] Fixture/case=ok ") {
		t.Errorf("stderr is not one line per case and round naming the skip and the failure:\n%s", e.String())
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
		run := &runfile.Run{Machine: bench.Machine{GOOS: "linux", GOMAXPROCS: 2}, Results: []bench.Result{{Name: "Update/backend=sim/op=modify", Iterations: 100, NsPerOp: ns}}}
		var b bytes.Buffer
		if err := runfile.WriteBench(&b, run); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, runfile.BenchFile), b.Bytes(), 0o644)
		return dir
	}
	code, stdout, stderr := invoke(t, context.Background(), "compare", mk(100), mk(50))
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stdout, "not tested: 1 vs 1 runs") || !strings.Contains(stdout, "--count 5") || strings.Contains(stdout, "∞") {
		t.Errorf("1+1 samples not reported as untested with a note:\n%s", stdout)
	}
	code, _, stderr = invoke(t, context.Background(), "compare", "--format", "csv", mk(100), mk(50))
	if code != 0 || !strings.Contains(stderr, "note: 1 of 1 rows not tested: fewer than 4 runs on a side") {
		t.Errorf("csv with 1+1 samples: exit %d, stderr %q: want a note", code, stderr)
	}
}

// requireBreakpoints skips when this machine cannot create breakpoints,
// saying why; as root on the reference VM it never skips.
func requireBreakpoints(t *testing.T) {
	t.Helper()
	err := hwregs.PerfSupported()
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
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

// writeRunDir writes run as `bpbench run` would (results.json and
// bench.txt) into a new directory.
func writeRunDir(t *testing.T, run *runfile.Run) string {
	t.Helper()
	dir := t.TempDir()
	js, err := runfile.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, runfile.ResultsFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	writeBenchTxt(t, dir, run)
	return dir
}

// compareCSV runs compare --format csv and returns its rows by
// "name unit".
func compareCSV(t *testing.T, old, new string) map[string][]string {
	t.Helper()
	code, stdout, stderr := invoke(t, context.Background(), "compare", "--format", "csv", old, new)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := "name,unit,old_median,new_median,delta_pct,p_value,significant,note"; strings.Join(recs[0], ",") != want {
		t.Fatalf("csv header %v, want %s", recs[0], want)
	}
	rows := map[string][]string{}
	for _, r := range recs[1:] {
		if strings.HasPrefix(r[0], "Benchmark") || regexp.MustCompile(`-\d+$`).MatchString(r[0]) {
			t.Errorf("csv name %q keeps the Benchmark prefix or the -N suffix", r[0])
		}
		rows[r[0]+" "+r[1]] = r
	}
	return rows
}

// TestCompareDetectsShift: the fixture's cases ran 5 times with about 2%
// noise; a copy with every Update case 10% slower is reported significant
// at p < 0.05 on every Update row, and nothing else moves. An identical
// copy shows no significant change at all.
func TestCompareDetectsShift(t *testing.T) {
	base := fixtureDir(t, "old")
	run, err := runfile.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	slower := *run
	slower.Results = slices.Clone(run.Results)
	updates := map[string]bool{}
	for i := range slower.Results {
		if r := &slower.Results[i]; strings.HasPrefix(r.Name, "Update/") {
			r.NsPerOp *= 1.10
			updates[r.Name] = true
		}
	}
	rows := compareCSV(t, base, writeRunDir(t, &slower))
	if len(updates) == 0 {
		t.Fatal("fixture has no Update cases")
	}
	for key, r := range rows {
		name, unit, _ := strings.Cut(key, " ")
		p, _ := strconv.ParseFloat(r[5], 64)
		delta, _ := strconv.ParseFloat(r[4], 64)
		if updates[name] && unit == "ns/op" {
			if r[6] != "true" || !(p < 0.05) || math.Abs(delta-10) > 0.01 {
				t.Errorf("%s: +10%% not significant: %v", key, r)
			}
		} else if r[6] != "false" {
			t.Errorf("%s: unchanged yet significant: %v", key, r)
		}
	}
	for key, r := range compareCSV(t, base, writeRunDir(t, run)) {
		if r[6] != "false" || r[4] != "0" {
			t.Errorf("%s: identical copy differs: %v", key, r)
		}
	}
}

// TestCompareBatchesNotTested: runs of count 1 carry within-run batches;
// compare shows their spread but tests nothing over them, since batches
// of one run are not samples of the run-to-run distribution.
func TestCompareBatchesNotTested(t *testing.T) {
	// Deterministic noise: 12 batches at fixed normal quantiles, shuffled.
	z := []float64{-1.73, -1.15, -0.81, -0.55, -0.32, -0.1, 0.1, 0.32, 0.55, 0.81, 1.15, 1.73}
	mk := func(scale float64) *runfile.Run {
		run := &runfile.Run{Machine: bench.Machine{GOOS: "linux", GOARCH: "amd64", GOMAXPROCS: 2}, Mode: "quick", Started: time.Unix(1e9, 0).UTC()}
		for c, ns := range []float64{50, 1600, 4400} {
			var b []float64
			for i := range z {
				b = append(b, scale*ns*(1+0.06*z[(i*5+c)%len(z)]))
			}
			run.Results = append(run.Results, bench.Result{
				Experiment: "update", Name: fmt.Sprintf("Update/case=%d", c), Iterations: 1000,
				NsPerOp: stats.Median(b), Batches: map[string][]float64{"ns/op": b},
			})
		}
		return run
	}
	old := writeRunDir(t, mk(1))
	rows := compareCSV(t, old, writeRunDir(t, mk(1.10)))
	if len(rows) != 3 {
		t.Fatalf("rows %v", rows)
	}
	for key, r := range rows {
		if r[5] != "" || r[6] != "false" || !strings.Contains(r[7], "not tested: 1 vs 1 runs") {
			t.Errorf("%s: tested over batches: %v", key, r)
		}
	}
	code, stdout, _ := invoke(t, context.Background(), "compare", old, writeRunDir(t, mk(1.10)))
	for _, want := range []string{"(batches)", "+10.00%", "not tested: 1 vs 1 runs, need 4 a side", "3 of 3 rows not tested", "--count 5"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestCompareFormatsAndGeomean(t *testing.T) {
	old, new := fixtureDir(t, "old"), fixtureDir(t, "new")
	code, stdout, stderr := invoke(t, context.Background(), "compare", "--format", "json", old, new)
	if code != 0 {
		t.Fatal(stderr)
	}
	var out struct {
		Rows []struct {
			Name        string         `json:"name"`
			Unit        string         `json:"unit"`
			P           *float64       `json:"p_value"`
			Significant bool           `json:"significant"`
			OldCI       stats.Interval `json:"old_ci"`
		} `json:"rows"`
		Geomeans []report.Geomean `json:"geomeans"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(out.Rows) == 0 || out.Rows[0].Unit != "ns/op" || out.Rows[0].P == nil || out.Rows[0].OldCI.N != 5 {
		t.Errorf("json rows: %+v", out.Rows[:min(1, len(out.Rows))])
	}
	var g *report.Geomean
	for i := range out.Geomeans {
		if out.Geomeans[i].Unit == "ns/op" {
			g = &out.Geomeans[i]
		}
	}
	// new is the fixture at 0.8x the time.
	if g == nil || g.DeltaPct > -18 || g.DeltaPct < -22 {
		t.Errorf("ns/op geomean %+v, want about -20%%", g)
	}
	_, text, _ := invoke(t, context.Background(), "compare", old, new)
	if !strings.Contains(text, "\ngeomean ") || strings.Contains(text, "∞") {
		t.Errorf("text output lacks a geomean row or prints ∞:\n%s", text)
	}
}

func TestCompareSelfWarns(t *testing.T) {
	dir := fixtureDir(t, "old")
	code, _, stderr := invoke(t, context.Background(), "compare", dir, dir+"/")
	if code != 0 || !strings.Contains(stderr, "warning: comparing "+dir+" with itself") {
		t.Errorf("exit %d, stderr %q: want a warning", code, stderr)
	}
	other := fixtureDir(t, "new")
	if _, _, stderr := invoke(t, context.Background(), "compare", dir, other); stderr != "" {
		t.Errorf("two directories: stderr %q", stderr)
	}
}

// signalWriter passes writes to a buffer and closes seen the first time
// the text written so far holds want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunRecordsNoiseAndLockWait: every result carries the machine's
// noise, and a case that must wait for the debug-register lock says so
// in the log and records the wait. The test holds the lock itself (flock
// conflicts between two opens even within one process) and releases it
// once the waiting message is out.
func TestRunRecordsNoiseAndLockWait(t *testing.T) {
	held, err := kernlock.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	var release sync.Once
	unlock := func() { release.Do(func() { held.Unlock() }) }
	defer unlock()
	wait := bench.Case{Name: "Fixture/case=lock", Estimate: time.Millisecond, Run: func(context.Context, int64, bench.Timer) (bench.Result, error) {
		l, err := kernlock.Acquire()
		if err != nil {
			return bench.Result{}, err
		}
		l.Unlock()
		// What only the experiment can see is kept.
		return bench.Result{Iterations: 1, NsPerOp: 1, Noise: &harness.Noise{PinLost: 2}}, nil
	}}
	exp := bench.Experiment{Name: "fixture", Cases: func(bench.Options) ([]bench.Case, error) { return []bench.Case{wait}, nil }}
	log := &signalWriter{want: "waiting for the debug-register lock held by ", seen: make(chan struct{})}
	seen := log.seen
	go func() { <-seen; unlock() }()
	out := filepath.Join(t.TempDir(), "res")
	// The slot probe would wait for the lock too, before any case.
	rc := &runConfig{exps: []bench.Experiment{exp}, count: 1, out: out, slots: fixedSlots, conform: noConform}
	if err := runExperiments(context.Background(), rc, io.Discard, log); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log.String(), "waiting for the debug-register lock held by PID ") {
		t.Errorf("log does not name the holder: %q", log)
	}
	run, err := runfile.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	n := run.Results[0].Noise
	if n == nil || n.LockWait <= 0 || n.PinLost != 2 || n.RunnableMax < 1 || !n.Loaded() {
		t.Errorf("noise %+v: want the lock wait, the experiment's PinLost and the runnable tasks", n)
	}
	if kernlock.Notify.Load() != nil {
		t.Error("run left kernlock.Notify pointing at its log")
	}
}

// cli-test-over-admit is the mutex strategy with a deliberate bug: it
// believes every CPU has one register more than it has, so it admits a
// breakpoint the kernel refuses. A test that runs the real conformance
// check on every strategy passes builtinStrategies instead.
func init() {
	if err := alloc.Register("cli-test-over-admit", func(c alloc.Config) (alloc.Allocator, error) {
		c.Slots++
		return alloc.New("mutex", c)
	}); err != nil {
		panic(err)
	}
}

// TestRunFailsOnDivergence: a strategy that disagrees with the kernel is a
// failed case of the run (exit 1) named with its strategy and first
// divergence, on the terminal and in results.json; the run's figures are
// still written.
func TestRunFailsOnDivergence(t *testing.T) {
	requireBreakpoints(t)
	exp := bench.Experiment{Name: "fixture", Cases: func(bench.Options) ([]bench.Case, error) {
		return []bench.Case{{Name: "Fixture/case=ok", Estimate: time.Millisecond, Run: func(context.Context, int64, bench.Timer) (bench.Result, error) {
			return bench.Result{Iterations: 10, NsPerOp: 5}, nil
		}}}, nil
	}}
	out := filepath.Join(t.TempDir(), "res")
	var o, e bytes.Buffer
	rc := &runConfig{exps: []bench.Experiment{exp}, count: 1, out: out, slots: fixedSlots,
		opts: bench.Options{Strategies: []string{"mutex", "cli-test-over-admit"}, Seed: 3}}
	err := runExperiments(context.Background(), rc, &o, &e)
	if code := exitCode(context.Background(), err); code != 1 {
		t.Fatalf("exit %d (%v), want 1; stderr:\n%s", code, err, e.String())
	}
	if !strings.Contains(e.String(), "FAIL Conform/strategy=cli-test-over-admit: strategy cli-test-over-admit disagreed with the kernel on ") ||
		!strings.Contains(e.String(), "; first at op ") || !strings.Contains(e.String(), "kernel ENOSPC, cli-test-over-admit admitted") ||
		strings.Contains(e.String(), "Conform/strategy=mutex") {
		t.Errorf("stderr does not name the diverging strategy and where:\n%s", e.String())
	}
	run, lerr := runfile.Load(out)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(run.Results) != 1 || len(run.Failed) != 1 || run.Failed[0].Name != "Conform/strategy=cli-test-over-admit" {
		t.Errorf("results %d, failed %+v: want the figures and one failure", len(run.Results), run.Failed)
	}
}

// builtinStrategies lists every registered strategy but the deliberately
// wrong one, as --strategies takes them.
func builtinStrategies() string {
	var out []string
	for _, s := range alloc.Strategies() {
		if s != "cli-test-over-admit" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// TestRunFailsOnCheck: an experiment's cross-case check that finds a
// violation fails the run (exit 1), naming the case and why, with the
// figures still written.
func TestRunFailsOnCheck(t *testing.T) {
	exp := bench.Experiment{Name: "fixture",
		Cases: func(bench.Options) ([]bench.Case, error) {
			return []bench.Case{{Name: "Fixture/case=ok", Estimate: time.Millisecond, Run: func(context.Context, int64, bench.Timer) (bench.Result, error) {
				return bench.Result{Iterations: 10, NsPerOp: 5}, nil
			}}}, nil
		},
		Check: func(rs []bench.Result) []bench.Violation {
			return []bench.Violation{{Name: rs[0].Name, Reason: fmt.Sprintf("%d results seen", len(rs))}}
		},
	}
	out := filepath.Join(t.TempDir(), "res")
	var o, e bytes.Buffer
	err := runExperiments(context.Background(), &runConfig{exps: []bench.Experiment{exp}, count: 2, out: out, slots: fixedSlots, conform: noConform}, &o, &e)
	if code := exitCode(context.Background(), err); code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	if !strings.Contains(e.String(), "FAIL Fixture/case=ok: check: 2 results seen") {
		t.Errorf("stderr:\n%s", e.String())
	}
	run, lerr := runfile.Load(out)
	if lerr != nil || len(run.Results) != 2 || len(run.Failed) != 1 {
		t.Errorf("results %d, failed %+v, %v", len(run.Results), run.Failed, lerr)
	}
}
