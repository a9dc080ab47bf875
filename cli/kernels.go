package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"bpbench/bench"
	"bpbench/internal/child"
	"bpbench/internal/present"
	"bpbench/kernels"
	"bpbench/kernels/qemu"
	"bpbench/runfile"
)

// kernelsCommand is the `bpbench kernels` entry of the command table.
var kernelsCommand = &command{name: "kernels",
	args:    "[--report DIR] [--kernels LIST] [--arch LIST] [--cpus LIST] [--accel auto|kvm|tcg] [--experiments LIST] [--count N] [--full] [--out DIR] [--timeout D] [--console]",
	summary: "Boot real kernels under QEMU (Debian 5.10, 6.1, 6.12, your own build; amd64 and arm64) and run conform and the real-kernel experiments inside.",
	more: `Each (kernel, vCPU count) is a cell: the kernel boots with an initramfs
built on the fly (this bpbench as init, perf with its libraries), runs
conform with the kernel facts and the experiments, and its results come
back verified as DIR/<label>-cpus<N>/ (bench.txt, results.json,
report.md, console.log, cell.json). DIR/report.md and DIR/plots/ hold the
cross-kernel view. debian:VERSION kernels are fetched once with apt-get
download from the system's own mirror into ~/.cache/bpbench/kernels;
host runs on the running kernel without a VM; a path boots that image
(a bzImage or vmlinuz; an arm64 Image with --arch arm64). --arch arm64
boots Debian's arm64 cloud kernels on QEMU's virt board with bpbench
cross-built, and conform probes the pools a thread holds there (separate
instruction and data breakpoints). A cell that panics, hangs past
--timeout, is not a kernel, or lacks perf events or hardware breakpoints
fails with the last console lines; the others go on. Under TCG times are emulated
(about 15x native): compare kernels at the same vCPU count.`,
	run: cmdKernels}

// defaultKernelExperiments are the real-kernel experiments a cell runs
// besides conform.
const defaultKernelExperiments = "kernel-tasks,kernel-series"

