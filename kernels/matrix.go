// Package kernels runs bpbench's real-kernel experiments inside the
// kernels people run and the kernel they are writing: each (kernel, vCPU
// count) is a cell, booted under QEMU with an initramfs built on the fly
// (bpbench as init, perf with its libraries), whose results come back on
// a second serial line, framed and verified (package frame), and become
// a normal results directory. Debian's cloud kernels are fetched with
// apt (package debian); `host` runs on the running kernel without a VM.
// Every cell runs conform with the kernel facts; the cross-kernel report
// puts the kernels side by side.
package kernels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"bpbench/bench"
	"bpbench/charts"
	"bpbench/kernels/debian"
	"bpbench/kernels/frame"
	"bpbench/kernels/qemu"
	"bpbench/report"
	"bpbench/runfile"
)

// Config is one `bpbench kernels` invocation.
type Config struct {
	// Specs are the kernels, each for one architecture (ParseSpecs).
	Specs []Spec
	// CPUs are the vCPU counts of the VM cells.
	CPUs []int
	// Accel is "auto", "kvm" or "tcg".
	Accel string
	// Job is what every cell runs (its Mode and ResultsDev are set per
	// cell).
	Job Job
	// Out is the new output directory.
	Out string
	// Timeout bounds one VM cell, boot to power-off (0: estimated from
	// the experiments and the vCPU count).
	Timeout time.Duration
	// Run runs a job in this process (the host cell, and the guest).
	Run Runner
	// Write writes a run's results directory (results.json, bench.txt,
	// plots, report.md).
	Write func(dir string, run *runfile.Run) error
	// Estimate is the experiments' own time estimate on this host at
	// count 1, for the default timeout.
	Estimate time.Duration
	// Cache is bpbench's cache directory (kernels and the guest binary
	// live under it; default: the user cache dir's bpbench).
	Cache string
	// Log receives progress lines; Console, when set, every guest
	// console as it arrives.
	Log     io.Writer
	Console io.Writer
}

// Matrix is what a `bpbench kernels` run produced: kernels.json
// (runfile.Matrix).
type Matrix = runfile.Matrix

// resolved is a spec with its image found.
type resolved struct {
	spec            Spec
	arch            qemu.Arch
	image           string
	pkg, pkgVersion string
	err             error
}

// guestOf is what the VM cells of one architecture share: the guest's
// initramfs and the accelerator chosen for it.
type guestOf struct {
	im         *Image
	accel, why string
}

func (cfg *Config) logf(format string, args ...any) {
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, format+"\n", args...)
	}
}

// DefaultCache is the user cache dir's bpbench ($XDG_CACHE_HOME/bpbench
// or ~/.cache/bpbench).
func DefaultCache() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernels: no cache directory: %w", err)
	}
	return filepath.Join(d, "bpbench"), nil
}

// NeedsPerf says whether any of the experiments runs perf bench.
func NeedsPerf(exps []string) bool {
	return slices.Contains(exps, "kernel") || slices.Contains(exps, "kernel-series")
}

