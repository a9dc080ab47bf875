package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"bpbench/alloc"
	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/charts"
	"bpbench/conform"
	"bpbench/hwregs"
	"bpbench/internal/kernlock"
	"bpbench/internal/present"
	"bpbench/report"
	"bpbench/runfile"
)

// Time budgets of the two suites on the reference 2-core machine; run warns
// when the experiments' own estimates exceed them.
const (
	quickBudget = 2 * time.Minute
	fullBudget  = time.Hour
)

// runConfig is a validated `bpbench run` command line.
type runConfig struct {
	// conformOps, when set, is the length of the lockstep check (default:
	// the quick or full length).
	conformOps int
	exps       []bench.Experiment
	opts       bench.Options
	count      int
	out        string
	// outDefault says out was chosen by bpbench, so a name clash picks
	// another name instead of failing.
	outDefault bool
	// slots counts the breakpoints a thread can hold (nil: probeSlots,
	// which takes the debug-register lock).
	slots func() (int, error)
	// conform runs the lockstep check against the kernel (nil:
	// conform.Run, which takes the debug-register lock).
	conform func(context.Context, conform.Options) (*conform.Report, error)

	// conformTrace records the kernel's side of the lockstep check in
	// the results (conform.Options.Trace).
	conformTrace bool
}

func (rc *runConfig) mode() string {
	if rc.opts.Full {
		return "full"
	}
	return "quick"
}

func (rc *runConfig) budget() time.Duration {
	if rc.opts.Full {
		return fullBudget
	}
	return quickBudget
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "run the quick suite (the default when neither --quick nor --full is given; about 1.5 minutes on a 2-vCPU VM)")
	full := fs.Bool("full", false, "run the full suite (about 25 minutes on a 2-vCPU VM at the default --count 5)")
	expList := fs.String("experiments", "", "comma-separated `LIST` of experiments to run (default: all; accepted: "+experimentNames()+")")
	stratList := fs.String("strategies", "", "comma-separated `LIST` of alloc strategies the model experiments use (default: all; accepted: "+strategyNames()+")")
	polList := fs.String("policies", "", "comma-separated `LIST` of register-writing policies the registers experiment measures (default: all registered; accepted: "+policyNames()+")")
	count := fs.Int("count", 0, "repetitions `N` of each case (default: 1 for --quick, "+fmt.Sprint(runfile.FullCount)+" for --full)")
	out := fs.String("out", "", "new results directory `DIR` (default: results/<host>-<date>, with -2, -3... when taken)")
	pin := fs.Int("pin-cpu", 0, "`CPU` that tracer threads and tracees pin to, in [0, NumCPU)")
	seed := fs.Int64("seed", 1, "seed `N` of every random choice (workloads, address picks)")
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(pos) > 0 {
		return usagef("run: unexpected argument %q (run takes only flags: %s)", pos[0], flagNames(fs))
	}
	if *quick && *full {
		return usagef("run: --quick and --full are exclusive (pick one)")
	}
	rc := &runConfig{opts: bench.Options{Full: *full, PinCPU: *pin, Seed: *seed}, out: *out}
	switch {
	case !set["count"] && *full:
		rc.count = runfile.FullCount
	case !set["count"]:
		rc.count = 1
	case *count < 1:
		return usagef("run: --count %d: need a repetition count >= 1", *count)
	default:
		rc.count = *count
	}
	if *pin < 0 || *pin >= runtime.NumCPU() {
		return usagef("run: --pin-cpu %d: out of range [0, %d)", *pin, runtime.NumCPU())
	}
	// An explicit list that names nothing ("--experiments ,") is a
	// mistake, not a request for everything.
	if set["experiments"] && len(splitList(*expList)) == 0 {
		return usagef("run: --experiments %q names no experiment (omit the flag for all; accepted: %s)", *expList, experimentNames())
	}
	if set["strategies"] && len(splitList(*stratList)) == 0 {
		return usagef("run: --strategies %q names no strategy (omit the flag for all; accepted: %s)", *stratList, strategyNames())
	}
	if rc.exps, err = selectExperiments(*expList); err != nil {
		return err
	}
	if rc.opts.Strategies, err = selectStrategies(*stratList); err != nil {
		return err
	}
	if set["policies"] && len(splitList(*polList)) == 0 {
		return usagef("run: --policies %q names no policy (omit the flag for all; accepted: %s)", *polList, policyNames())
	}
	if rc.opts.Policies, err = selectPolicies(*polList); err != nil {
		return err
	}
	if rc.out == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "host"
		}
		rc.out = filepath.Join("results", host+"-"+time.Now().Format("2006-01-02"))
		rc.outDefault = true
	} else if _, err := os.Lstat(rc.out); err == nil {
		return usagef("run: --out %q already exists (want a new directory; results are never overwritten)", rc.out)
	}
	return runExperiments(ctx, rc, stdout, stderr)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func experimentNames() string {
	var names []string
	for _, e := range bench.Experiments() {
		names = append(names, e.Name)
	}
	if len(names) == 0 {
		return "none registered"
	}
	return strings.Join(names, ", ")
}

