package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/hwregs/tracee"
)

// The apply and blindwindow experiments put one watchpoint into every
// thread of a real multi-threaded tracee with hwregs.ProcessWriter, under
// the eager policy (stop every thread, write, resume) and the lazy one
// (write each thread just before it next resumes, as rr and GDB do).

// applyThreads is the thread-count sweep. The quick form stops at 256
// threads: starting a 1024-thread tracee and its runs take seconds, and
// the quick form of all these experiments must stay near 20 s on 2 cores.
func applyThreads(full bool) []int {
	if full {
		return []int{1, 4, 16, 64, 256, 1024}
	}
	return []int{1, 16, 256}
}

// applySpec is one apply or blindwindow case.
type applySpec struct {
	policy  hwregs.ApplyMode
	threads int
}

func (s applySpec) name(prefix string) string {
	return fmt.Sprintf("%s/policy=%s/threads=%d", prefix, s.policy, s.threads)
}

func applySpecs(o Options) []applySpec {
	var ss []applySpec
	for _, n := range applyThreads(o.Full) {
		for _, pol := range hwregs.ApplyModes {
			ss = append(ss, applySpec{policy: pol, threads: n})
		}
	}
	return ss
}

func applyCases(o Options) ([]Case, error) {
	return specCases("apply", "Apply", o, time.Millisecond, 300*time.Millisecond, runApply)
}

var applyExperiment = Experiment{Name: "apply", Cases: applyCases,
	Question: "What does setting, modifying and clearing one watchpoint on every thread of an N-thread process cost, eager or lazy, per thread and in register writes?"}

// specCases lists one case per applySpec of experiment exp, named
// prefix/..., estimated at perThread per tracee thread plus fixed, each
// running run under the debug-register lock.
func specCases(exp, prefix string, o Options, perThread, fixed time.Duration, run func(context.Context, applySpec, Options, int64, Timer) (Result, error)) ([]Case, error) {
	if err := checkOptions(exp, o); err != nil {
		return nil, err
	}
	var cs []Case
	for _, s := range applySpecs(o) {
		cs = append(cs, Case{
			Name:     s.name(prefix),
			Estimate: time.Duration(s.threads)*perThread + fixed,
			Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
				return underKernlock(func() (Result, error) { return run(ctx, s, o, n, t) })
			},
		})
	}
	return cs, nil
}

// startProcess starts an N-thread tracee traced from a thread pinned to
// o.PinCPU and a ProcessWriter over it. The caller closes the Ptrace,
// which kills and reaps every tracee thread.
func startProcess(s applySpec, o Options) (*hwregs.Ptrace, *hwregs.ProcessWriter, error) {
	p, err := startPtrace(hwregs.PtraceOptions{Threads: s.threads, CPU: o.PinCPU})
	if err != nil {
		return nil, nil, err
	}
	w, err := hwregs.NewProcessWriter(p, s.policy)
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, w, nil
}

