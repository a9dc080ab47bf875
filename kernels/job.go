package kernels

import (
	"bpbench/internal/child"
	"bpbench/runfile"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// Job is what a guest is asked to do (runfile.KernelJob). It travels on
// the kernel command line as BPBENCH_JOB=<base64 JSON>: the kernel hands
// unknown "name=value" parameters to init as environment variables, so
// one initramfs serves every cell.
type Job = runfile.KernelJob

// Job modes.
const (
	ModeRun   = "run"
	ModeProbe = "probe"
	ModeHang  = "hang"
)

// GuestMode is the child mode (internal/child) a guest's init runs in: the
// kernel command line sets it beside the job, and the binary's child hook
// (cli.Main) hands process 1 to GuestMain.
const GuestMode = "guest-init"

// jobEnv is the variable the job arrives in.
const jobEnv = "BPBENCH_JOB"

// encodeJob is the kernel command line's part that makes a guest's init
// run the job: the child mode that selects GuestMain, and the job itself.
func encodeJob(j Job) ([]string, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return []string{child.Env(GuestMode), jobEnv + "=" + base64.RawURLEncoding.EncodeToString(b)}, nil
}

func decodeJob(s string) (Job, error) {
	var j Job
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return j, fmt.Errorf("kernels: %s: %w", jobEnv, err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("kernels: %s: %w", jobEnv, err)
	}
	return j, nil
}

// Runner runs a job's conformance check and experiments in this process
// and returns the run, as `bpbench run` would record it. The CLI
// provides it (it owns the experiment runner); the guest calls it inside
// each kernel, and a `host` cell calls it on the running kernel.
type Runner func(ctx context.Context, job Job, log io.Writer) (*runfile.Run, error)
