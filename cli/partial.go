package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"bpbench/runfile"
)

// A run writes into a hidden partial directory and renames it into place
// when complete. Its name carries the owner's PID and the kernel's start
// time of that process, so that a later run can tell a partial directory
// whose run is still going (leave it) from one whose run was killed
// outright (remove it), even after the PID has been reused.

// partialRE matches the names partialPattern makes, after MkdirTemp's
// random suffix.
var partialRE = regexp.MustCompile(`^\..+\.partial-(\d+)-(\d+)-\d+$`)

// partialPattern is the os.MkdirTemp pattern of this process's partial
// directory for the results directory named base.
func partialPattern(base string) string {
	return fmt.Sprintf(".%s.partial-%d-%d-", base, os.Getpid(), procStart(os.Getpid()))
}

// procStart returns the start time of process pid in clock ticks since
// boot (/proc/PID/stat field 22), or 0 when it does not exist.
func procStart(pid int) uint64 {
	start, _ := procStat(pid)
	return start
}

// procStat returns field 22 (start time) and field 3 (state) of
// /proc/PID/stat; 0 and "" when the process does not exist.
func procStat(pid int) (start uint64, state string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// or parentheses itself: fields are counted after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, ""
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // f[0] is field 3 (state)
	if len(f) <= startField {
		return 0, ""
	}
	v, _ := strconv.ParseUint(f[startField], 10, 64)
	return v, f[0]
}

// partialOwnerAlive reports whether the run that made the partial
// directory name is still running.
func partialOwnerAlive(name string) (pid int, alive, ours bool) {
	m := partialRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false, false
	}
	pid, err1 := strconv.Atoi(m[1])
	start, err2 := strconv.ParseUint(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false, false
	}
	// A killed run that is a zombie (or exiting) is gone all the same.
	now, state := procStat(pid)
	return pid, now == start && start != 0 && state != "Z" && state != "X", true
}

// removeStalePartials removes the partial directories in parent left by
// runs that are no longer alive (killed by SIGKILL, or a machine crash),
// and says which on log. Directories it cannot attribute to a process are
// left alone.
func removeStalePartials(parent string, log io.Writer) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		pid, alive, ours := partialOwnerAlive(e.Name())
		if !ours || alive {
			continue
		}
		path := filepath.Join(parent, e.Name())
		if err := os.RemoveAll(path); err != nil {
			fmt.Fprintf(log, "warning: cannot remove stale partial directory %s: %v\n", path, runfile.UnwrapPath(err))
			continue
		}
		fmt.Fprintf(log, "removed stale partial directory %s (its run, PID %d, is no longer running)\n", path, pid)
	}
}
