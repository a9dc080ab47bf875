package kernels

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"bpbench/bench/harness"
	"bpbench/kernels/frame"
	"bpbench/kernels/qemu"
	"bpbench/runfile"
)

// ErrCell is wrapped by the error of a cell that produced no results:
// the kernel panicked, hung, is not a kernel, or lacks what the
// experiments need.
var ErrCell = errors.New("cell failed")

// Cell is one (kernel, vCPU count) and what it produced; its schema lives
// with the results it points to (runfile.Cell).
type Cell = runfile.Cell

// cellName is the results directory name of a kernel at cpus vCPUs.
func cellName(label string, cpus int) string { return label + "-cpus" + strconv.Itoa(cpus) }

// vmCell boots k at cpus vCPUs with its architecture's guest, runs job
// inside and returns the cell, failed or not; the error is non-nil only
// when ctx was cancelled (the matrix stops).
func vmCell(ctx context.Context, cfg *Config, k *resolved, cpus int, g *guestOf, timeout time.Duration) (*Cell, error) {
	im := g.im
	c := &Cell{Name: cellName(k.spec.Label, cpus), Label: k.spec.Label, Kernel: k.spec, Arch: k.arch.Name, Image: k.image, Package: k.pkg,
		PackageVersion: k.pkgVersion, CPUs: cpus, Accel: g.accel, AccelWhy: g.why, Perf: im.Perf, PerfNote: im.PerfNote}
	job := cfg.Job
	job.Mode = ModeRun
	job.ResultsDev = k.arch.Results
	enc, err := encodeJob(job)
	if err != nil {
		return nil, err
	}
	boot, err := qemu.Run(ctx, qemu.Config{Arch: k.arch, Kernel: k.image, Initrd: im.File, CPUs: cpus,
		Accel: g.accel, Append: enc, Timeout: timeout, Console: cfg.Console})
	if boot != nil {
		c.Wall = boot.Wall
		c.Console = boot.Console
	}
	if ctx.Err() != nil {
		return c, ctx.Err()
	}
	if err != nil {
		c.Error = fmt.Sprintf("%s at %d vCPUs: %v", k.spec, cpus, err)
		return c, nil
	}
	run, info, err := collect(boot, k.arch)
	c.Guest = info
	if info != nil {
		c.Release = info.Kernel
	}
	if err != nil {
		c.Error = fmt.Sprintf("%s at %d vCPUs: %v", k.spec, cpus, err)
		return c, nil
	}
	if why := lacksBreakpoints(run); why != "" {
		c.Error = fmt.Sprintf("%s at %d vCPUs: %v: the kernel lacks perf events or hardware breakpoints: %s; console ends:\n%s", k.spec, cpus, ErrCell, why, qemu.Tail(c.Console, 10))
		return c, nil
	}
	// The guest binary carries no VCS stamp (it may be a fresh build
	// of the same tree): the run is this checkout's.
	host := harness.CollectMachine()
	run.Machine.Commit, run.Machine.Dirty = host.Commit, host.Dirty
	annotate(run, c)
	c.Run = run
	return c, nil
}

