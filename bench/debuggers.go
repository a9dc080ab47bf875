package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"bpbench/bench/harness"
	"bpbench/debuggers"
)

// The debuggers experiment runs real debuggers (GDB, Delve) through
// scripted watchpoint sessions on targets with 1 to 256 threads: what
// ptrace requests they make per action, what the kernel makes of their
// debug-register writes, and how many writes the Writer's policies would
// make for the same register states. See package debuggers.
var debuggersExperiment = Experiment{
	Name:     "debuggers",
	Question: "What do real debuggers (GDB, Delve) make the kernel do per watchpoint action, and how many debug-register writes would a write policy need for the same states?",
	Cases:    debuggersCases,
}

// Repetitions of the five actions per session (after one warm-up), and
// target thread counts.
const (
	debuggersRepsQuick = 3
	debuggersRepsFull  = 10
)

func debuggersThreads(full bool) []int {
	if full {
		return []int{1, 8, 64, 256}
	}
	return []int{1, 8, 64}
}

func debuggersCases(o Options) ([]Case, error) {
	reps := debuggersRepsQuick
	if o.Full {
		reps = debuggersRepsFull
	}
	var cs []Case
	for _, dbg := range []string{debuggers.GDB, debuggers.Delve} {
		for _, threads := range debuggersThreads(o.Full) {
			g := &debuggersGroup{debugger: dbg, threads: threads, reps: reps, opts: o}
			for i, action := range debuggers.Actions {
				est := 50 * time.Millisecond
				if i == 0 {
					// The first action's case runs both sessions.
					est = g.estimate()
				}
				cs = append(cs, Case{
					Name:     debuggers.CaseName(dbg, threads, action),
					Estimate: est,
					Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
						t.StopTimer()
						return g.result(ctx, action, n)
					},
				})
			}
		}
	}
	// rr is recorded as a skip that says why it cannot run here.
	cs = append(cs, Case{
		Name:     debuggers.CaseName(debuggers.RR, 1, debuggers.ActionSet),
		Estimate: time.Second,
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			err := debuggers.RRUsable(ctx)
			if errors.Is(err, debuggers.ErrSkip) {
				return Result{}, Skipf("%s", debuggersReason(err))
			}
			if err == nil {
				err = errors.New("rr is usable but not driven")
			}
			return Result{}, err
		},
	})
	return cs, nil
}

// debuggersReason is the reason of a debuggers.ErrSkip without its
// sentinel's text, which Skipf's replaces.
func debuggersReason(err error) string {
	return strings.TrimPrefix(err.Error(), debuggers.ErrSkip.Error()+": ")
}

// debuggersGroup is the five action cases of one debugger and thread
// count. Their figures come from the same pair of sessions (one under
// strace for the counts, one without for the times): the k-th run of any
// of the five cases reads the k-th pair, which the first of them to need
// it runs. So `--count N` runs N pairs, not 5N.
type debuggersGroup struct {
	debugger string
	threads  int
	reps     int
	opts     Options

	mu    sync.Mutex
	runs  []*debuggersRun
	taken map[string]int // action -> pairs read so far
	skip  error          // set once the debugger proved unavailable
}

type debuggersRun struct {
	reps          int
	traced, timed *debuggers.Session
	summary       map[string]*debuggers.Summary
}

func (g *debuggersGroup) estimate() time.Duration {
	// Measured here: about 1 s of start-up per session plus, per action,
	// 30 ms and 0.5 ms (GDB) or 2 ms (Delve) per thread, twice (traced and
	// not); Delve's first build adds 20-45 s, not counted.
	perThread := 500 * time.Microsecond
	if g.debugger == debuggers.Delve {
		perThread = 2 * time.Millisecond
	}
	perAction := 30*time.Millisecond + time.Duration(g.threads)*perThread
	return 2 * (time.Second + time.Duration((g.reps+1)*len(debuggers.Actions))*perAction)
}

