// Package conform checks the model against the running kernel: it drives
// one random sequence of breakpoint opens and closes through
// perf_event_open(PERF_TYPE_BREAKPOINT) on live threads and, in lockstep,
// through every registered alloc strategy, and reports where they agree.
// It also probes the kernel facts the model takes for granted (Facts).
//
// The model is only as good as this check: the admission formulas of
// kernel/events/hw_breakpoint.c (see alloc) must predict the kernel's
// ENOSPC op by op for CPU-bound, task-on-every-CPU and task-on-one-CPU
// breakpoints, data and instruction alike.
package conform

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/hwregs"
	"bpbench/internal/kernlock"
	"bpbench/internal/support"
)

// ErrUnavailable is wrapped by Run's and Facts' errors when this machine
// cannot take part: no permission for CPU-bound breakpoints, no breakpoint
// PMU, a machine the model cannot represent, or not Linux. The message
// says which.
var ErrUnavailable = support.New("kernel conformance check unavailable")

// Options size one lockstep sequence.
type Options struct {
	// Ops is the number of opens and closes in the sequence (default 400).
	Ops int
	// Threads is the number of live threads that task breakpoints bind to
	// (default 3).
	Threads int
	// Seed seeds the sequence; the same seed on the same machine gives the
	// same sequence.
	Seed int64
	// Strategies to check (nil: every registered one).
	Strategies []string
	// MaxDivergences bounds how many divergences a strategy lists in full
	// (default 10); all are counted.
	MaxDivergences int
	// Trace records the kernel's side of the sequence in Report.Trace,
	// for Replay.
	Trace bool
}

// Report is the outcome of one lockstep sequence.
type Report struct {
	// CPUs, Slots and InstSlots are the configuration the model was
	// given (alloc.Config), probed from the kernel: online CPUs, the data
	// watchpoints one thread could hold, and the instruction breakpoints,
	// 0 when they share the data pool (x86).
	CPUs      int `json:"cpus"`
	Slots     int `json:"slots"`
	InstSlots int `json:"inst_slots,omitempty"`
	// Arch is the architecture the check ran on (GOARCH).
	Arch string `json:"arch,omitempty"`
	// Clean says whether nobody else held breakpoints when the sequence
	// started (Slots CPU-bound ones fit on every CPU); Note says what was
	// found otherwise. An unclean start makes divergences meaningless.
	Clean   bool   `json:"clean"`
	Note    string `json:"note,omitempty"`
	Seed    int64  `json:"seed"`
	Threads int    `json:"threads"`
	// Opens, Admitted and Refused count the kernel's answers; Closes the
	// releases.
	Opens    int `json:"opens"`
	Admitted int `json:"admitted"`
	Refused  int `json:"refused"`
	Closes   int `json:"closes"`
	// Inst counts the opens that were instruction breakpoints, and
	// InstRefused those of them the kernel refused.
	Inst        int         `json:"inst_opens"`
	InstRefused int         `json:"inst_refused"`
	Strategies  []Agreement `json:"strategies"`
	// Facts are the kernel facts probed alongside (see Facts).
	Facts []Fact `json:"facts,omitempty"`
	// Trace is the kernel's side of the sequence (Options.Trace), in
	// Replay's format.
	Trace []string `json:"trace,omitempty"`
}

// Pools returns the instruction and data pools the model was configured
// with: "4 shared" when InstSlots is 0.
func (r *Report) Pools() Pools {
	if r.InstSlots == 0 {
		return Pools{Data: r.Slots, Inst: r.Slots, Shared: true}
	}
	return Pools{Data: r.Slots, Inst: r.InstSlots}
}

// Agreement is one strategy's record against the kernel.
type Agreement struct {
	Strategy string `json:"strategy"`
	// Agreed counts opens the strategy answered as the kernel did.
	Agreed int `json:"agreed"`
	// Diverged counts the others, listed (up to MaxDivergences) in
	// Divergences.
	Diverged    int          `json:"diverged"`
	Divergences []Divergence `json:"divergences,omitempty"`
}

// Divergence is one open where a strategy and the kernel disagreed.
type Divergence struct {
	// Op is the op's position in the sequence.
	Op      int    `json:"op"`
	Request string `json:"request"`
	Kernel  string `json:"kernel"` // "admitted" or "ENOSPC"
	Model   string `json:"model"`
	// Before is the live state just before the op, one breakpoint a line.
	Before []string `json:"before"`
}

// Agrees reports whether every checked strategy agreed on every open, on
// a clean start.
func (r *Report) Agrees() bool {
	if r == nil || !r.Clean {
		return false
	}
	for _, a := range r.Strategies {
		if a.Diverged > 0 {
			return false
		}
	}
	return true
}

