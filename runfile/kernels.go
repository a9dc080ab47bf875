package runfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"bpbench/bench"
)

// The schema of what `bpbench kernels` writes: kernels.json (a Matrix of
// Cells) beside one results directory per cell. Package kernels runs the
// cells; the cross-kernel report and plots read them from here.

// MatrixFile is the matrix's file in a kernels output directory.
const MatrixFile = "kernels.json"

// Matrix is what a `bpbench kernels` run produced: kernels.json.
type Matrix struct {
	// Arch is the guests' architectures, comma-separated ("amd64",
	// "amd64,arm64"); each cell names its own.
	Arch string `json:"arch"`
	// Accel and AccelWhy are the VM cells' accelerator and why, as the
	// run settled it (each cell carries its own: an arm64 guest on an
	// amd64 host has no KVM).
	Accel    string    `json:"accel"`
	AccelWhy string    `json:"accel_why"`
	Job      KernelJob `json:"job"`
	Started  time.Time `json:"started"`
	// Duration is the whole run's.
	Duration time.Duration `json:"duration_ns"`
	Cells    []*Cell       `json:"cells"`
	// Model holds the model's Tasks cases run on the host for the
	// verdicts: legacy and linux at each vCPU count of the cells.
	Model []bench.Result `json:"model,omitempty"`
}

// KernelJob is what every guest of a matrix is asked to do. It travels on
// the kernel command line (package kernels encodes it).
type KernelJob struct {
	// Mode is "run" (conform, then the experiments), "probe" (report
	// that init started and power off: the KVM probe), or "hang" (never
	// finish: for testing timeouts).
	Mode        string   `json:"mode"`
	Experiments []string `json:"experiments,omitempty"`
	Strategies  []string `json:"strategies,omitempty"`
	Full        bool     `json:"full,omitempty"`
	Count       int      `json:"count,omitempty"`
	Seed        int64    `json:"seed,omitempty"`
	// ResultsDev is the guest's device for the results line ("ttyS1";
	// "" sends results on the console).
	ResultsDev string `json:"results_dev,omitempty"`
	// ConformTrace records the kernel's side of the lockstep check in
	// the results (conform.Report.Trace), for replaying it elsewhere.
	ConformTrace bool `json:"conform_trace,omitempty"`
}

// KernelSpec is one kernel of a matrix: a Debian kernel by version, the
// running kernel, or an image file, for one architecture.
type KernelSpec struct {
	// Kind is "debian", "host" or "path".
	Kind string `json:"kind"`
	// Version is a Debian kernel's version ("6.1").
	Version string `json:"version,omitempty"`
	// Path is an image file's path.
	Path string `json:"path,omitempty"`
	// Arch is the guest architecture ("amd64", "arm64"; the host's for
	// the host).
	Arch string `json:"arch,omitempty"`
	// Label names the kernel's cells: debian-6.1, debian-6.1-arm64, host,
	// or the file's name; an architecture other than amd64 is part of it.
	Label string `json:"label"`
}

// String is the spec as written on the command line.
func (s KernelSpec) String() string {
	switch s.Kind {
	case "debian":
		return "debian:" + s.Version
	case "host":
		return "host"
	}
	return s.Path
}

// VM says whether the spec's cells boot under QEMU.
func (s KernelSpec) VM() bool { return s.Kind != "host" }

// Cell is one (kernel, vCPU count) and what it produced.
type Cell struct {
	// Name is the results directory's name, "<label>-cpus<N>".
	Name   string     `json:"name"`
	Label  string     `json:"label"`
	Kernel KernelSpec `json:"kernel"`
	// Arch is the architecture the cell's kernel ran on.
	Arch string `json:"arch,omitempty"`
	// Image, Package and PackageVersion say which kernel booted.
	Image          string `json:"image,omitempty"`
	Package        string `json:"package,omitempty"`
	PackageVersion string `json:"package_version,omitempty"`
	// Release is the kernel's own uname -r.
	Release string `json:"release,omitempty"`
	CPUs    int    `json:"cpus"`
	// Accel is "tcg", "kvm", or "none" (the host cell), and AccelWhy why.
	Accel    string `json:"accel"`
	AccelWhy string `json:"accel_why,omitempty"`
	// Wall is QEMU's start to its exit (boot to results and power-off),
	// or the host cell's run.
	Wall time.Duration `json:"wall_ns"`
	// Guest is what the guest said about itself.
	Guest *GuestInfo `json:"guest,omitempty"`
	// Perf says whether perf ran inside (PerfNote why not).
	Perf     bool   `json:"perf"`
	PerfNote string `json:"perf_note,omitempty"`
	// Error is set when the cell failed.
	Error string `json:"error,omitempty"`
	// Run is the cell's results (not in kernels.json: the cell's
	// results.json has it).
	Run *Run `json:"-"`
	// Console is the guest's console log (the cell's console.log).
	Console []byte `json:"-"`
}

// OK says whether the cell produced results.
func (c *Cell) OK() bool { return c.Error == "" && c.Run != nil }

// GuestInfo is what a guest says about itself besides the results.
type GuestInfo struct {
	// UptimeStart and UptimeEnd are /proc/uptime when init started and
	// when the results were sent: the boot's cost and the job's.
	UptimeStart float64 `json:"uptime_start_s"`
	UptimeEnd   float64 `json:"uptime_end_s"`
	Kernel      string  `json:"kernel"`
	CPUs        int     `json:"cpus"`
	// NoFile is the RLIMIT_NOFILE init raised itself to.
	NoFile uint64 `json:"nofile"`
}

// LoadMatrix reads a kernels output directory: kernels.json and every
// successful cell's results.
func LoadMatrix(dir string) (*Matrix, error) {
	path := filepath.Join(dir, MatrixFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (want a directory written by `bpbench kernels`)", err)
	}
	var m Matrix
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range m.Cells {
		if c.Arch == "" {
			// Written before a matrix could hold several architectures:
			// one, the matrix's.
			c.Arch, _, _ = strings.Cut(m.Arch, ",")
		}
		if c.Error != "" {
			continue
		}
		if c.Run, err = Load(filepath.Join(dir, c.Name)); err != nil {
			return nil, fmt.Errorf("cell %s: %w", c.Name, err)
		}
	}
	return &m, nil
}
