// Package cli is the bpbench command line as a library: command handling
// only. It runs the experiments (package bench) and hands their results to
// runfile (results.json and bench.txt), charts (the plots) and report
// (report.md and compare). cmd/bpbench only
// calls Main; a user's own main can import a strategy package for its
// alloc.Register side effect and call Main, and every subcommand then works
// on that strategy too.
//
// Usage:
//
//	bpbench run [--quick|--full] [--experiments LIST] [--strategies LIST] [--policies LIST] [--count N] [--out DIR] [--pin-cpu CPU] [--seed N]
//	bpbench plot DIR [--out PLOTDIR]
//	bpbench report DIR
//	bpbench compare [--format text|csv|json] [--filter REGEX] DIR1 DIR2
//	bpbench doctor
//	bpbench help [COMMAND]
//
// Every command answers --help with its own usage: every flag and its
// default.
//
// run executes every case of the selected experiments (the quick suite
// without flags) and writes DIR (default results/<host>-<date>) atomically:
// bench.txt in the Go benchmark format that benchstat reads (one line per
// repetition, the commit and whether the tree was dirty among its
// configuration lines), results.json with every figure, compact
// histograms, the machine's noise during each case and every case's
// median with its 95% interval (runfile.Run plus "summaries"), the plots
// under DIR/plots and report.md. Cases that cannot run here are skipped with their reason; a
// case that fails is recorded in results.json and makes run exit 1 after
// everything else is written. Ctrl-C stops the run, leaves nothing behind
// and exits 130 (SIGTERM: 143). A run killed outright (SIGKILL) leaves
// its .NAME.partial-PID-START-* directory; the next run in the same
// parent removes those whose process is gone, and says so.
//
// plot draws PNG and SVG charts from DIR/results.json; report writes
// DIR/report.md and prints it; compare puts two runs side by side with
// Mann-Whitney U significance, as benchstat does, over the runs of each
// case (a case run fewer than 4 times a side is shown but not tested),
// with a geomean per unit, as text, csv or json; doctor says which
// breakpoint facilities this machine offers and which experiments will run.
//
// Bad flags, unknown names and unreadable result directories produce a
// one-line error and exit status 2, with nothing written.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"bpbench/internal/child"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// command is one subcommand: the table below drives dispatch, the global
// usage and each command's --help, so a new command (conform, say) is one
// more entry.
type command struct {
	name string
	// args is the synopsis after the name ("DIR [--out PLOTDIR]").
	args string
	// summary is the one-line description of the global usage; more is
	// added to the command's own --help.
	summary string
	more    string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// synopsis is the command's usage line.
func (c *command) synopsis() string {
	if c.args == "" {
		return "bpbench " + c.name
	}
	return "bpbench " + c.name + " " + c.args
}

// commands is filled in init: the entries refer to functions that print
// the usage built from the table.
var commands []*command

func init() {
	commands = []*command{
		{name: "run", args: "[--quick|--full] [--experiments LIST] [--strategies LIST] [--policies LIST] [--count N] [--out DIR] [--pin-cpu CPU] [--seed N]",
			summary: "Run the experiments (quick suite by default) and write a results directory.",
			more: `Writes DIR (default results/<host>-<date>, ignored by git): bench.txt
(benchstat format, one line per repetition, with commit and dirty
config lines), results.json (every figure, compact histograms, per-case
medians with 95% intervals, the machine's noise during each case),
plots/ and report.md. The directory appears only when complete: Ctrl-C
(exit 130) or SIGTERM (exit 143) leaves nothing behind, and partial
directories left by a killed run are removed by the next run.`,
			run: cmdRun},
		{name: "plot", args: "DIR [--out PLOTDIR]",
			summary: "Draw PNG and SVG charts from DIR/results.json.",
			run:     func(_ context.Context, a []string, o, e io.Writer) error { return cmdPlot(a, o, e) }},
		{name: "report", args: "DIR",
			summary: "Write DIR/report.md answering each design question, and print it.",
			run:     func(_ context.Context, a []string, o, e io.Writer) error { return cmdReport(a, o, e) }},
		{name: "compare", args: "[--format text|csv|json] [--filter REGEX] DIR1 DIR2",
			summary: "Compare two runs with Mann-Whitney U significance and a geomean per unit.",
			more: `The samples of the test are the runs of each case: a case run fewer
than 4 times on a side is shown (a single run with its within-run
batches' interval) but not tested, and says so; batches of one run are
not samples of how a second run would differ. Benchmarks one side lacks
are summarised in one line. csv columns:
name,unit,old_median,new_median,delta_pct,p_value,significant,note.`,
			run: func(_ context.Context, a []string, o, e io.Writer) error { return cmdCompare(a, o, e) }},
		{name: "conform", args: "[--ops N] [--threads N] [--seed N] [--strategies LIST] [--format text|json]",
			summary: "Check every strategy in lockstep against the live kernel's admission.",
			more: `Drives one random sequence of breakpoint opens and closes through
perf_event_open (CPU-bound on each CPU, a thread on every CPU, a thread
on one CPU; data and instruction breakpoints) and through every strategy,
and reports agreement and each divergence with the live state before it,
after checking that nobody else holds breakpoints; it also probes the
kernel facts the model assumes. Holds the debug-register lock. Exits 1 on
any divergence, or when this machine cannot run it (the reason is said).`,
			run: cmdConform},
		{name: "doctor", summary: "Show what this machine supports and which experiments will run.",
			run: func(_ context.Context, a []string, o, e io.Writer) error { return cmdDoctor(a, o, e) }},
		kernelsCommand,
		{name: "help", args: "[COMMAND]", summary: "Show this text, or a command's own usage.", run: cmdHelp},
	}
}

// lookupCommand returns the named command, or nil.
func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// globalUsage is the text of `bpbench help`.
func globalUsage() string {
	var b strings.Builder
	b.WriteString("bpbench: hardware-breakpoint management benchmarks\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n      %s\n", c.synopsis(), c.summary)
	}
	b.WriteString("\nRun 'bpbench COMMAND --help' for a command's flags and their defaults.\n")
	b.WriteString("Exit status: 0 ok, 1 a case or command failed, 2 usage error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).\n")
	return b.String()
}

