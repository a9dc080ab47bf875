package harness

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"bpbench/internal/cpupin"
)

// WorkerSpec says how many workers a RunWorkers call starts and how long
// they run.
type WorkerSpec struct {
	// Workers is the number of worker goroutines, >= 1.
	Workers int
	// Pin pins worker i's OS thread to CPU i mod runtime.NumCPU(), for
	// workers that stand for CPUs.
	Pin bool
	// Ops is the total number of operations, split evenly over the workers
	// (the first Ops mod Workers workers do one more). 0: run for Duration.
	Ops int64
	// Duration bounds the run when Ops is 0.
	Duration time.Duration
	// Setup, if set, runs on each worker's goroutine (pinned already)
	// before the clock starts, e.g. to pre-size per-worker state.
	Setup func(w *Worker) error
	// Body runs the measured loop of one worker: w.N operations, stopping
	// early once w.Stopped() (the duration is over, the context was
	// cancelled or another worker failed). It reports what it did in
	// w.Done.
	Body func(w *Worker) error
}

// Worker is one worker's view of a RunWorkers call. Each worker owns its
// Recorder, so the hot loop never shares a cache line or a lock with
// another worker; RunWorkers merges them after the workers stop.
type Worker struct {
	// ID is the worker's index in [0, Workers).
	ID int
	// CPU is the CPU the worker's thread is pinned to, or -1.
	CPU int
	// N is the number of operations to do: this worker's share of
	// WorkerSpec.Ops (0 when there are more workers than ops), or
	// math.MaxInt64 for a run bounded by WorkerSpec.Duration.
	N int64
	// Rec receives this worker's per-operation latencies.
	Rec *Recorder
	// Lap times consecutive operations into Rec.
	Lap Lap
	// Done is the number of operations the worker completed; Body sets it.
	Done int64
	// State is free for Setup to hand things to Body.
	State any

	loop   opLoop
	looped bool

	stop *atomic.Bool
	_    [64]byte // keep neighbouring workers' hot fields apart
}

// Loop is the measured loop of a Body: it runs op(0) .. op(w.N-1), or
// until Stopped, sets w.Done, and times it as TimeLoop does: half of the
// operations in bulk (WorkerResult's ns/op, ops/s and batches), the other
// half sampled into w.Rec net of the sampler's tare. op's first error is
// returned as is.
func (w *Worker) Loop(op func(i int64) error) error {
	w.looped = true
	n := w.N
	switch n {
	case 0: // more workers than ops: nothing to do
		return nil
	case math.MaxInt64:
		n = 0 // unbounded: run until Stopped
	}
	err := w.loop.run(n, 64, w.Stopped, []*Recorder{w.Rec}, op)
	w.Done = w.loop.done
	return err
}

// Stopped reports whether the run's duration is over or its context was
// cancelled. It is one atomic load, cheap enough to call every operation.
func (w *Worker) Stopped() bool { return w.stop.Load() }

// WorkerResult is what a RunWorkers call measured.
type WorkerResult struct {
	// Ops is the sum of the workers' Done.
	Ops int64
	// Elapsed is the wall time from the moment every worker finished Setup
	// until the last one returned from Body.
	Elapsed time.Duration
	// Latency is the merge of the workers' Recorders.
	Latency *Recorder
	// PerWorker is each worker's Done, by ID.
	PerWorker []int64
	// Looped is set when every worker that ran used Worker.Loop; the
	// fields below are filled only then.
	Looped bool
	// TareNs is the mean over the workers of the sampler's own cost
	// subtracted from each sampled latency.
	TareNs float64

	// WallOpsPerSec is the throughput as the machine delivered it: the
	// operations completed over the shared wall-clock interval in which
	// the workers ran (Ops / Elapsed), with the sampler's own CPU time
	// (SamplerShare of it) taken out, so that it is what the workers
	// would have completed unsampled. It is not a sum of each worker's
	// rate over its own timed chunks, which counts a preempted worker's
	// absence as nobody's time: with more workers than CPUs it cannot
	// exceed what the CPUs can run.
	// Filled when the workers used Loop.
	WallOpsPerSec float64
	// SamplerShare is the fraction of the workers' CPU time (Elapsed times
	// the CPUs they could use) that went to the sampler: sampled
	// operations times the measured tare.
	SamplerShare float64
	// busyCPUs is how many CPUs the workers could keep busy at once.
	busyCPUs int
	// WallBatches are WallOpsPerSec over consecutive equal slices of the
	// shared wall-clock interval: the operations all workers completed in
	// each slice, from where each worker's loop stood at its logged chunk
	// ends (nil when there are fewer than two).
	WallBatches []float64
}

// LoopNsPerOp returns the wall time per operation over all workers
// without the sampler's cost, 1e9 / WallOpsPerSec, or NsPerOp when the
// workers did not use Loop.
func (r WorkerResult) LoopNsPerOp() float64 {
	if !r.Looped || r.WallOpsPerSec <= 0 {
		return r.NsPerOp()
	}
	return 1e9 / r.WallOpsPerSec
}

