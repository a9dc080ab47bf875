package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
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
	md := buildReport(run, pos[0])
	if err := writeFileAtomic(filepath.Join(pos[0], reportFile), []byte(md)); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	return nil
}