func cmdHelp(_ context.Context, args []string, stdout, _ io.Writer) error {
	switch {
	case len(args) == 0:
		fmt.Fprint(stdout, globalUsage())
		return nil
	case len(args) > 1:
		return usagef("help: want at most one command, got %s", present.Plural(len(args), "argument"))
	}
	c := lookupCommand(args[0])
	if c == nil || c.name == "help" {
		if c != nil {
			fmt.Fprint(stdout, globalUsage())
			return nil
		}
		return usagef("help: unknown command %q (want %s)", args[0], commandNames())
	}
	// The command prints its own usage, flags included, for --help.
	return c.run(context.Background(), []string{"--help"}, stdout, io.Discard)
}

// usageError is a mistake in the command line or its arguments: the CLI
// prints it on one line and exits 2 without writing anything.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errInterrupted is returned by run when a signal (or a cancelled
// context) stopped it.
var errInterrupted = errors.New("interrupted")

// signalCause is the cancellation cause of Main's context when a signal
// arrived.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string { return "received " + unix.SignalName(s.sig) }

// interrupted returns the error of a run stopped by ctx, naming the signal.
func interrupted(ctx context.Context) error {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		return fmt.Errorf("%w by %s: nothing written", errInterrupted, unix.SignalName(sc.sig))
	}
	return fmt.Errorf("%w: nothing written", errInterrupted)
}

// exitCode maps a command's error to the process exit status; an
// interruption exits 128 + the signal's number, as a shell reports a
// process killed by it (130 for SIGINT and any other cancellation, 143
// for SIGTERM).
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.Is(err, runfile.ErrNotResults):
		return 2
	case errors.Is(err, errInterrupted):
		var sc signalCause
		if errors.As(context.Cause(ctx), &sc) {
			return 128 + int(sc.sig)
		}
		return 128 + int(syscall.SIGINT)
	}
	return 1
}

// Main runs one bpbench command line (args without the program name, as in
// os.Args[1:]) with the process's standard streams and signals, and returns
// the exit status: 0 on success, 1 when a case or command failed, 2 for a
// usage error, 130 when interrupted by SIGINT, 143 by SIGTERM.
func Main(args []string) int {
	// A copy of this binary started as a helper (a tracee, a workload, the
	// init of a bpbench kernels guest) runs its child mode and exits here.
	child.Main()
	return withSignals(func(ctx context.Context) int {
		return runMain(ctx, args, os.Stdout, os.Stderr)
	})
}

// withSignals runs f with a context cancelled, with a signalCause, by the
// first SIGINT or SIGTERM. After that first signal the default action is
// restored, so a second Ctrl-C kills a run that is slow to stop.
func withSignals(f func(ctx context.Context) int) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(ch)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-ch:
			signal.Reset(syscall.SIGINT, syscall.SIGTERM)
			cancel(signalCause{sig: s.(syscall.Signal)})
		case <-done:
		}
	}()
	return f(ctx)
}

// runMain runs one bpbench command and returns its exit status; tests call
// it directly.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return finish(ctx, dispatch(ctx, args, stdout, stderr), stderr)
}

// finish prints a command's error once, on one line, and returns the exit
// status.
func finish(ctx context.Context, err error, stderr io.Writer) int {
	if err != nil && !errors.Is(err, errReported) {
		fmt.Fprintf(stderr, "bpbench: %v\n", err)
	}
	return exitCode(ctx, err)
}

// errReported wraps errors whose details the command already printed.
var errReported = errors.New("already reported")

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing command (want %s)", commandNames())
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	}
	if c := lookupCommand(name); c != nil {
		return c.run(ctx, rest, stdout, stderr)
	}
	return usagef("unknown command %q (want %s)", name, commandNames())
}
