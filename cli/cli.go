// Package cli is the bpbench command line as a library: it runs the
// experiments, keeps their results, draws the plots and writes a report that
// answers each design question with the measured numbers. cmd/bpbench only
// calls Main; a user's own main can import a strategy package for its
// alloc.Register side effect and call Main, and every subcommand then works
// on that strategy too.
//
// Usage:
//
//	bpbench run [--quick|--full] [--experiments update,race,...] [--strategies mutex,...] [--count N] [--out DIR]
//	bpbench plot DIR [--out DIR/plots]
//	bpbench report DIR
//	bpbench compare DIR1 DIR2
//	bpbench doctor
//	bpbench help
//
// run executes every case of the selected experiments (the quick suite
// without flags) and writes DIR (default results/<host>-<date>) atomically:
// bench.txt in the Go benchmark format that benchstat reads, results.json
// with every figure and histogram (bench.Run), the plots under DIR/plots and
// report.md. Cases that cannot run here are skipped with their reason; a
// case that fails is recorded in results.json and makes run exit 1 after
// everything else is written. Ctrl-C stops the run, leaves nothing behind
// and exits 130.
//
// plot draws PNG and SVG charts from DIR/results.json; report writes
// DIR/report.md and prints it; compare puts two runs side by side with
// Mann-Whitney U significance, as benchstat does; doctor says which
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
	"syscall"
)

const usage = `bpbench: hardware-breakpoint management benchmarks

Usage:
  bpbench run [--quick|--full] [--experiments LIST] [--strategies LIST] [--count N] [--out DIR]
      Run the experiments (quick suite by default) and write DIR
      (default results/<host>-<date>): bench.txt (benchstat format),
      results.json, plots/ and report.md. Written atomically; Ctrl-C
      leaves nothing behind.
  bpbench plot DIR [--out PLOTDIR]
      Draw PNG and SVG charts from DIR/results.json (default PLOTDIR: DIR/plots).
  bpbench report DIR
      Write DIR/report.md answering each design question, and print it.
  bpbench compare DIR1 DIR2
      Compare two runs' bench.txt with Mann-Whitney U significance.
  bpbench doctor
      Show what this machine supports and which experiments will run.
  bpbench help
      Show this text.
`

// usageError is a mistake in the command line or its arguments: the CLI
// prints it on one line and exits 2 without writing anything.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errInterrupted is returned by run when a signal cancelled it.
var errInterrupted = errors.New("interrupted")

// exitCode maps a command's error to the process exit status.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, errInterrupted):
		return 130
	}
	return 1
}

// Main runs one bpbench command line (args without the program name, as in
// os.Args[1:]) with the process's standard streams and signals, and returns
// the exit status: 0 on success, 1 when a case or command failed, 2 for a
// usage error, 130 when interrupted.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, args, os.Stdout, os.Stderr)
	stop()
	return code
}

// runMain runs one bpbench command and returns its exit status; tests call
// it directly.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	if err != nil && !errors.Is(err, errReported) {
		fmt.Fprintf(stderr, "bpbench: %v\n", err)
	}
	return exitCode(err)
}

// errReported wraps errors whose details the command already printed.
var errReported = errors.New("already reported")

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing command (want run, plot, report, compare, doctor or help)")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "plot":
		return cmdPlot(rest, stdout, stderr)
	case "report":
		return cmdReport(rest, stdout, stderr)
	case "compare":
		return cmdCompare(rest, stdout, stderr)
	case "doctor":
		return cmdDoctor(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q (want run, plot, report, compare, doctor or help)", cmd)
}