// result returns action's Result from the next pair of sessions. n > 0
// sets the repetitions (go test -bench's b.N).
func (g *debuggersGroup) result(ctx context.Context, action string, n int64) (Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.skip != nil {
		return Result{}, g.skip
	}
	reps := g.reps
	if n > 0 {
		reps = int(min(n, 1000))
	}
	if g.taken == nil {
		g.taken = map[string]int{}
	}
	k := g.taken[action]
	var run *debuggersRun
	if k < len(g.runs) && g.runs[k].reps == reps {
		run = g.runs[k]
	} else {
		var err error
		if run, err = g.run(ctx, reps); err != nil {
			if errors.Is(err, debuggers.ErrSkip) {
				g.skip = Skipf("%s", debuggersReason(err))
				return Result{}, g.skip
			}
			return Result{}, fmt.Errorf("%s: %w", debuggers.CaseName(g.debugger, g.threads, action), err)
		}
		if k < len(g.runs) {
			g.runs[k] = run
		} else {
			g.runs = append(g.runs, run)
		}
	}
	g.taken[action] = k + 1
	return g.resultOf(run, action)
}

// run runs the traced and the timed session, holding the machine-wide
// debug-register lock (they set hardware watchpoints).
func (g *debuggersGroup) run(ctx context.Context, reps int) (*debuggersRun, error) {
	r := &debuggersRun{reps: reps}
	_, err := underKernlock(func() (Result, error) {
		cfg := debuggers.Config{Debugger: g.debugger, Threads: g.threads, Reps: reps, Trace: true}
		var err error
		if r.traced, err = debuggers.Run(ctx, cfg, debuggers.Hooks{}); err != nil {
			return Result{}, err
		}
		cfg.Trace = false
		r.timed, err = debuggers.Run(ctx, cfg, debuggers.Hooks{})
		return Result{}, err
	})
	if err != nil {
		return nil, err
	}
	if r.summary, err = debuggers.Summarise(r.traced, r.timed); err != nil {
		return nil, err
	}
	return r, nil
}

func (g *debuggersGroup) resultOf(run *debuggersRun, action string) (Result, error) {
	s := run.summary[action]
	if s == nil {
		return Result{}, fmt.Errorf("bench: debuggers: no %s in the sessions", action)
	}
	target := "c"
	if g.debugger == debuggers.Delve {
		target = "go"
	}
	sc := harness.Scenario{Experiment: "debuggers", Backend: "ptrace", Ops: int64(run.reps), Seed: g.opts.Seed, PinCPU: -1}
	res := Result{
		Experiment: "debuggers",
		Name:       debuggers.CaseName(g.debugger, g.threads, action),
		Params: commonParams(sc,
			"debugger", g.debugger,
			"debugger_version", run.traced.Version,
			"threads", strconv.Itoa(g.threads),
			"target_threads", strconv.Itoa(len(run.traced.Tasks)),
			"target", target,
			"action", action,
			"reps", strconv.Itoa(run.reps),
			"cpus", strconv.Itoa(runtime.NumCPU()),
			"counted", "ptrace requests seen by strace",
			"inferred", "reserves, modifies, disables: from the register values (debuggers.Kernel)",
		),
		Iterations: int64(run.reps),
		Metrics:    map[string]float64{},
		Batches:    map[string][]float64{},
	}
	for k, v := range s.Metrics {
		res.Metrics[k] = v
	}
	for k, v := range s.Batches {
		res.Batches[k] = append([]float64(nil), v...)
	}
	if u, ok := s.Metrics[debuggers.MetricUsecs]; ok {
		res.NsPerOp = u * 1e3
		ns := make([]float64, len(s.Batches[debuggers.MetricUsecs]))
		for i, v := range s.Batches[debuggers.MetricUsecs] {
			ns[i] = v * 1e3
		}
		res.Batches["ns/op"] = ns
	}
	return res, nil
}
