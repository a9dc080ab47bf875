package bench

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/hwregs"
	"bpbench/internal/testenv"
)

func BenchmarkKernelTasks(b *testing.B) {
	testenv.LockDebugRegs(b)
	runCases(b, "KernelTasks", casesOf(b, "kernel-tasks", Options{}))
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestHoldTaskBreakpoints holds one breakpoint on each of 64 threads and
// checks the kernel counts it against that thread: three more fit on it,
// not four. Releasing closes every fd.
func TestHoldTaskBreakpoints(t *testing.T) {
	err := hwregs.PerfSupported()
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	testenv.LockDebugRegs(t)
	before := openFDs(t)
	attr := hwregs.PerfAttr(hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&kernelTasksHeldVar))), Len: 8, Type: hwregs.Write})
	h, err := holdTaskBreakpoints(context.Background(), 64, &attr, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer h.release()
	if len(h.tids) != 64 || len(h.fds) != 64 {
		t.Fatalf("holding %d fds on %d threads, want 64", len(h.fds), len(h.tids))
	}
	for _, tid := range []int{h.tids[0], h.tids[63]} {
		var extra []int
		for {
			fd, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
			if err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					t.Fatalf("thread %d: %v, want ENOSPC at the limit", tid, err)
				}
				break
			}
			extra = append(extra, fd)
		}
		for _, fd := range extra {
			unix.Close(fd)
		}
		if len(extra) != 3 {
			t.Errorf("thread %d took %d more breakpoints, want 3 (it holds one of 4)", tid, len(extra))
		}
	}
	if err := h.release(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d fds open after release, %d before", after, before)
	}
}

// TestKernelTasksCase runs one case of each target on the host and checks
// its result: name, op count, the p50 sub-samples that give its interval.
func TestKernelTasksCase(t *testing.T) {
	err := hwregs.PerfSupported()
	testenv.SkipIfUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range kernelTasksTargets {
		res, err := kernelTasksRun(context.Background(), Options{}, tg, 64, 512, NopTimer)
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		if res.Name != KernelTasksName(tg, 64) || res.Iterations != 512 || res.NsPerOp <= 0 {
			t.Errorf("%s: name %q, %d ops, %v ns/op", tg, res.Name, res.Iterations, res.NsPerOp)
		}
		if n := len(res.Batches["p50-ns"]); n != kernelTasksRecs {
			t.Errorf("%s: %d p50 sub-samples, want %d", tg, n, kernelTasksRecs)
		}
		if n := len(res.Batches["p50/ref"]); n != kernelTasksRecs || res.Metrics["ref-p50-ns"] <= 0 {
			t.Errorf("%s: %d sub-samples over the reference, reference p50 %v", tg, n, res.Metrics["ref-p50-ns"])
		}
		if res.Params["held"] != "64" || res.Params["target"] != tg {
			t.Errorf("%s: params %v", tg, res.Params)
		}
	}
	if _, err := kernelTasksRun(context.Background(), Options{}, "nope", 0, 16, NopTimer); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("an unknown target: err = %v", err)
	}
}

// TestKernelSeriesScales checks that the series' benchmark is sized to
// the CPU count it is given.
func TestKernelSeriesScales(t *testing.T) {
	for _, cpus := range []int{2, 8, 32} {
		ps := kernelSeriesParams(Options{}, cpus)
		if len(ps) != 1 || ps[0].Parallelism != cpus || ps[0].Threads != min(cpus, 8) || ps[0].Repeat*ps[0].Threads*ps[0].Parallelism < seriesMinThreads || ps[0].Repeat < seriesMinRepeat || ps[0].Breakpoints != 4 || ps[0].validate() != nil {
			t.Errorf("%d CPUs: %+v", cpus, ps)
		}
		full := kernelSeriesParams(Options{Full: true}, cpus)
		if len(full) != 2 || full[1].Threads <= full[0].Threads {
			t.Errorf("%d CPUs, full: %+v", cpus, full)
		}
	}
}

// TestPairedLoopDoesNotAllocate checks the measured loop makes no
// allocation per op.
func TestPairedLoopDoesNotAllocate(t *testing.T) {
	testenv.SkipUnderRace(t)
	nop := func(int64) error { return nil }
	ps, err := pairedLoop(context.Background(), NopTimer, 1, nop, nop)
	if err != nil || ps.done != 1 {
		t.Fatal(err)
	}
	a := testing.AllocsPerRun(5, func() { pairedLoop(context.Background(), NopTimer, 0, nop, nop) })
	b := testing.AllocsPerRun(5, func() { pairedLoop(context.Background(), NopTimer, 1000, nop, nop) })
	if b > a {
		t.Errorf("1000 ops allocate %v, none %v: the loop allocates per op", b, a)
	}
}