// selectExperiments resolves --experiments; empty means every registered
// experiment.
func selectExperiments(list string) ([]bench.Experiment, error) {
	names := splitList(list)
	if len(names) == 0 {
		exps := bench.Experiments()
		if len(exps) == 0 {
			return nil, errors.New("run: no experiments are registered in package bench")
		}
		return exps, nil
	}
	var exps []bench.Experiment
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		e, err := bench.Lookup(n)
		if err != nil {
			return nil, usagef("run: --experiments: unknown experiment %q (accepted: %s)", n, experimentNames())
		}
		exps = append(exps, e)
	}
	return exps, nil
}

func strategyNames() string {
	if have := alloc.Strategies(); len(have) > 0 {
		return strings.Join(have, ", ")
	}
	return "none registered"
}

// selectStrategies validates --strategies against alloc.Strategies(); nil
// means all.
func selectStrategies(list string) ([]string, error) {
	names := splitList(list)
	have := alloc.Strategies()
	for _, n := range names {
		if !slices.Contains(have, n) {
			return nil, usagef("run: --strategies: unknown strategy %q (accepted: %s)", n, strategyNames())
		}
	}
	return names, nil
}

func policyNames() string { return strings.Join(hwregs.PolicyNames(), ", ") }

// selectPolicies validates --policies against hwregs.PolicyNames(); nil
// means all.
func selectPolicies(list string) ([]string, error) {
	names := splitList(list)
	for _, n := range names {
		if !slices.Contains(hwregs.PolicyNames(), n) {
			return nil, usagef("run: --policies: unknown policy %q (accepted: %s)", n, policyNames())
		}
	}
	return names, nil
}

// plannedCase is a case of a selected experiment.
type plannedCase struct {
	exp string
	c   bench.Case
}

// runExperiments runs rc and writes its results directory atomically.
// planRun lists the cases of rc's experiments into a new run: an
// experiment that cannot run here is recorded as skipped, one whose cases
// cannot be listed as failed, each said on log. It returns the plan and
// its estimated time per experiment.
func planRun(rc *runConfig, log io.Writer) (*runfile.Run, []plannedCase, map[string]time.Duration) {
	run := &runfile.Run{Mode: rc.mode(), Started: time.Now().UTC()}
	var plan []plannedCase
	perExp := map[string]time.Duration{}
	for _, e := range rc.exps {
		cases, cerr := e.Cases(rc.opts)
		switch {
		case errors.Is(cerr, bench.ErrSkip):
			run.Skipped = append(run.Skipped, runfile.Skip{Experiment: e.Name, Name: e.Name, Reason: cerr.Error()})
			fmt.Fprintf(log, "skip %s: %v\n", e.Name, cerr)
			continue
		case cerr != nil:
			run.Failed = append(run.Failed, runfile.Failure{Experiment: e.Name, Name: e.Name, Error: cerr.Error()})
			fmt.Fprintf(log, "FAIL %s: listing cases: %v\n", e.Name, cerr)
			continue
		}
		for _, c := range cases {
			plan = append(plan, plannedCase{exp: e.Name, c: c})
			perExp[e.Name] += c.Estimate * time.Duration(rc.count)
		}
	}
	return run, plan, perExp
}

// measure runs plan into run: it records the machine, checks the model
// against the kernel, runs every case rc.count times and holds each
// experiment to its cross-case checks. Waits for the debug-register lock
// are said on log.
func measure(ctx context.Context, rc *runConfig, run *runfile.Run, plan []plannedCase, log io.Writer) error {
	run.Machine = harness.CollectMachine()
	run.Machine.PinnedCPU = rc.opts.PinCPU
	var logw io.Writer = log
	prev := kernlock.Notify.Swap(&logw)
	defer kernlock.Notify.Store(prev)
	slots := rc.slots
	if slots == nil {
		slots = probeSlots
	}
	if n, perr := slots(); perr == nil {
		run.Machine.Slots = n
	}
	checkConformance(ctx, rc, run, log)
	if err := runPlan(ctx, plan, rc.count, run, log); err != nil {
		return err
	}
	checkExperiments(rc.exps, run, log)
	run.Duration = time.Since(run.Started)
	return nil
}