// RunMatrix runs every cell, writing each cell's directory as it
// finishes, then kernels.json, report.md and plots/ under cfg.Out (a
// directory that must not exist yet). A failed cell is recorded and the
// others go on; only cancellation stops the matrix (the finished cells
// stay, nothing temporary does).
func RunMatrix(ctx context.Context, cfg *Config) (*Matrix, error) {
	if cfg.Run == nil || cfg.Write == nil {
		return nil, errors.New("kernels: Config needs Run and Write")
	}
	if cfg.Cache == "" {
		c, err := DefaultCache()
		if err != nil {
			return nil, err
		}
		cfg.Cache = c
	}
	m := &Matrix{Arch: strings.Join(specArches(cfg.Specs), ","), Job: cfg.Job, Started: time.Now().UTC()}
	if err := os.Mkdir(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("kernels: %w", err)
	}
	var ks []*resolved
	for _, s := range cfg.Specs {
		k := resolve(ctx, cfg, s)
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		ks = append(ks, k)
	}
	guests := map[string]*guestOf{}
	var accels []string
	for _, k := range ks {
		if !k.spec.VM() || k.err != nil || guests[k.arch.Name] != nil {
			continue
		}
		g, err := newGuest(ctx, cfg, k)
		if g != nil && g.im != nil {
			defer g.im.Close()
		}
		if err != nil {
			return m, err
		}
		guests[k.arch.Name] = g
		accels = append(accels, k.arch.Name+": "+g.accel+" ("+g.why+")")
		if m.Accel == "" {
			m.Accel, m.AccelWhy = g.accel, g.why
		} else if m.Accel != g.accel {
			m.Accel = "mixed"
		}
	}
	if len(accels) > 1 {
		m.AccelWhy = strings.Join(accels, "; ")
	}
	for _, k := range ks {
		cpus := cfg.CPUs
		if !k.spec.VM() {
			cpus = []int{runtime.NumCPU()}
		}
		for _, n := range cpus {
			var c *Cell
			var err error
			start := time.Now()
			switch {
			case k.err != nil:
				c = &Cell{Name: cellName(k.spec.Label, n), Label: k.spec.Label, Kernel: k.spec, Arch: k.spec.Arch, CPUs: n, Error: k.err.Error()}
			case !k.spec.VM():
				c, err = hostCell(ctx, cfg, k)
			default:
				timeout := cfg.Timeout
				if timeout == 0 {
					timeout = DefaultTimeout(cfg.Estimate, cfg.Job.Count, n)
				}
				c, err = vmCell(ctx, cfg, k, n, guests[k.arch.Name], timeout)
			}
			if err != nil {
				return m, err
			}
			if werr := writeCell(cfg, c); werr != nil {
				return m, werr
			}
			m.Cells = append(m.Cells, c)
			if c.OK() {
				cfg.logf("%s: %s in %v", c.Name, cellSummary(c), time.Since(start).Round(100*time.Millisecond))
			} else {
				cfg.logf("FAIL %s: %s", c.Name, c.Error)
			}
		}
	}
	if err := runModel(ctx, cfg, m); err != nil {
		return m, err
	}
	m.Duration = time.Since(m.Started)
	if err := writeMatrix(cfg, m); err != nil {
		return m, err
	}
	return m, nil
}

// specArches returns the architectures of specs, in order of appearance.
func specArches(specs []Spec) []string {
	var out []string
	for _, s := range specs {
		if !slices.Contains(out, s.Arch) {
			out = append(out, s.Arch)
		}
	}
	return out
}

// newGuest builds the guest of k's architecture (its bpbench, cross-built
// when needed, and the initramfs) and settles its accelerator with a
// probe boot of k.
func newGuest(ctx context.Context, cfg *Config, k *resolved) (*guestOf, error) {
	bin, err := GuestBinary(ctx, k.arch, filepath.Join(cfg.Cache, "guest"), cfg.Log)
	if err != nil {
		return nil, err
	}
	g := &guestOf{}
	if g.im, err = BuildImage(k.arch, bin, NeedsPerf(cfg.Job.Experiments)); err != nil {
		return nil, err
	}
	perf := "with perf"
	if !g.im.Perf {
		perf = "without perf: " + g.im.PerfNote
	}
	cfg.logf("%s guest initramfs: %.1f MB (%s)", k.arch.Name, float64(g.im.Size)/1e6, perf)
	g.accel, g.why = chooseAccel(ctx, cfg, k, g.im)
	if ctx.Err() != nil {
		return g, ctx.Err()
	}
	cfg.logf("%s accelerator: %s (%s)", k.arch.Name, g.accel, g.why)
	return g, nil
}

// modelStrategies are the model's curves the verdicts compare a kernel's
// with: the pre-2022 list walk and 6.1's histograms.
var modelStrategies = []string{"legacy", "linux"}

