package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"bpbench/conform"
	"bpbench/runfile"
)

// Sequence lengths of the lockstep check: the quick form runs at the start
// of every `run`, the full one is `bpbench conform`'s default.
const (
	conformQuickOps = 300
	conformFullOps  = 2000
)

// checkConformance runs the quick lockstep check before the experiments
// (while nothing of ours holds a breakpoint) and records it in run: a
// machine that cannot run it gets a report whose Note says why, another
// error is a failed case.
func checkConformance(ctx context.Context, rc *runConfig, run *runfile.Run, log io.Writer) {
	ops := conformQuickOps
	switch {
	case rc.conformOps > 0:
		ops = rc.conformOps
	case rc.opts.Full:
		ops = conformFullOps
	}
	check := rc.conform
	if check == nil {
		check = conform.Run
	}
	r, err := check(ctx, conform.Options{Ops: ops, Seed: rc.opts.Seed, Strategies: rc.opts.Strategies, Trace: rc.conformTrace})
	switch {
	case errors.Is(err, conform.ErrUnavailable):
		run.Conformance = &conform.Report{Note: err.Error()}
	case err != nil:
		run.Failed = append(run.Failed, runfile.Failure{Experiment: "conform", Name: "Conform", Error: err.Error()})
		fmt.Fprintf(log, "FAIL conform: %v\n", err)
		return
	default:
		run.Conformance = r
	}
	fmt.Fprintln(log, run.Conformance.Summary())
	for _, f := range divergenceFailures(run.Conformance) {
		run.Failed = append(run.Failed, f)
		fmt.Fprintf(log, "FAIL %s: %s\n", f.Name, f.Error)
	}
}

// divergenceFailures turns each strategy that disagreed with the kernel
// into a failed case: a strategy that admits what the kernel refuses (or
// the reverse) breaks the rules, and its figures are not comparable with
// the others'. The error says where the first divergence happened.
func divergenceFailures(r *conform.Report) []runfile.Failure {
	if r == nil || !r.Clean {
		return nil
	}
	var out []runfile.Failure
	for _, a := range r.Strategies {
		if a.Diverged == 0 {
			continue
		}
		msg := fmt.Sprintf("strategy %s disagreed with the kernel on %d of %d opens", a.Strategy, a.Diverged, a.Agreed+a.Diverged)
		if len(a.Divergences) > 0 {
			d := a.Divergences[0]
			msg += fmt.Sprintf("; first at op %d, %s: kernel %s, %s %s", d.Op, d.Request, d.Kernel, a.Strategy, d.Model)
		}
		msg += "; its figures below are from a strategy that broke the admission rules"
		out = append(out, runfile.Failure{Experiment: "conform", Name: "Conform/strategy=" + a.Strategy, Error: msg})
	}
	return out
}

func cmdConform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	ops := fs.Int("ops", conformFullOps, "opens and closes in the random sequence")
	threads := fs.Int("threads", 3, "live threads that task breakpoints bind to (1..64)")
	seed := fs.Int64("seed", 1, "seed of the sequence")
	strategies := fs.String("strategies", "", "comma-separated strategies to check (default: every registered one)")
	format := fs.String("format", "text", "output format: text or json")
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("conform: unexpected argument %q (conform takes only flags)", pos[0])
	}
	if *ops < 1 {
		return usagef("conform: --ops %d: need at least 1", *ops)
	}
	if *threads < 1 || *threads > 64 {
		return usagef("conform: --threads %d: need 1..64", *threads)
	}
	if *format != "text" && *format != "json" {
		return usagef("conform: --format %q: want text or json", *format)
	}
	var names []string
	if flagSet(fs, "strategies") {
		if names, err = selectStrategies(*strategies); err != nil {
			return err
		}
	}
	r, err := conform.Run(ctx, conform.Options{Ops: *ops, Threads: *threads, Seed: *seed, Strategies: names})
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if err != nil {
		return fmt.Errorf("conform: %w", err)
	}
	if *format == "json" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeConformance(stdout, r)
	}
	if !r.Agrees() {
		return fmt.Errorf("conform: %s", r.Summary())
	}
	return nil
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// writeConformance prints a report as text: the verdict, the kernel facts,
// each strategy's agreement and its divergences with the live state.
func writeConformance(w io.Writer, r *conform.Report) {
	fmt.Fprintln(w, r.Summary())
	if r.CPUs > 0 {
		fmt.Fprintf(w, "machine: %d CPUs, breakpoints a thread: %s; %d threads, seed %d, %d closes, %d instruction opens\n", r.CPUs, r.Pools(), r.Threads, r.Seed, r.Closes, r.Inst)
	}
	if len(r.Facts) > 0 {
		fmt.Fprintln(w, "\nkernel facts:")
		for _, f := range r.Facts {
			mark := "ok "
			if !f.Holds() {
				mark = "NO "
			}
			v := f.Value
			switch {
			case f.Error != "":
				v = "not probed: " + f.Error
			case f.Skipped != "":
				mark, v = "-- ", "skipped: "+f.Skipped
			}
			fmt.Fprintf(w, "  %s %-26s %s (%s)\n", mark, f.Name, v, f.Detail)
		}
	}
	if len(r.Strategies) > 0 {
		fmt.Fprintln(w, "\nstrategies:")
	}
	for _, a := range r.Strategies {
		fmt.Fprintf(w, "  %-14s agreed %d, diverged %d\n", a.Strategy, a.Agreed, a.Diverged)
		for _, d := range a.Divergences {
			fmt.Fprintf(w, "    op %d %s: kernel %s, model %s; live before: %s\n", d.Op, d.Request, d.Kernel, d.Model, strings.Join(d.Before, ", "))
		}
	}
}

// noConform is the runConfig.conform of tests that drive the runner with
// fixture experiments and must not touch the kernel.
func noConform(context.Context, conform.Options) (*conform.Report, error) {
	return nil, fmt.Errorf("%w: not checked in this test", conform.ErrUnavailable)
}
