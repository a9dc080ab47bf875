package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"bpbench/alloc"
	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/conform"
	"bpbench/debuggers"
	"bpbench/hwregs"
	"bpbench/internal/kernlock"
	"bpbench/runfile"
)

// Capability bits of include/uapi/linux/capability.h.
const (
	capSysPtrace = 19
	capSysAdmin  = 21
	capPerfmon   = 38
)

// probe is one line of doctor's findings: a facility and whether it works.
type probe struct {
	what   string
	err    error  // nil: usable
	detail string // what was found, shown either way
}

// facilities is what doctor learned; experiments are judged against it.
type facilities struct {
	perf   error // perf_event_open breakpoints
	ptrace error // ptrace debug-register writes
	perfCm error // the perf tool, for perf bench breakpoint
	probes []probe
}

func cmdDoctor(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("doctor: unexpected argument %q (doctor takes no arguments)", pos[0])
	}
	f := examine()
	fmt.Fprintf(stdout, "bpbench doctor: %s, kernel %s, %d CPUs\n\n", runtime.GOARCH, harness.KernelRelease(), runtime.NumCPU())
	for _, p := range f.probes {
		mark := "ok "
		if p.err != nil {
			mark = "NO "
		}
		fmt.Fprintf(stdout, "%s %-28s %s", mark, p.what, p.detail)
		if p.err != nil {
			fmt.Fprintf(stdout, " (%v)", p.err)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "\nexperiments (quick suite; judged from case names, a case may still skip for its own reason):")
	for _, e := range bench.Experiments() {
		fmt.Fprintf(stdout, "  %-12s %s\n", e.Name, judgeExperiment(e, f))
	}
	if len(bench.Experiments()) == 0 {
		fmt.Fprintln(stdout, "  none registered")
	}
	fmt.Fprintf(stdout, "\nalloc strategies: %s\n", strings.Join(alloc.Strategies(), ", "))
	return nil
}

// examine probes the machine.
func examine() *facilities {
	f := &facilities{}
	add := func(what, detail string, err error) {
		f.probes = append(f.probes, probe{what: what, detail: detail, err: err})
	}

	capEff, capErr := effectiveCaps()
	root := os.Geteuid() == 0
	has := func(bit uint) string {
		if capErr != nil {
			return "unknown"
		}
		if capEff&(1<<bit) != 0 {
			return "yes"
		}
		return "no"
	}
	var privErr error
	if !root && has(capSysPtrace) != "yes" && has(capPerfmon) != "yes" && has(capSysAdmin) != "yes" {
		privErr = errors.New("not root and neither CAP_SYS_PTRACE nor CAP_PERFMON: only own-process breakpoints at paranoid <= 2")
	}
	add("privilege", fmt.Sprintf("euid=%d CAP_SYS_PTRACE=%s CAP_PERFMON=%s CAP_SYS_ADMIN=%s",
		os.Geteuid(), has(capSysPtrace), has(capPerfmon), has(capSysAdmin)), privErr)

	par, perr := os.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	parDetail := strings.TrimSpace(string(par))
	if perr == nil {
		if lvl, err := strconv.Atoi(parDetail); err == nil && lvl > 2 && !root && has(capPerfmon) != "yes" {
			perr = fmt.Errorf("level %d forbids perf_event_open to unprivileged users", lvl)
		}
	}
	add("perf_event_paranoid", parDetail, perr)

	const pmu = "/sys/bus/event_source/devices/breakpoint"
	_, pmuErr := os.Stat(pmu)
	add("breakpoint PMU", pmu, runfile.UnwrapPath(pmuErr))

	f.perf = hwregs.PerfSupported()
	add("perf_event_open breakpoint", "opened and closed one on this thread", f.perf)

	if f.perf == nil {
		n, err := probeSlots()
		detail := fmt.Sprintf("%d breakpoints per thread before ENOSPC", n)
		if err == nil && n != 4 && runtime.GOARCH == "amd64" {
			err = fmt.Errorf("x86 has 4; CPU-bound breakpoints of another process may hold the rest")
		}
		add("slots per thread", detail, err)
	} else {
		add("slots per thread", "not probed", errors.New("needs perf_event_open"))
	}

	f.ptrace = probePtrace()
	add("ptrace debug registers", "POKEUSER DR0 of the project's tracee and read it back", f.ptrace)

	// A short lockstep sequence says whether `bpbench conform` (and the
	// check at the start of every run) can judge the model here.
	var confErr error
	confDetail := "bpbench conform: not run (needs perf_event_open)"
	if f.perf == nil {
		r, err := conform.Run(context.Background(), conform.Options{Ops: 60, Seed: 1})
		switch {
		case err != nil:
			confErr, confDetail = err, "bpbench conform cannot run"
		case !r.Agrees():
			confErr, confDetail = errors.New(r.Summary()), "bpbench conform"
		default:
			confDetail = "bpbench conform: " + r.Summary()
		}
	} else {
		confErr = f.perf
	}
	add("model vs kernel", confDetail, confErr)

	ver, perfErr := perfTool()
	f.perfCm = perfErr
	add("perf tool", ver, perfErr)
	return f
}

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// slotProbeVars are the addresses the slot probe watches; one each so the
// kernel cannot merge anything.
var slotProbeVars [8]uint64