// runModel runs, on this host, the model's Tasks cases at each vCPU
// count of the cells that ran kernel-tasks, at the held counts from 64
// up: the curves each kernel's is held against (shapes only: the model's
// absolute times are not the kernel's).
func runModel(ctx context.Context, cfg *Config, m *Matrix) error {
	if !slices.Contains(cfg.Job.Experiments, "kernel-tasks") {
		return nil
	}
	o := bench.Options{Full: cfg.Job.Full, Seed: cfg.Job.Seed}
	seen := map[int]bool{}
	for _, c := range m.Cells {
		if !c.OK() || seen[c.CPUs] {
			continue
		}
		seen[c.CPUs] = true
		for _, s := range modelStrategies {
			for _, n := range bench.KernelTasksHeld(o) {
				if n < 64 {
					continue
				}
				cs := bench.ModelTasksCase(o, s, c.CPUs, n)
				r, err := cs.Run(ctx, 0, bench.NopTimer)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					cfg.logf("model %s: %v", cs.Name, err)
					continue
				}
				if r.Name == "" {
					r.Name = cs.Name
				}
				m.Model = append(m.Model, r)
			}
		}
	}
	if len(m.Model) > 0 {
		cfg.logf("model: %d Tasks cases for the verdicts (legacy, linux)", len(m.Model))
	}
	return nil
}

// cellSummary is a cell's one-line result for the log.
func cellSummary(c *Cell) string {
	s := c.Run.Conformance.Summary()
	if c.Guest != nil {
		s += fmt.Sprintf("; boot %.1fs, job %.1fs", c.Guest.UptimeStart, c.Guest.UptimeEnd-c.Guest.UptimeStart)
	}
	if n := len(c.Run.Failed); n > 0 {
		s += fmt.Sprintf("; %d case(s) FAILED", n)
	}
	return s
}

// DefaultTimeout bounds a VM cell: boot (a few seconds, 22 s at 32
// vCPUs under TCG), the conformance check, and the experiments' host
// estimate scaled by TCG's slowdown (about 15x) with room to spare, and
// by the vCPU count, which costs emulation time too.
func DefaultTimeout(estimate time.Duration, count, cpus int) time.Duration {
	count = max(count, 1)
	return 2*time.Minute + time.Duration(cpus)*2*time.Second + time.Duration(count)*estimate*time.Duration(40+cpus)
}

// resolve finds a spec's image: fetched for debian:, checked for a path.
func resolve(ctx context.Context, cfg *Config, s Spec) *resolved {
	k := &resolved{spec: s}
	if s.VM() {
		a, err := qemu.ArchOf(s.Arch)
		if err != nil {
			k.err = fmt.Errorf("%s: %w", s, err)
			return k
		}
		k.arch = a
	}
	switch s.Kind {
	case "host":
	case "debian":
		f := &debian.Fetcher{Cache: filepath.Join(cfg.Cache, "kernels"), Arch: s.Arch, Log: cfg.Log}
		dk, err := f.Fetch(ctx, s.Version)
		if err != nil {
			k.err = fmt.Errorf("%s: %w", s, err)
			return k
		}
		k.image, k.pkg, k.pkgVersion = dk.Image, dk.Package, dk.PackageVersion
	default:
		k.image = s.Path
	}
	if s.VM() {
		if err := CheckImage(k.image, k.arch); err != nil {
			k.err = fmt.Errorf("%s: %w", s, err)
		}
	}
	return k
}

