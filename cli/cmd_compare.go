package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"bpbench/report"
	"bpbench/runfile"
	"bpbench/stats"
)

func cmdCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	format := fs.String("format", "text", "output `FORMAT`: text (benchstat-like tables), csv (one row per benchmark and unit: name,unit,old_median,new_median,delta_pct,p_value,significant) or json")
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
		return usagef("compare: want two results directories, got %d arguments (usage: %s)", len(pos), lookupCommand("compare").synopsis())
	}
	sides, err := report.LoadSides(pos[0], pos[1])
	if err != nil {
		return err
	}
	if sameDir(pos[0], pos[1]) {
		fmt.Fprintf(stderr, "warning: comparing %s with itself: every difference is zero\n", pos[0])
	}
	cmp := report.CompareSides(sides)
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
	if *format != "text" && cmp.Small > 0 {
		fmt.Fprintf(stderr, "warning: %d of %d rows have fewer than %d values on a side, where no difference can be significant; run both with --count %d or more\n",
			cmp.Small, len(cmp.Rows), stats.MinSignificant, runfile.FullCount)
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