// BatchNsPerOp returns WallBatches as ns/op (1e9 / ops/s), leaving out
// slices in which no operation completed (a preempted straggler at the
// end); nil with fewer than two.
func (r WorkerResult) BatchNsPerOp() []float64 {
	if r.WallBatches == nil {
		return nil
	}
	var out []float64
	for _, b := range r.WallBatches {
		if b > 0 { // a slice in which nothing completed has no time per op
			out = append(out, 1e9/b)
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// loopStats fills the Loop-derived fields from the workers' logs.
func (r *WorkerResult) loopStats(ws []*Worker) {
	ran := 0
	var overheadNs float64
	for _, w := range ws {
		if w.Done == 0 {
			continue
		}
		if !w.looped {
			return
		}
		ran++
		r.TareNs += TicksToNs(w.loop.tare)
		_, unsampled := w.loop.log.total()
		overheadNs += float64(w.Done-unsampled) * TicksToNs(w.loop.tare)
	}
	if ran == 0 {
		return
	}
	r.Looped = true
	r.TareNs /= float64(ran)
	if cpuNs := float64(r.busyCPUs) * float64(r.Elapsed.Nanoseconds()); cpuNs > 0 {
		r.SamplerShare = min(overheadNs/cpuNs, 0.5)
	}
	if r.Elapsed > 0 {
		r.WallOpsPerSec = float64(r.Ops) / r.Elapsed.Seconds() / (1 - r.SamplerShare)
	}
}

// NsPerOp returns Elapsed divided by Ops (0 when nothing ran).
func (r WorkerResult) NsPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.Elapsed.Nanoseconds()) / float64(r.Ops)
}

// OpsPerSec returns the throughput over all workers.
func (r WorkerResult) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Validate reports a spec RunWorkers cannot run, naming the bad field.
func (s WorkerSpec) Validate() error {
	switch {
	case s.Workers < 1:
		return fmt.Errorf("bench: WorkerSpec.Workers = %d, need >= 1", s.Workers)
	case s.Ops < 0:
		return fmt.Errorf("bench: WorkerSpec.Ops = %d, need >= 0", s.Ops)
	case s.Ops == 0 && s.Duration <= 0:
		return fmt.Errorf("bench: WorkerSpec.Ops = 0 and Duration = %v: set one of them", s.Duration)
	case s.Body == nil:
		return fmt.Errorf("bench: WorkerSpec.Body is nil")
	}
	return nil
}

// RunWorkers runs spec.Workers goroutines under an errgroup: each pins its
// thread if asked, runs Setup, waits until all are set up, then runs Body.
// t is started when the last worker is ready and stopped when the last one
// returns, so under `go test` only the measured loops are timed. The first
// error cancels the others (they see Stopped) and is returned; so is ctx's
// error if it was cancelled before the work was done.
func RunWorkers(ctx context.Context, t Timer, spec WorkerSpec) (WorkerResult, error) {
	if err := spec.Validate(); err != nil {
		return WorkerResult{}, err
	}
	if t == nil {
		t = NopTimer
	}
	var stop atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	ws := make([]*Worker, spec.Workers)
	var ready sync.WaitGroup
	ready.Add(spec.Workers)
	start := make(chan struct{})
	ncpu := runtime.NumCPU()
	for i := range ws {
		w := &Worker{ID: i, CPU: -1, Rec: NewRecorder(), stop: &stop}
		w.Lap.R = w.Rec
		if spec.Ops > 0 {
			w.N = spec.Ops / int64(spec.Workers)
			if int64(i) < spec.Ops%int64(spec.Workers) {
				w.N++
			}
		} else {
			w.N = math.MaxInt64
		}
		if spec.Pin {
			w.CPU = i % ncpu
		}
		ws[i] = w
		g.Go(func() error {
			readied := false
			defer func() {
				if !readied {
					ready.Done()
				}
			}()
			if w.CPU >= 0 {
				unpin, err := cpupin.Pin(w.CPU)
				if err != nil {
					stop.Store(true)
					return fmt.Errorf("bench: worker %d: %w", w.ID, err)
				}
				defer unpin()
			}
			if spec.Setup != nil {
				if err := spec.Setup(w); err != nil {
					stop.Store(true)
					return fmt.Errorf("bench: worker %d setup: %w", w.ID, err)
				}
			}
			readied = true
			ready.Done()
			select {
			case <-start:
			case <-gctx.Done():
				return nil
			}
			if stop.Load() {
				return nil // another worker failed during setup
			}
			if err := spec.Body(w); err != nil {
				stop.Store(true)
				return fmt.Errorf("bench: worker %d: %w", w.ID, err)
			}
			return nil
		})
	}
	ready.Wait()

	// The watcher turns a cancelled context or an elapsed duration into the
	// stop flag that Body polls; a context check per op would cost more
	// than the model operations being measured.
	watchDone := make(chan struct{})
	var timer <-chan time.Time
	if spec.Ops == 0 {
		tm := time.NewTimer(spec.Duration)
		defer tm.Stop()
		timer = tm.C
	}
	go func() {
		select {
		case <-gctx.Done():
		case <-timer:
		case <-watchDone:
		}
		stop.Store(true)
	}()

	t.StartTimer()
	begin, beginTicks := time.Now(), Now()
	close(start)
	err := g.Wait()
	elapsed := time.Since(begin)
	t.StopTimer()
	close(watchDone)

	res := WorkerResult{Elapsed: elapsed, Latency: NewRecorder(), PerWorker: make([]int64, len(ws))}
	for i, w := range ws {
		res.Ops += w.Done
		res.PerWorker[i] = w.Done
		res.Latency.Merge(w.Rec)
	}
	res.busyCPUs = min(spec.Workers, runtime.GOMAXPROCS(0))
	if spec.Pin {
		res.busyCPUs = min(spec.Workers, ncpu)
	}
	res.loopStats(ws)
	if res.Looped {
		res.WallBatches = wallBatches(ws, beginTicks, elapsed, 1-res.SamplerShare)
	}
	if err != nil {
		return res, err
	}
	if cerr := ctx.Err(); cerr != nil && spec.Ops > 0 && res.Ops < spec.Ops {
		return res, fmt.Errorf("bench: workers stopped after %d of %d ops: %w", res.Ops, spec.Ops, cerr)
	}
	return res, nil
}