// Summary is the one-line verdict, e.g. "model agreed with the kernel on
// 400 opens (212 admitted, 188 refused)".
func (r *Report) Summary() string {
	if r == nil {
		return "model not checked against the kernel"
	}
	if !r.Clean {
		return "model not checked against the kernel: " + r.Note
	}
	var bad []string
	for _, a := range r.Strategies {
		if a.Diverged > 0 {
			bad = append(bad, fmt.Sprintf("%s diverged on %d", a.Strategy, a.Diverged))
		}
	}
	if len(bad) > 0 {
		return fmt.Sprintf("model DISAGREED with the kernel on %d opens (%d admitted, %d refused): %s", r.Opens, r.Admitted, r.Refused, strings.Join(bad, ", "))
	}
	return fmt.Sprintf("model agreed with the kernel on %d opens (%d admitted, %d refused)", r.Opens, r.Admitted, r.Refused)
}

// watched are the data addresses breakpoints are placed on; nobody
// touches them, so no breakpoint ever fires.
var watched [64]uint64

func dataAttr(i int) hwregs.Attr {
	return hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&watched[i%len(watched)]))), Len: 8, Type: hwregs.Write}
}

//go:noinline
func instTarget() int { return len(watched) }

func instAttr() hwregs.Attr {
	return hwregs.Attr{Addr: funcAddr(instTarget), Len: 1, Type: hwregs.Exec}
}

// funcAddr returns the entry address of f.
func funcAddr(f func() int) uint64 { return uint64(reflect.ValueOf(f).Pointer()) }

// OnlineCPUs returns the number of CPUs breakpoints can be bound to, from
// /sys/devices/system/cpu/online, which must be a single range from 0.
func OnlineCPUs() (int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s := strings.TrimSpace(string(b))
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	if lo != "0" || strings.Contains(hi, ",") {
		return 0, fmt.Errorf("%w: online CPUs %q are not one range from 0", ErrUnavailable, s)
	}
	n, err := strconv.Atoi(hi)
	if err != nil {
		return 0, fmt.Errorf("%w: online CPUs %q: %w", ErrUnavailable, s, err)
	}
	return n + 1, nil
}

// classify maps an open's error to admitted (nil), refused (ErrNoSlot) or
// a failure of the check itself.
func classify(err error) (admitted bool, _ error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, alloc.ErrNoSlot):
		return false, nil
	case support.Missing(err):
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return false, err
}

// Run drives the lockstep sequence, holding the machine-wide
// debug-register lock throughout, and returns its report (with Facts).
// It fails with ErrUnavailable when this machine cannot run it.
func Run(ctx context.Context, o Options) (*Report, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w: needs Linux, this is %s/%s", ErrUnavailable, runtime.GOOS, runtime.GOARCH)
	}
	if o.Ops == 0 {
		o.Ops = 400
	}
	if o.Threads == 0 {
		o.Threads = 3
	}
	if o.MaxDivergences == 0 {
		o.MaxDivergences = 10
	}
	if o.Ops < 0 || o.Threads < 1 || o.Threads > 64 || o.MaxDivergences < 0 {
		return nil, fmt.Errorf("%w: conform options Ops = %d (>= 1), Threads = %d (1..64), MaxDivergences = %d (>= 0)", alloc.ErrInvalid, o.Ops, o.Threads, o.MaxDivergences)
	}
	names := o.Strategies
	if names == nil {
		names = alloc.Strategies()
	}
	cpus, err := OnlineCPUs()
	if err != nil {
		return nil, err
	}
	lk, err := kernlock.Acquire()
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()

	threads, err := startThreads(o.Threads)
	if err != nil {
		return nil, err
	}
	defer threads.stop()

	pools, err := probePools(threads.tids[0])
	if err != nil {
		return nil, err
	}
	cfg := pools.Config(cpus)
	r := &Report{CPUs: cpus, Slots: cfg.Slots, InstSlots: cfg.InstSlots, Arch: runtime.GOARCH, Seed: o.Seed, Threads: o.Threads}
	if r.Clean, r.Note, err = cleanStart(cpus, pools); err != nil {
		return nil, err
	}
	facts, err := probeFacts(ctx, threads.tids[0], pools)
	if err != nil {
		return nil, err
	}
	r.Facts = facts
	if !r.Clean {
		return r, nil
	}
	if err := lockstep(ctx, r, o, names, threads.tids); err != nil {
		return nil, err
	}
	return r, nil
}