// collect reads the guest's frames and decodes its results.
func collect(boot *qemu.Boot, arch qemu.Arch) (*runfile.Run, *GuestInfo, error) {
	line := boot.Results
	if arch.Results == "" {
		line = boot.Console
	}
	frames, ferr := frame.Read(bytes.NewReader(line))
	var info *GuestInfo
	if b, ok := frame.Find(frames, frameGuest); ok {
		info = &GuestInfo{}
		if err := json.Unmarshal(b, info); err != nil {
			info = nil
		}
	}
	if ferr != nil {
		return nil, info, fmt.Errorf("%w: the results came back damaged: %v; console ends:\n%s", ErrCell, ferr, qemu.Tail(boot.Console, 10))
	}
	if b, ok := frame.Find(frames, frameError); ok {
		return nil, info, fmt.Errorf("%w: the guest failed: %s; console ends:\n%s", ErrCell, b, qemu.Tail(boot.Console, 10))
	}
	z, ok := frame.Find(frames, frameResults)
	if !ok {
		what := "the guest powered off without sending results"
		con := string(boot.Console)
		switch {
		case strings.Contains(con, "Attempted to kill init"):
			what = "init (bpbench) exited or crashed, and the kernel panicked"
		case strings.Contains(con, "Kernel panic"):
			what = "the kernel panicked"
		case !strings.Contains(con, "bpbench-guest: up"):
			what = "init never started (the console shows no bpbench-guest line)"
		}
		return nil, info, fmt.Errorf("%w: %s; console ends:\n%s", ErrCell, what, qemu.Tail(boot.Console, 15))
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, info, fmt.Errorf("%w: results: %v", ErrCell, err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		return nil, info, fmt.Errorf("%w: results: %v", ErrCell, err)
	}
	var run runfile.Run
	if err := json.Unmarshal(js, &run); err != nil {
		return nil, info, fmt.Errorf("%w: results: %v", ErrCell, err)
	}
	return &run, info, nil
}

// lacksBreakpoints says why a run shows a kernel without the breakpoint
// PMU (conform could not open a breakpoint), or "".
func lacksBreakpoints(run *runfile.Run) string {
	r := run.Conformance
	switch {
	case r == nil:
		for _, f := range run.Failed {
			if f.Experiment == "conform" {
				return f.Error
			}
		}
		return "no conformance check in the results"
	case len(r.Strategies) == 0 && r.Note != "":
		return r.Note
	}
	return ""
}

// annotate records where the cell ran in every result and in the
// machine record, so results.json, bench.txt and compare carry it.
func annotate(run *runfile.Run, c *Cell) {
	for i := range run.Results {
		p := run.Results[i].Params
		if p == nil {
			p = map[string]string{}
			run.Results[i].Params = p
		}
		p["kernel_label"] = c.Label
		p["vcpus"] = strconv.Itoa(c.CPUs)
		p["accel"] = c.Accel
		if c.Accel != "none" {
			p["vm"] = "qemu"
		}
	}
	if c.Accel != "none" {
		run.Machine.Host = fmt.Sprintf("%s (%s) under QEMU %s", c.Label, c.Arch, strings.ToUpper(c.Accel))
	}
}

// writeCell writes the cell's directory under out atomically: the
// results (through cfg.Write) with a note on where they ran at the top
// of report.md, the console log and cell.json.
func writeCell(cfg *Config, c *Cell) error {
	tmp, err := os.MkdirTemp(cfg.Out, "."+c.Name+".partial-")
	if err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if c.Run != nil {
		if err := cfg.Write(tmp, c.Run); err != nil {
			return err
		}
		rp := filepath.Join(tmp, "report.md")
		if old, err := os.ReadFile(rp); err == nil {
			if err := writeFile(rp, append([]byte(cellNote(c)+"\n"), old...)); err != nil {
				return err
			}
		}
	}
	if c.Console != nil {
		if err := writeFile(filepath.Join(tmp, "console.log"), c.Console); err != nil {
			return err
		}
	}
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(tmp, "cell.json"), append(js, '\n')); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(cfg.Out, c.Name)); err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	done = true
	return nil
}

// cellNote is the paragraph that opens a cell's report.md.
func cellNote(c *Cell) string {
	if c.Accel == "none" {
		return fmt.Sprintf("> Cell %s: the running kernel (%s), %d CPUs, no VM.\n", c.Name, c.Release, c.CPUs)
	}
	pkg := ""
	if c.Package != "" {
		pkg = fmt.Sprintf(", package %s %s", c.Package, c.PackageVersion)
	}
	return fmt.Sprintf("> Cell %s: %s kernel %s (%s%s) under QEMU %s with %d vCPUs (%s). "+
		"Times are emulated%s: compare shapes within this kernel, and kernels with each other at the same vCPU count, not absolute times with the host.\n",
		c.Name, c.Arch, c.Kernel, c.Release, pkg, strings.ToUpper(c.Accel), c.CPUs, c.AccelWhy, tcgFactorNote(c.Accel))
}

func tcgFactorNote(accel string) string {
	if accel == "tcg" {
		return " (TCG: about 15x native, and work that crosses CPUs costs emulation time too)"
	}
	return ""
}

// writeFile writes data to path through a temporary file and a rename.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("kernels: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("kernels: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("kernels: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