// applyParams is what every apply and blindwindow Result records.
func applyParams(exp string, s applySpec, o Options, n int64, kv ...string) map[string]string {
	sc := harness.Scenario{Experiment: exp, Backend: "ptrace", Slots: hwregs.NumSlots, Workers: s.threads, Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	return commonParams(sc, append([]string{"policy", s.policy.String(), "threads", strconv.Itoa(s.threads)}, kv...)...)
}

// watchAttrs are the two shared variables the process-wide watchpoint
// alternates between.
func watchAttrs(h *tracee.Hello) [2]hwregs.Attr {
	return [2]hwregs.Attr{
		{Addr: h.SharedVarAddr(0), Len: 8, Type: hwregs.Write},
		{Addr: h.SharedVarAddr(1), Len: 8, Type: hwregs.Write},
	}
}

// runApply measures the apply case in all-stop mode, the way a debugger
// user changes a watchpoint: every thread is stopped, the debugger makes
// the change, then continues all threads, which stop again. One op is a
// cycle of three changes (set, modify, clear), each followed by that
// resume-and-stop round; eager writes during the change, lazy during the
// resume, so the total is comparable and the change call alone is
// reported too. The same round without a change is measured after the
// loop as the baseline every debugger pays.
func runApply(ctx context.Context, s applySpec, o Options, n int64, t Timer) (res Result, err error) {
	t.StopTimer()
	n = defaultOps(n, o, max(3, 6000/int64(s.threads)), max(6, 20000/int64(s.threads)))
	res = Result{Experiment: "apply", Name: s.name("Apply"), Params: applyParams("apply", s, o, n, "op", "set+modify+clear", "mode", "all-stop")}
	p, w, err := startProcess(s, o)
	if err != nil {
		return res, err
	}
	defer closeInto(&err, p)
	attrs := watchAttrs(p.Hello())
	none := tracee.Command{Op: tracee.OpNone}
	round := func() error {
		r, err := p.Run(none)
		if err == nil && (r.TotalTraps(0) != 0 || r.OtherTraps != 0 || r.Signals != 0) {
			err = fmt.Errorf("resume round: %d traps, %d stray SIGTRAPs, %d signals on a run that touches nothing", r.TotalTraps(0), r.OtherTraps, r.Signals)
		}
		return err
	}
	var (
		recs              = [3]*harness.Recorder{harness.NewRecorder(), harness.NewRecorder(), harness.NewRecorder()}
		change, all, base = harness.NewRecorder(), harness.NewRecorder(), harness.NewRecorder()
		elapsed           time.Duration
		writes            uint64
		done              int64
		loopErr           error
		bp                hwregs.ProcessBreakpoint
		batches           harness.BatchLog
	)
	var step func(op int, f func() error) error
	step = func(op int, f func() error) error {
		t0 := harness.Now()
		if err := f(); err != nil {
			return err
		}
		t1 := harness.Now()
		if err := round(); err != nil {
			return err
		}
		t2 := harness.Now()
		change.Record(t1 - t0)
		recs[op].Record(t2 - t0)
		all.Record(t2 - t0)
		return nil
	}
	setF := func() (err error) { bp, err = w.Set(attrs[0]); return err }
	modifyF := func() error { return w.Modify(&bp, attrs[1]) }
	clearF := func() error { return w.Clear(bp) }
	ops := [...]func() error{setF, modifyF, clearF}
	cycle := func() error {
		for op, f := range ops {
			if err := step(op, f); err != nil {
				return fmt.Errorf("%s: %w", [...]string{"set", "modify", "clear"}[op], err)
			}
		}
		return nil
	}
	derr := p.Do(func() {
		// Warm up: the first writes register the kernel's ptrace
		// breakpoints on each thread, which later writes only modify.
		if loopErr = cycle(); loopErr != nil {
			return
		}
		for _, r := range append(recs[:], change, all) {
			r.Reset()
		}
		w0 := p.Writes()
		if elapsed, loopErr = timedLoop(ctx, t, n, &done, &batches, cycle); loopErr != nil {
			return
		}
		writes = p.Writes() - w0
		for i := int64(0); i < n; i++ {
			t0 := harness.Now()
			if loopErr = round(); loopErr != nil {
				return
			}
			base.Record(harness.Now() - t0)
		}
	})
	if err := errors.Join(derr, loopErr, w.Err()); err != nil {
		return res, fmt.Errorf("bench: %s: %w", res.Name, err)
	}
	if done == 0 {
		return res, fmt.Errorf("bench: %s: no cycle completed", res.Name)
	}
	res.Iterations = done
	res.NsPerOp = float64(elapsed.Nanoseconds()) / float64(done)
	setLatency(&res, all)
	m := res.Metrics
	nt := float64(s.threads)
	for op, name := range [...]string{"set", "modify", "clear"} {
		m[name+"-ns/p50"] = recs[op].Quantile(0.5)
		m[name+"-ns/p99"] = recs[op].Quantile(0.99)
	}
	m["change-ns/p50"], m["change-ns/p99"] = change.Quantile(0.5), change.Quantile(0.99)
	m["resume-ns/p50"] = base.Quantile(0.5)
	// An op is one set+modify+clear cycle: three changes, each applied to
	// every thread. The names say what each figure is per.
	m[MetricNsPerChangeThread] = res.NsPerOp / (3 * nt)
	// What applying costs beyond the resume round a debugger pays anyway,
	// per change and thread; medians from the same run.
	m["apply-ns/change-thread"] = (all.Quantile(0.5) - base.Quantile(0.5)) / nt
	m[MetricWritesPerCycle] = float64(writes) / float64(done)
	m["writes/cycle-thread"] = float64(writes) / float64(done) / nt
	m[MetricWritesPerChangeThread] = float64(writes) / float64(done) / (3 * nt)
	addBatches(&res, UnitNsPerOp, batches.NsPerOp())
	return res, nil
}

// blindCases lists the blindwindow cases.
func blindCases(o Options) ([]Case, error) {
	return specCases("blindwindow", "BlindWindow", o, 2*time.Millisecond, 500*time.Millisecond, runBlind)
}

var blindWindowExperiment = Experiment{Name: "blindwindow", Cases: blindCases,
	Question: "While a debugger arms a watchpoint thread by thread, how long are some threads unwatched, and how many of the tracee's writes does it miss, eager or lazy?"}

// The running tracee of blindwindow: each worker writes the shared
// watched variable in bursts, stops at a checkpoint after each burst (the
// stops at which a lazy debugger writes registers, like the system-call
// stops rr sees) and sleeps. The pause grows with the thread count so that
// the tracer's stop handling (a wait and a resume per checkpoint) stays
// well below one CPU on a 2-core machine.
const (
	blindBurst      = 8
	blindPauseMin   = 200 * time.Microsecond
	blindPausePerTh = 100 * time.Microsecond
	blindArmedHold  = 2 * time.Millisecond // armed time per repetition
	blindPoll       = 10 * time.Microsecond
	blindTimeout    = 30 * time.Second
)

func blindPause(threads int) time.Duration {
	return max(blindPauseMin, time.Duration(threads)*blindPausePerTh)
}

// runBlind measures, per repetition (one op): the debugger asks for a
// watchpoint on the shared variable the workers write; blind-request-ns
// is the blind window from the request (the call into the writer) to the
// last thread armed, blind-ns the part from the first thread armed to
// the last; then, after the watchpoint has been armed for a while, all
// threads are stopped (so every trap is counted) and the writes since the
// request that did not trap are the missed ones: the tracee's counts minus
// the traps. The watchpoint is then cleared and the threads resumed.
//
// Counting is exact except at the edges: a thread caught by the snapshot
// or by PTRACE_INTERRUPT between its store and its counter update is off
// by one write, at most one per running thread.
func runBlind(ctx context.Context, s applySpec, o Options, n int64, t Timer) (res Result, err error) {
	t.StopTimer()
	n = defaultOps(n, o, max(5, 200/int64(s.threads)), max(10, 1000/int64(s.threads)))
	pause := blindPause(s.threads)
	res = Result{Experiment: "blindwindow", Name: s.name("BlindWindow"), Params: applyParams("blindwindow", s, o, n,
		"burst", strconv.Itoa(blindBurst), "pause", pause.String(), "checkpoint", "every burst", "armed_hold", blindArmedHold.String()+" and until a trap")}
	p, w, err := startProcess(s, o)
	if err != nil {
		return res, err
	}
	defer closeInto(&err, p)
	a := watchAttrs(p.Hello())[0]
	nt := s.threads
	s0, s1 := make([]uint64, nt), make([]uint64, nt)
	blind, ask := harness.NewRecorder(), harness.NewRecorder()
	var batches harness.BatchLog
	var first, last harness.Ticks
	w.OnApplied = func(int) {
		now := harness.Now()
		if first == 0 {
			first = now
		}
		last = now
	}
	settled := func() bool { return w.PendingNow() == 0 }
	// serveFor ends Serve through its condition, not its timeout: a timeout
	// builds an error each time, which the measured loop must not allocate.
	// While armed, the hold lasts blindArmedHold and until the watchpoint
	// has trapped at least once (trapsBefore < 0: no trap needed), so that
	// a tracee descheduled for the whole hold on a loaded machine still
	// shows the watchpoint working instead of an empty repetition.
	var holdEnd time.Time
	trapsBefore := int64(-1)
	held := func() bool {
		return !time.Now().Before(holdEnd) && (trapsBefore < 0 || int64(p.Progress().TotalTraps(0)) > trapsBefore)
	}
	serveFor := func(d time.Duration) error {
		holdEnd = time.Now().Add(d)
		return p.Serve(held, d+blindTimeout, blindPoll)
	}
	var (
		missed, traps int64
		done          int64
		loopErr       error
		elapsed       time.Duration
	)
	cmd := tracee.Command{Op: tracee.OpWrite, Var: 0, Shared: true, Burst: blindBurst, Pause: pause, Checkpoint: true}
	if err := p.Start(cmd); err != nil {
		return res, fmt.Errorf("bench: %s: %w", res.Name, err)
	}
	rep := func() error {
		if err := p.ReadOps(s0); err != nil {
			return err
		}
		tr0 := p.Progress().TotalTraps(0)
		first, last = 0, 0
		t0 := harness.Now()
		bp, err := w.Set(a)
		if err != nil {
			return err
		}
		if bp.Index != 0 {
			return fmt.Errorf("watchpoint in DR%d, want DR0", bp.Index)
		}
		if err := p.Serve(settled, blindTimeout, blindPoll); err != nil {
			return fmt.Errorf("arming: %w", err)
		}
		blind.Record(last - first)
		ask.Record(last - t0)
		trapsBefore = int64(tr0)
		err = serveFor(blindArmedHold)
		trapsBefore = -1
		if err != nil {
			return err
		}
		if err := p.StopAll(); err != nil {
			return err
		}
		if err := p.ReadOps(s1); err != nil {
			return err
		}
		tr := int64(p.Progress().TotalTraps(0) - tr0)
		var wrote int64
		for i := range s0 {
			wrote += int64(s1[i] - s0[i])
		}
		missed += wrote - tr
		traps += tr
		if err := w.Clear(bp); err != nil {
			return err
		}
		if err := p.ResumeAll(); err != nil {
			return err
		}
		return p.Serve(settled, blindTimeout, blindPoll)
	}
	derr := p.Do(func() {
		if loopErr = serveFor(5 * time.Millisecond); loopErr != nil {
			return
		}
		elapsed, loopErr = timedLoop(ctx, t, n, &done, &batches, rep)
	})
	herr := p.Halt()
	_, werr := p.Wait()
	if err := errors.Join(derr, loopErr, herr, werr, w.Err()); err != nil {
		return res, fmt.Errorf("bench: %s: %w", res.Name, err)
	}
	res.Iterations = done
	res.NsPerOp = float64(elapsed.Nanoseconds()) / float64(done)
	res.Metrics = map[string]float64{}
	res.Window = blind.Summary()
	m := res.Metrics
	m[MetricBlindP50], m[MetricBlindP99] = blind.Quantile(0.5), blind.Quantile(0.99)
	m["blind-request-ns/p50"], m["blind-request-ns/p99"] = ask.Quantile(0.5), ask.Quantile(0.99)
	addBatches(&res, UnitNsPerOp, batches.NsPerOp())
	m[MetricMissed] = float64(missed) / float64(done)
	m["missed/thread"] = float64(missed) / float64(done) / float64(nt)
	m[MetricTraps] = float64(traps) / float64(done)
	return res, nil
}

// timedLoop runs step until *done reaches n, counting each completed step
// in *done and logging its time in batches, with t running only around the
// loop. It stops at the first error or when ctx ends, and returns the
// loop's wall time and that error.
func timedLoop(ctx context.Context, t Timer, n int64, done *int64, batches *harness.BatchLog, step func() error) (time.Duration, error) {
	var err error
	t.ResetTimer()
	t.StartTimer()
	begin := time.Now()
	prev := harness.Now()
	for ; *done < n; *done++ {
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		if err = step(); err != nil {
			break
		}
		now := harness.Now()
		batches.Add(now-prev, 1)
		prev = now
	}
	elapsed := time.Since(begin)
	t.StopTimer()
	return elapsed, err
}

// closeInto closes c and, when *err is still nil, keeps its error there;
// deferred by functions with a named error result.
func closeInto(err *error, c io.Closer) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