// lockstep runs the sequence itself: each op is made on the kernel,
// then asked of every strategy with the kernel's answer (models).
func lockstep(ctx context.Context, r *Report, o Options, names []string, tids []int) (err error) {
	m, err := newModels(alloc.Config{CPUs: r.CPUs, Slots: r.Slots, InstSlots: r.InstSlots}, names, o.MaxDivergences)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range m.held {
			if cerr := l.ev.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		r.Strategies = m.agree
	}()
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x636f6e666f726d))
	// Close about as often as open once the machine is near full, so
	// the sequence keeps crossing the admission boundary of each pool.
	capacity := r.CPUs * (r.Slots + r.InstSlots)
	instShare := 4 // a quarter of the opens: x86's one pool
	if r.InstSlots > 0 {
		// A pool of its own fills only if instruction opens come about
		// as often as its share of the capacity.
		instShare = 2
	}
	for op := 0; op < o.Ops; op++ {
		if op%32 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if len(m.held) > 0 && rng.IntN(3*capacity) < len(m.held) {
			l, err := m.close(rng.IntN(len(m.held)))
			if cerr := l.ev.Close(); cerr != nil {
				return cerr
			}
			if err != nil {
				return err
			}
			r.Closes++
			if o.Trace {
				r.Trace = append(r.Trace, traceClose(op, l.op))
			}
			continue
		}
		req := randomRequest(rng, r.CPUs, len(tids), instShare)
		pid, cpu := -1, req.CPU
		if req.Task != alloc.NoTask {
			pid = tids[req.Task]
		}
		ev, oerr := hwregs.OpenPerf(attrOf(req.Kind, op), pid, cpu)
		admitted, err := classify(oerr)
		if err != nil {
			return fmt.Errorf("conform: op %d %v: %w", op, req, err)
		}
		r.Opens++
		if admitted {
			r.Admitted++
		} else {
			r.Refused++
		}
		if req.Kind == alloc.Inst {
			r.Inst++
			if !admitted {
				r.InstRefused++
			}
		}
		if o.Trace {
			r.Trace = append(r.Trace, traceOpen(op, req, admitted))
		}
		if err := m.open(op, req, ev, admitted); err != nil {
			if ev != nil {
				ev.Close()
			}
			return err
		}
	}
	return nil
}

// randomRequest draws a target: CPU-bound on a random CPU, a thread on
// every CPU, or a thread on one CPU; one in instShare are instruction
// breakpoints.
func randomRequest(rng *rand.Rand, cpus, threads, instShare int) alloc.Request {
	kind := alloc.Data
	if rng.IntN(instShare) == 0 {
		kind = alloc.Inst
	}
	switch rng.IntN(10) {
	case 0, 1, 2:
		return alloc.Request{Task: alloc.NoTask, CPU: rng.IntN(cpus), Kind: kind}
	case 3, 4, 5, 6:
		return alloc.Request{Task: rng.IntN(threads), CPU: alloc.AnyCPU, Kind: kind}
	}
	return alloc.Request{Task: rng.IntN(threads), CPU: rng.IntN(cpus), Kind: kind}
}

// cleanStart checks that each pool's worth of CPU-bound breakpoints fits
// on every CPU, which holds only when no other task or CPU holds one.
func cleanStart(cpus int, p Pools) (clean bool, note string, err error) {
	kinds := []alloc.Kind{alloc.Data}
	if !p.Shared {
		kinds = append(kinds, alloc.Inst)
	}
	for c := 0; c < cpus; c++ {
		for _, k := range kinds {
			want := p.Data
			if k == alloc.Inst {
				want = p.Inst
			}
			n, err := fill(-1, c, k, want)
			if err != nil {
				return false, "", err
			}
			if n < want {
				return false, fmt.Sprintf("only %d of %d CPU-bound %s breakpoints fit on CPU %d: another process holds breakpoints", n, want, k, c), nil
			}
		}
	}
	return true, "", nil
}

// fill opens breakpoints of kind k on (pid, cpu) until the kernel refuses
// or limit are open, closes them all, and returns how many fit.
func fill(pid, cpu int, k alloc.Kind, limit int) (n int, err error) {
	var evs []*hwregs.PerfEvent
	defer func() { closeAll(evs, &err) }()
	for len(evs) < limit {
		e, oerr := hwregs.OpenPerf(attrOf(k, len(evs)), pid, cpu)
		ok, err := classify(oerr)
		if err != nil {
			return len(evs), err
		}
		if !ok {
			break
		}
		evs = append(evs, e)
	}
	return len(evs), nil
}

// threadSet is a set of parked OS threads that task breakpoints bind to.
type threadSet struct {
	tids []int
	quit chan struct{}
	done chan struct{}
}

// startThreads starts n goroutines locked to their own OS threads. The
// goroutines exit without unlocking, so their threads end with them and no
// later goroutine runs on a thread that held breakpoints.
func startThreads(n int) (*threadSet, error) {
	ts := &threadSet{quit: make(chan struct{}), done: make(chan struct{}, n)}
	tids := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-ts.quit
			ts.done <- struct{}{}
		}()
	}
	for i := 0; i < n; i++ {
		ts.tids = append(ts.tids, <-tids)
	}
	return ts, nil
}

func (ts *threadSet) stop() {
	close(ts.quit)
	for range ts.tids {
		<-ts.done
	}
}
