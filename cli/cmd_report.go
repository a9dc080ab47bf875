package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"bpbench/report"
	"bpbench/runfile"
)

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	run, err := loadRunArg(pos, "report", "bpbench report DIR")
	if err != nil {
		return err
	}
	md := report.Build(run, pos[0])
	if err := runfile.WriteFileAtomic(filepath.Join(pos[0], runfile.ReportFile), []byte(md)); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	return nil
}