func cmdKernels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kernels", flag.ContinueOnError)
	kList := fs.String("kernels", "debian:5.10,debian:6.1,host", "comma-separated `LIST` of kernels: debian:5.10, debian:6.1, debian:6.12, host, or a kernel image path")
	cpuList := fs.String("cpus", "2,8,32", "comma-separated `LIST` of vCPU counts for the VM cells")
	accel := fs.String("accel", "auto", "QEMU accelerator: auto (KVM if a probe boot works, else TCG), kvm or tcg")
	arch := fs.String("arch", "amd64", "comma-separated `LIST` of guest architectures: amd64, arm64 (Debian's arm64 cloud kernels on QEMU's virt board, bpbench cross-built)")
	expList := fs.String("experiments", defaultKernelExperiments, "comma-separated `LIST` of experiments each cell runs after conform; empty: conform alone (accepted: "+experimentNames()+")")
	count := fs.Int("count", 1, "repetitions `N` of each case")
	full := fs.Bool("full", false, "the experiments' full form, kernel-tasks up to 16384 held breakpoints (default: the quick form)")
	out := fs.String("out", "", "new output directory `DIR` (default: results/kernels-<date>, with -2, -3... when taken)")
	timeout := fs.Duration("timeout", 0, "time limit of one VM cell, boot to power-off (default: estimated from the experiments and the vCPU count)")
	console := fs.Bool("console", false, "copy every guest console to standard error as it arrives (default: off; each cell keeps its console.log)")
	seed := fs.Int64("seed", 1, "seed `N` of every random choice")
	rewrite := fs.String("report", "", "rewrite the report.md and plots/ of an existing kernels output `DIR` from its cells, and run nothing (default: run the cells)")
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("kernels: unexpected argument %q (kernels takes only flags: %s)", pos[0], flagNames(fs))
	}
	if *rewrite != "" {
		m, err := kernels.Rewrite(*rewrite)
		if err != nil {
			return usagef("kernels --report: %v", err)
		}
		fmt.Fprintf(stdout, "wrote %s (%d cells)\n", filepath.Join(*rewrite, "report.md"), len(m.Cells))
		return nil
	}
	arches := splitList(*arch)
	for _, a := range arches {
		if _, err := qemu.ArchOf(a); err != nil {
			return usagef("kernels: --arch: %v", err)
		}
		if *accel == "kvm" && a != runtime.GOARCH {
			return usagef("kernels: --accel kvm --arch %s: KVM runs only guests of the host's architecture (%s); use --accel tcg or auto", a, runtime.GOARCH)
		}
	}
	if len(arches) == 0 {
		return usagef("kernels: --arch %q names no architecture", *arch)
	}
	specs, err := kernels.ParseSpecs(splitList(*kList), arches)
	if err != nil {
		return usagef("kernels: --kernels: %v", err)
	}
	var cpus []int
	for _, s := range splitList(*cpuList) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 255 {
			return usagef("kernels: --cpus: %q is not a vCPU count in 1..255", s)
		}
		cpus = append(cpus, n)
	}
	if len(cpus) == 0 {
		return usagef("kernels: --cpus %q names no vCPU count", *cpuList)
	}
	if *accel != "auto" && *accel != "kvm" && *accel != "tcg" {
		return usagef("kernels: --accel %q: want auto, kvm or tcg", *accel)
	}
	if *count < 1 {
		return usagef("kernels: --count %d: need a repetition count >= 1", *count)
	}
	if *timeout < 0 {
		return usagef("kernels: --timeout %v: need a positive duration", *timeout)
	}
	// An empty list runs conform alone.
	var exps []bench.Experiment
	if len(splitList(*expList)) > 0 {
		if exps, err = selectExperiments(*expList); err != nil {
			return err
		}
	}
	var names []string
	var est time.Duration
	for _, e := range exps {
		if e.Name == "conform" {
			continue
		}
		names = append(names, e.Name)
		if cs, err := e.Cases(bench.Options{Full: *full, Seed: *seed}); err == nil {
			for _, c := range cs {
				est += c.Estimate
			}
		}
	}
	dir := *out
	if dir == "" {
		base := filepath.Join("results", "kernels-"+time.Now().Format("2006-01-02"))
		dir = base
		for i := 2; ; i++ {
			if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
				break
			}
			dir = fmt.Sprintf("%s-%d", base, i)
		}
	} else if _, err := os.Lstat(dir); err == nil {
		return usagef("kernels: --out %q already exists (want a new directory; results are never overwritten)", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	cfg := &kernels.Config{Specs: specs, CPUs: cpus, Accel: *accel, Out: dir, Timeout: *timeout,
		Job:      kernels.Job{Experiments: names, Full: *full, Count: *count, Seed: *seed},
		Run:      runJob,
		Write:    func(d string, r *runfile.Run) error { return writeResults(d, r, io.Discard) },
		Estimate: est, Log: stderr}
	if *console {
		cfg.Console = stderr
	}
	fmt.Fprintf(stdout, "bpbench kernels: %s (%s) x vCPUs %v, experiments %s, into %s\n", present.Plural(len(specs), "kernel"), strings.Join(arches, ", "), cpus, strings.Join(append([]string{"conform"}, names...), ","), dir)
	m, err := kernels.RunMatrix(ctx, cfg)
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if err != nil {
		return err // package kernels' errors say "kernels:" already
	}
	failed := 0
	for _, c := range m.Cells {
		if !c.OK() {
			failed++
		}
	}
	fmt.Fprintf(stdout, "wrote %s: %s (%d failed), %s, in %v\n", dir, present.Plural(len(m.Cells), "cell"), failed, strings.ToUpper(m.Accel), m.Duration.Round(time.Second))
	if failed > 0 {
		return fmt.Errorf("kernels: %d of %d cells failed (see %s)", failed, len(m.Cells), filepath.Join(dir, "report.md"))
	}
	return nil
}

// runJob is the kernels.Runner: conform with the kernel facts (the full
// sequence, the headline of every cell), then the job's experiments, as
// `bpbench run` does, returning the run instead of writing it. It runs
// inside each guest and in the host cell.
func runJob(ctx context.Context, job kernels.Job, log io.Writer) (*runfile.Run, error) {
	var exps []bench.Experiment
	if len(job.Experiments) > 0 {
		var err error
		if exps, err = selectExperiments(strings.Join(job.Experiments, ",")); err != nil {
			return nil, err
		}
	}
	// A cell checks the model with the long sequence: the kernel is the
	// thing under test.
	rc := &runConfig{exps: exps, opts: bench.Options{Full: job.Full, Seed: job.Seed, Strategies: job.Strategies},
		count: max(job.Count, 1), conformOps: conformFullOps, conformTrace: job.ConformTrace}
	run, plan, _ := planRun(rc, log)
	if err := measure(ctx, rc, run, plan, log); err != nil {
		return nil, err
	}
	return run, nil
}

// guestMain is the one hook in Main for a bpbench guest's init (see
// kernels.GuestMain).
func init() {
	// The guest's init: the kernel command line selects the mode
	// (kernels.GuestMode) and hands the job over in its environment.
	child.Add(kernels.GuestMode, func() int {
		_, code := kernels.GuestMain(runJob)
		return code
	})
}
