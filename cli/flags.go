package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"bpbench/internal/present"
	"bpbench/runfile"
)

// parseFlags parses args with fs, allowing flags after positional
// arguments ("plot DIR --out x"), and returns the positional ones. Errors
// are usage errors that name the bad flag and list the accepted ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp
			}
			return nil, usagef("%s: %v (accepted flags: %s)", fs.Name(), err, flagNames(fs))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseCommand parses a subcommand's arguments as parseFlags does; on -h
// or --help it prints the usage to stdout and returns help = true, which
// the subcommand answers by returning err (nil) at once.
func parseCommand(fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, help bool, err error) {
	pos, err = parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, commandUsage(fs))
		return nil, true, nil
	}
	return pos, false, err
}

// commandUsage is a command's --help: its synopsis, what it does, and
// every flag with its default.
func commandUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	c := lookupCommand(fs.Name())
	if c == nil {
		c = &command{name: fs.Name()}
	}
	fmt.Fprintf(&b, "Usage: %s\n", c.synopsis())
	if c.summary != "" {
		fmt.Fprintf(&b, "\n%s\n", c.summary)
	}
	if c.more != "" {
		fmt.Fprintf(&b, "%s\n", c.more)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		b.WriteString("\nNo flags.\n")
		return b.String()
	}
	b.WriteString("\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(&b, "  --%s%s\n        %s", f.Name, arg, text)
		bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
		switch {
		case strings.Contains(text, "default"):
		case isBool && bf.IsBoolFlag() && f.DefValue == "false":
			b.WriteString(" (default off)")
		default:
			if f.DefValue != "" {
				fmt.Fprintf(&b, " (default %s)", f.DefValue)
			}
		}
		b.WriteString("\n")
	})
	return b.String()
}

// parseRunCommand parses the arguments of a subcommand that reads one
// results directory, as parseCommand does, and loads that directory's run.
// A nil run with a nil error means --help was answered.
func parseRunCommand(fs *flag.FlagSet, args []string, stdout io.Writer) (run *runfile.Run, dir string, err error) {
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return nil, "", err
	}
	if len(pos) != 1 {
		return nil, "", usagef("%s: want exactly one results directory, got %s (usage: %s)", fs.Name(), present.Plural(len(pos), "argument"), lookupCommand(fs.Name()).synopsis())
	}
	run, err = runfile.Load(pos[0])
	return run, pos[0], err
}

func flagNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
