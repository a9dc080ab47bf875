package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"bpbench/charts"
	"bpbench/internal/present"
	"bpbench/report"
	"bpbench/runfile"
)

// The commands that read finished runs rather than measure: report and
// plot redraw one run's outputs from its results.json, compare sets two
// runs side by side.

func cmdReport(args []string, stdout, stderr io.Writer) error {
	run, dir, err := parseRunCommand(flag.NewFlagSet("report", flag.ContinueOnError), args, stdout)
	if run == nil || err != nil {
		return err
	}
	md := report.Build(run, dir)
	if err := runfile.WriteFileAtomic(filepath.Join(dir, runfile.ReportFile), []byte(md)); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	return nil
}

func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	out := fs.String("out", "", "directory for the charts (default DIR/plots)")
	run, dir, err := parseRunCommand(fs, args, stdout)
	if run == nil || err != nil {
		return err
	}
	plots := *out
	if plots == "" {
		plots = filepath.Join(dir, runfile.PlotsDir)
	}
	files, err := charts.PlotAll(run, plots, stdout)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "wrote", f)
	}
	return nil
}

func cmdCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	format := fs.String("format", "text", "output `FORMAT`: text (benchstat-like tables), csv (one row per benchmark and unit: name,unit,old_median,new_median,delta_pct,p_value,significant,note) or json")
	filter := fs.String("filter", "", "compare only benchmarks whose name (without the Benchmark prefix) matches the Go regular expression `REGEX` (default: every benchmark)")
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	switch *format {
	case "text", "csv", "json":
	default:
		return usagef("compare: --format %q: want text, csv or json", *format)
	}
	if len(pos) != 2 {
		return usagef("compare: want two results directories, got %s (usage: %s)", present.Plural(len(pos), "argument"), lookupCommand("compare").synopsis())
	}
	var re *regexp.Regexp
	if *filter != "" {
		if re, err = regexp.Compile(*filter); err != nil {
			return usagef("compare: --filter %q: %v", *filter, err)
		}
	}
	sides, err := report.LoadSides(pos[0], pos[1])
	if err != nil {
		return err
	}
	if sameDir(pos[0], pos[1]) {
		fmt.Fprintf(stderr, "warning: comparing %s with itself: every difference is zero\n", pos[0])
	}
	cmp := report.CompareSides(sides, re)
	if len(cmp.Rows) == 0 && re != nil {
		return usagef("compare: --filter %q matches no benchmark both runs have", *filter)
	}
	switch *format {
	case "csv":
		err = report.WriteCompareCSV(stdout, cmp)
	case "json":
		err = report.WriteCompareJSON(stdout, pos[0], pos[1], cmp)
	default:
		err = report.WriteCompareText(stdout, pos[0], pos[1], sides, cmp)
	}
	if err != nil {
		return err
	}
	if *format != "text" {
		for _, line := range cmp.Summary() {
			fmt.Fprintln(stderr, "note: "+line)
		}
	}
	return nil
}

// sameDir reports whether a and b name one directory.
func sameDir(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(sa, sb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}