// runExperiments runs rc and writes its results directory atomically.
func runExperiments(ctx context.Context, rc *runConfig, stdout, stderr io.Writer) (err error) {
	run, plan, perExp := planRun(rc, stderr)
	var total time.Duration
	for _, d := range perExp {
		total += d
	}
	fmt.Fprintf(stdout, "bpbench run: %s suite, %s, %s × %d, estimated %v (budget %v)\n",
		rc.mode(), present.Plural(len(rc.exps), "experiment"), present.Plural(len(plan), "case"), rc.count, total.Round(time.Second), rc.budget())
	if total > rc.budget() {
		var over []string
		for _, e := range rc.exps {
			if d := perExp[e.Name]; d > 0 {
				over = append(over, fmt.Sprintf("%s %v", e.Name, d.Round(time.Second)))
			}
		}
		fmt.Fprintf(stderr, "warning: estimated %v exceeds the %s budget of %v (%s)\n",
			total.Round(time.Second), rc.mode(), rc.budget(), strings.Join(over, ", "))
	}

	parent := filepath.Dir(rc.out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("run: creating %s: %w", parent, err)
	}
	removeStalePartials(parent, stderr)
	tmp, err := os.MkdirTemp(parent, partialPattern(filepath.Base(rc.out)))
	if err != nil {
		return fmt.Errorf("run: creating a temporary results directory: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()

	if err := measure(ctx, rc, run, plan, stderr); err != nil {
		return err
	}

	if err := writeResults(tmp, run, io.Discard); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	out, err := commitDir(tmp, rc.out, rc.outDefault)
	if err != nil {
		return err
	}
	committed = true
	fmt.Fprintf(stdout, "wrote %s: %s, %d skipped, %d failed, in %v\n",
		out, present.Plural(len(run.Results), "result"), len(run.Skipped), len(run.Failed), run.Duration.Round(time.Millisecond))
	for _, s := range run.Skipped {
		fmt.Fprintf(stdout, "  skipped %s: %s\n", s.Name, s.Reason)
	}
	if len(run.Failed) > 0 {
		for _, f := range run.Failed {
			fmt.Fprintf(stderr, "FAIL %s: %s\n", f.Name, f.Error)
		}
		fmt.Fprintf(stdout, "report: %s\n", filepath.Join(out, runfile.ReportFile))
		return fmt.Errorf("run: %s failed; recorded in %s", present.Plural(len(run.Failed), "case"), filepath.Join(out, runfile.ResultsFile))
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(out, runfile.ReportFile))
	return nil
}

// runPlan runs every case count times, appending to run. On a terminal it
// shows a progress bar measured in estimated milliseconds, so that its time
// left follows the experiments' own estimates corrected by the observed
// pace; elsewhere (CI, pipes, tests) the bar's carriage-return redraws
// would flood the log, so it prints one line per finished case instead.
func runPlan(ctx context.Context, plan []plannedCase, count int, run *runfile.Run, stderr io.Writer) error {
	var totalMs int64
	for _, p := range plan {
		totalMs += estMs(p.c.Estimate) * int64(count)
	}
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		bar = progressbar.NewOptions64(max(totalMs, 1),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetWidth(24),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer bar.Finish()
	}
	// A case that must wait for another process's debug-register lock
	// says so in the log (above the bar), and the wait lands in its Noise.
	if bar != nil {
		var logw io.Writer = barClearing{bar: bar, w: stderr}
		prev := kernlock.Notify.Swap(&logw)
		defer kernlock.Notify.Store(prev)
	}
	// With count > 1 the repetitions go round the whole plan, one of
	// each case per round, so that a case's runs are spread over the
	// run's whole time and sample the machine's drift the way a second
	// run would: back to back, they share one moment of it, and two
	// runs of identical code then differ by more than their runs say.
	var done int64
	dropped := make([]bool, len(plan))
	for rep := 0; rep < count; rep++ {
		for i, p := range plan {
			if dropped[i] {
				continue
			}
			counter := fmt.Sprintf("[%d/%d]", i+1, len(plan))
			if count > 1 {
				counter = fmt.Sprintf("[round %d/%d, %d/%d]", rep+1, count, i+1, len(plan))
			}
			// say prints a line that stays: above the bar, or after the
			// case's counter in a plain log.
			say := func(format string, args ...any) {
				if bar != nil {
					bar.Clear()
					fmt.Fprintf(stderr, format+"\n", args...)
					return
				}
				fmt.Fprintf(stderr, counter+" "+format+"\n", args...)
			}
			est := estMs(p.c.Estimate)
			stop := func() {}
			if bar != nil {
				bar.Describe(counter + " " + p.c.Name)
				stop = creep(bar, done, est)
			}
			caseStart := time.Now()
			probe := harness.StartNoise()
			res, err := p.c.Run(ctx, 0, bench.NopTimer)
			noise := probe.Stop()
			stop()
			done += est
			if bar != nil {
				bar.Set64(done)
			}
			if ctx.Err() != nil {
				if bar != nil {
					bar.Clear()
				}
				return interrupted(ctx)
			}
			if errors.Is(err, bench.ErrSkip) {
				run.Skipped = append(run.Skipped, runfile.Skip{Experiment: p.exp, Name: p.c.Name, Reason: err.Error()})
				say("skip %s: %v", p.c.Name, err)
				done += est * int64(count-rep-1)
				dropped[i] = true
				continue
			}
			if err != nil {
				run.Failed = append(run.Failed, runfile.Failure{Experiment: p.exp, Name: p.c.Name, Error: err.Error()})
				say("FAIL %s: %v", p.c.Name, err)
				done += est * int64(count-rep-1)
				dropped[i] = true
				continue
			}
			if res.Experiment == "" {
				res.Experiment = p.exp
			}
			if res.Name == "" {
				res.Name = p.c.Name
			}
			// The experiment may have filled in what only it can see
			// (PinLost); the probe adds the machine's side.
			if res.Noise != nil {
				noise.PinLost = max(noise.PinLost, res.Noise.PinLost)
			}
			res.Noise = &noise
			run.Results = append(run.Results, res)
			if bar == nil {
				say("%s %v", p.c.Name, roundDuration(time.Since(caseStart)))
			}
		}
	}
	return nil
}

// barClearing writes a line above the progress bar.
type barClearing struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

func (b barClearing) Write(p []byte) (int, error) {
	b.bar.Clear()
	return b.w.Write(p)
}

// roundDuration keeps two or three significant digits of a case's time.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// isTerminal reports whether w is a terminal, where a progress bar can
// redraw itself in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func estMs(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// creep moves the bar through a running case's estimate (to 90% of it) so
// the bar shows progress inside long cases; the returned stop waits for it.
func creep(bar *progressbar.ProgressBar, base, est int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				bar.Set64(base + min(time.Since(start).Milliseconds(), est*9/10))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// writeResults writes results.json, bench.txt, the plots and the report
// into dir.
func writeResults(dir string, run *runfile.Run, log io.Writer) error {
	if err := runfile.Write(dir, run); err != nil {
		return err
	}
	if _, err := charts.PlotAll(run, filepath.Join(dir, runfile.PlotsDir), log); err != nil {
		return err
	}
	rep := report.Build(run, dir)
	return runfile.WriteFileAtomic(filepath.Join(dir, runfile.ReportFile), []byte(rep))
}

// commitDir renames the finished temporary directory to out. A default
// name that already exists gets a numeric suffix; an explicit one is never
// replaced.
func commitDir(tmp, out string, renameOnClash bool) (string, error) {
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	base := out
	for i := 2; ; i++ {
		if _, err := os.Lstat(out); errors.Is(err, os.ErrNotExist) {
			// rename(2) onto an empty directory would succeed, so the
			// check above is what protects an existing one; the window
			// between them only matters for two runs racing on one name.
			if err := os.Rename(tmp, out); err != nil {
				return "", fmt.Errorf("run: moving results into place: %w", err)
			}
			return out, syncDir(filepath.Dir(out))
		}
		if !renameOnClash {
			return "", fmt.Errorf("run: %s appeared while running; results left unwritten", out)
		}
		out = fmt.Sprintf("%s-%d", base, i)
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("run: syncing %s: %w", dir, err)
	}
	return nil
}

// checkExperiments holds each experiment's results to what must hold
// across its cases (Experiment.Check); a violation is a failed case,
// said on the terminal and recorded with the run, whose figures are still
// written.
func checkExperiments(exps []bench.Experiment, run *runfile.Run, stderr io.Writer) {
	for _, e := range exps {
		if e.Check == nil {
			continue
		}
		var rs []bench.Result
		for _, r := range run.Results {
			if r.Experiment == e.Name {
				rs = append(rs, r)
			}
		}
		for _, v := range e.Check(rs) {
			run.Failed = append(run.Failed, runfile.Failure{Experiment: e.Name, Name: v.Name, Error: "check: " + v.Reason})
			fmt.Fprintf(stderr, "FAIL %s: check: %s\n", v.Name, v.Reason)
		}
	}
}
