package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"bpbench/charts"
	"bpbench/runfile"
)

func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	out := fs.String("out", "", "directory for the charts (default DIR/plots)")
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	run, err := loadRunArg(pos, "plot", "bpbench plot DIR [--out PLOTDIR]")
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(pos[0], runfile.PlotsDir)
	}
	files, err := charts.PlotAll(run, dir, stdout)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "wrote", f)
	}
	return nil
}