// probeSlots counts how many breakpoints one thread can hold: it opens
// disabled perf breakpoints on the calling thread until the kernel says
// ENOSPC. It holds the machine-wide kernlock so it does not take slots
// from tests running in parallel.
func probeSlots() (int, error) {
	if err := hwregs.PerfSupported(); err != nil {
		return 0, err
	}
	lk, err := kernlock.Acquire()
	if err != nil {
		return 0, err
	}
	defer lk.Unlock()
	// pid 0 means the calling thread, so stay on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var open []*hwregs.PerfEvent
	defer func() {
		for _, e := range open {
			e.Close()
		}
	}()
	for i := range slotProbeVars {
		a := hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&slotProbeVars[i]))), Len: 8, Type: hwregs.Write}
		e, err := hwregs.OpenPerf(a, 0, -1, hwregs.PerfDisabled())
		if errors.Is(err, alloc.ErrNoSlot) {
			return len(open), nil
		}
		if err != nil {
			return len(open), err
		}
		open = append(open, e)
	}
	return len(open), fmt.Errorf("no ENOSPC after %d breakpoints", len(open))
}

// probePtrace starts the project's own tracee (the ptrace backend of
// hwregs), writes DR0 of its thread with one PTRACE_POKEUSER, reads it back,
// then kills and reaps it: the same path the ptrace experiments take.
func probePtrace() error {
	p, err := hwregs.StartPtrace(hwregs.PtraceOptions{Threads: 1})
	if err != nil {
		return err
	}
	defer p.Close()
	addr := p.Hello().SharedVarAddr(0)
	var werr error
	if err := p.Do(func() {
		t := hwregs.Target{Task: 0}
		if werr = p.WriteDR(t, hwregs.RegDR0, addr); werr != nil {
			return
		}
		got, err := p.ReadDR(t, hwregs.RegDR0)
		switch {
		case err != nil:
			werr = err
		case got != addr:
			werr = fmt.Errorf("DR0 reads back %#x after writing %#x", got, addr)
		default:
			werr = p.WriteDR(t, hwregs.RegDR0, 0)
		}
	}); err != nil {
		return err
	}
	return werr
}

// perfTool reports the installed perf's version.
func perfTool() (string, error) {
	path, err := exec.LookPath("perf")
	if err != nil {
		return "not found", errors.New("install linux-perf for the kernel experiment's perf bench figures")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	// Killed with us, by the timeout, or reaped by Output: never left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	if err != nil {
		return path, fmt.Errorf("perf --version: %w", err)
	}
	return path + ": " + strings.TrimSpace(string(out)), nil
}

// judgeExperiment says which of e's quick cases this machine can run,
// from the facilities their names call for.
func judgeExperiment(e bench.Experiment, f *facilities) string {
	cases, err := e.Cases(bench.Options{})
	if errors.Is(err, bench.ErrSkip) {
		return "skipped: " + err.Error()
	}
	if err != nil {
		return "cannot list cases: " + err.Error()
	}
	reasons := map[string]int{}
	run := 0
	for _, c := range cases {
		if why := caseNeeds(c.Name, f); why != "" {
			reasons[why]++
		} else {
			run++
		}
	}
	s := fmt.Sprintf("%d of %d cases run", run, len(cases))
	for _, why := range slices.Sorted(maps.Keys(reasons)) {
		s += fmt.Sprintf("; %d skip: %s", reasons[why], why)
	}
	return s
}

// caseNeeds returns why a case named name cannot run here, or "".
func caseNeeds(name string, f *facilities) string {
	p := bench.NameParams(name)
	fam, _, _ := strings.Cut(name, "/")
	needPerf := p["backend"] == "perf" || strings.HasPrefix(fam, "Kernel")
	needPtrace := p["backend"] == "ptrace" || fam == "Apply" || fam == "BlindWindow"
	switch {
	case needPerf && f.perf != nil:
		return "perf breakpoints: " + f.perf.Error()
	case needPtrace && f.ptrace != nil:
		return "ptrace: " + f.ptrace.Error()
	case strings.HasPrefix(fam, "Kernel") && f.perfCm != nil:
		return "perf tool: " + f.perfCm.Error()
	case fam == "Debugger" && f.ptrace != nil:
		return "ptrace: " + f.ptrace.Error()
	case fam == "Debugger":
		if err := debuggers.Needs(p["debugger"]); err != nil {
			return err.Error()
		}
	}
	return ""
}