// hostCell runs the job on the running kernel in this process.
func hostCell(ctx context.Context, cfg *Config, k *resolved) (*Cell, error) {
	c := &Cell{Name: cellName("host", runtime.NumCPU()), Label: "host", Kernel: k.spec, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Accel: "none", AccelWhy: "the running kernel, no VM", Release: kernelRelease()}
	job := cfg.Job
	job.Mode = ModeRun
	start := time.Now()
	run, err := cfg.Run(ctx, job, cfg.Log)
	c.Wall = time.Since(start)
	if ctx.Err() != nil {
		return c, ctx.Err()
	}
	if err != nil {
		c.Error = err.Error()
		return c, nil
	}
	if why := lacksBreakpoints(run); why != "" {
		c.Error = fmt.Sprintf("%v: the running kernel lacks perf events or hardware breakpoints here: %s", ErrCell, why)
		return c, nil
	}
	c.Perf = true
	annotate(run, c)
	c.Run = run
	return c, nil
}

// probeTimeout bounds the KVM probe boot: a working KVM guest reaches
// init in a second or two.
const probeTimeout = 20 * time.Second

// chooseAccel settles --accel: tcg and kvm as asked; auto tries KVM with
// a probe boot of k at one vCPU and falls back to TCG, saying why. A
// guest of another architecture than the host's has no KVM to try.
func chooseAccel(ctx context.Context, cfg *Config, k *resolved, im *Image) (string, string) {
	switch cfg.Accel {
	case "tcg":
		return "tcg", "--accel tcg"
	case "kvm":
		return "kvm", "--accel kvm"
	}
	if k.arch.Name != runtime.GOARCH {
		return "tcg", fmt.Sprintf("auto: KVM runs only guests of the host's architecture (%s); %s is emulated", runtime.GOARCH, k.arch.Name)
	}
	if why := qemu.KVMUsable(); why != "" {
		return "tcg", "auto: " + why
	}
	cfg.logf("accelerator: probing KVM with a %v boot of %s", probeTimeout, k.spec)
	enc, err := encodeJob(Job{Mode: ModeProbe, ResultsDev: k.arch.Results})
	if err != nil {
		return "tcg", "auto: " + err.Error()
	}
	boot, err := qemu.Run(ctx, qemu.Config{Arch: k.arch, Kernel: k.image, Initrd: im.File, CPUs: 1, Accel: "kvm",
		Append: enc, Timeout: probeTimeout})
	if err != nil {
		return "tcg", "auto: the KVM probe boot failed (" + firstLine(err.Error()) + lastConsoleLine(boot) + ")"
	}
	line := boot.Results
	if k.arch.Results == "" {
		line = boot.Console
	}
	frames, err := frame.Read(strings.NewReader(string(line)))
	if b, ok := frame.Find(frames, frameProbe); err == nil && ok {
		var info GuestInfo
		json.Unmarshal(b, &info)
		return "kvm", fmt.Sprintf("auto: a KVM probe boot reached init in %.1fs", info.UptimeStart)
	}
	return "tcg", "auto: the KVM probe boot ended without reaching init" + lastConsoleLine(boot)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func lastConsoleLine(b *qemu.Boot) string {
	if b == nil {
		return ""
	}
	t := strings.TrimSpace(qemu.Tail(b.Console, 1))
	if t == "(nothing)" {
		return "; the console stayed empty"
	}
	return "; last console line: " + t
}

// writeMatrix writes kernels.json, then the cross-kernel plots/ and
// report.md (packages charts and report) under cfg.Out.
func writeMatrix(cfg *Config, m *Matrix) error {
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(cfg.Out, runfile.MatrixFile), append(js, '\n')); err != nil {
		return err
	}
	if _, err := charts.PlotKernels(m, filepath.Join(cfg.Out, runfile.PlotsDir)); err != nil {
		return err
	}
	return writeFile(filepath.Join(cfg.Out, "report.md"), []byte(report.BuildKernels(m, cfg.Out)))
}

// Rewrite reads a kernels output directory (kernels.json and every
// cell's results) and writes its report.md and plots/ again, with this
// version's report code.
func Rewrite(dir string) (*Matrix, error) {
	m, err := runfile.LoadMatrix(dir)
	if err != nil {
		return nil, fmt.Errorf("kernels: %w", err)
	}
	return m, writeMatrix(&Config{Out: dir}, m)
}
