package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/internal/child"
)

// The kernel experiment's workloads run in a copy of this binary, in the
// child modes "kernel-thread" and "kernel-enable" (package internal/child),
// with their integer arguments, space separated, in kernelArgsEnv.
const kernelArgsEnv = "BPBENCH_KERNEL_ARGS"

// kernelModes are the workloads' names, as startKernelChild takes them.
var kernelModes = []string{"thread", "enable"}

func init() {
	for _, mode := range kernelModes {
		child.Add("kernel-"+mode, func() int { return kernelChildMain(mode, os.Getenv(kernelArgsEnv)) })
	}
}

// kernelWatched are the watched bytes, perf bench's breakpoints[i].watched.
// The child is this same binary, so (unless it is built as a PIE) they sit
// at the same address there; the touch mode checks that before relying on
// it. Nothing else touches them.
var kernelWatched [4]byte

func kernelWatchAddr() uint64 { return uint64(uintptr(unsafe.Pointer(&kernelWatched[0]))) }

// kernelChildMain runs the child side and returns its exit status.
func kernelChildMain(mode, args string) int {
	var a []int
	for _, f := range strings.Fields(args) {
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", kernelArgsEnv, args, err)
			return 2
		}
		a = append(a, n)
	}
	var err error
	switch {
	case mode == "thread" && len(a) == 6:
		if a[4] != 0 && uint64(a[5]) != kernelWatchAddr() {
			err = fmt.Errorf("watched bytes at %#x here, %#x in the parent (a PIE build?): touch mode cannot check counts", kernelWatchAddr(), a[5])
			break
		}
		err = threadChild(a[0], a[1], a[2], a[3], a[4] != 0)
	case mode == "enable" && len(a) == 2:
		err = enableChild(a[0], a[1])
	default:
		err = fmt.Errorf("bad child mode %q args %q", mode, args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// threadChild is breakpoint_thread: parallel goroutines take batches from a
// shared counter and each batch starts threads workers, lets them all
// start, releases and joins them. A worker locks its OS thread and returns
// still locked, so the runtime destroys the thread; the next worker needs a
// thread the runtime has to create (clone), which inherits the
// breakpoints. It prints the elapsed µs and how many distinct thread ids
// the workers ran on.
func threadChild(repeat, parallel, threads, nbp int, touch bool) error {
	var watched []byte
	var touchMu sync.Mutex // the workers' writes would race otherwise; the lock's own accesses are elsewhere
	if touch {
		watched = kernelWatched[:nbp]
	}
	// Workers record their thread id in the order they start, over all
	// the parallel goroutines, for the windowed distinctness check.
	tids := make([]int32, repeat*threads)
	var seq atomic.Int64
	left := atomic.Int64{}
	left.Store(int64(repeat))
	var wg sync.WaitGroup
	start := time.Now()
	for p := 0; p < parallel; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				var started, joined sync.WaitGroup
				done := make(chan struct{})
				for i := 0; i < threads; i++ {
					started.Add(1)
					joined.Add(1)
					go func() {
						runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
						tids[seq.Add(1)-1] = int32(unix.Gettid())
						if watched != nil {
							touchMu.Lock()
							for j := range watched {
								watched[j] = 1
							}
							touchMu.Unlock()
						}
						started.Done()
						<-done
						joined.Done()
					}()
				}
				started.Wait()
				close(done)
				joined.Wait()
			}
		}(p)
	}
	wg.Wait()
	elapsed := time.Since(start)
	window := tidWindow(len(tids))
	fmt.Printf("usec=%g workers=%d distinct=%d window=%d\n", float64(elapsed.Nanoseconds())/1e3, len(tids), distinctWithin(tids, window), window)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// tidWindow is the distinctness window for n workers: a quarter of
// /proc/sys/kernel/pid_max (the kernel's default minimum, 32768, when it
// cannot be read), and at most n.
func tidWindow(n int) int {
	pidMax := 32768
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			pidMax = v
		}
	}
	return max(1, min(n, pidMax/4))
}

// distinctWithin counts the entries of ids that differ from each of the
// window-1 entries before them.
func distinctWithin(ids []int32, window int) int {
	last := make(map[int32]int, min(len(ids), window))
	n := 0
	for i, id := range ids {
		if j, ok := last[id]; !ok || i-j >= window {
			n++
		}
		last[id] = i
	}
	return n
}

// enableChild starts passive threads blocked in the kernel and active ones
// spinning, says "ready", and keeps them until its stdin closes.
func enableChild(passive, active int) error {
	var stop atomic.Bool
	done := make(chan struct{})
	var started, joined sync.WaitGroup
	for i := 0; i < passive+active; i++ {
		started.Add(1)
		joined.Add(1)
		go func(spin bool) {
			defer joined.Done()
			runtime.LockOSThread()
			started.Done()
			if spin {
				for !stop.Load() {
				}
				return
			}
			<-done // a locked goroutine parks its thread in futex_wait
		}(i >= passive)
	}
	started.Wait()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	close(done)
	joined.Wait()
	return nil
}
