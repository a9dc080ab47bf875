package debuggers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ErrConfig is wrapped by errors about a bad session Config.
var ErrConfig = errors.New("invalid debugger session config")

// driver is one debugger under remote control.
type driver interface {
	name() string
	// pid is the debugger's process id, for strace.
	pid() int
	// markSyscall is the system call its marks show up as in strace.
	markSyscall() string
	// attach attaches to the target (or, for a debugger that attached at
	// start, waits until it answers) and leaves it stopped.
	attach(ctx context.Context) error
	// release sets the target's variable to 1.
	release(ctx context.Context, variable string) error
	// mark makes the debugger leave m in the trace.
	mark(ctx context.Context, m Mark) error
	// watch sets a hardware write watchpoint on variable.
	watch(ctx context.Context, variable string) (id string, err error)
	// del deletes watchpoints.
	del(ctx context.Context, ids []string) error
	// cont continues until a watchpoint stops the target and returns
	// the watched expression that triggered.
	cont(ctx context.Context) (string, error)
	// contInterrupt continues, waits for running to say the target
	// runs, and interrupts it.
	contInterrupt(ctx context.Context, running func(context.Context) error) error
	version(ctx context.Context) string
	// close kills and reaps the debugger.
	close()
}

// Config is one session.
type Config struct {
	// Debugger is GDB or Delve.
	Debugger string
	// Threads is the target's thread count (the Go target has the
	// runtime's threads besides).
	Threads int
	// Reps is the number of measured repetitions of the actions; one
	// warm-up repetition (Rep 0) runs before them.
	Reps int
	// Trace runs the debugger under strace and accounts the trace.
	Trace bool
	// KeepTrace, when set, is where the strace output is copied
	// (recording fixtures).
	KeepTrace string
	// Vars overrides the watched variables (at least 4); tests use it to
	// make a session fail.
	Vars []string
	// ActionTimeout bounds each action (default 2 minutes).
	ActionTimeout time.Duration
	// GDBSet are extra GDB settings ("breakpoint always-inserted on"),
	// made with -gdb-set before it attaches.
	GDBSet []string
}

// Validate reports a config that cannot run, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Debugger != GDB && c.Debugger != Delve:
		return fmt.Errorf("%w: Debugger = %q, want %q or %q", ErrConfig, c.Debugger, GDB, Delve)
	case c.Threads < 1 || c.Threads > 4096:
		return fmt.Errorf("%w: Threads = %d, want 1..4096", ErrConfig, c.Threads)
	case c.Reps < 1:
		return fmt.Errorf("%w: Reps = %d, want >= 1", ErrConfig, c.Reps)
	case c.Vars != nil && len(c.Vars) < 4:
		return fmt.Errorf("%w: %d Vars, want at least 4 (fill watches four)", ErrConfig, len(c.Vars))
	}
	return nil
}

// Step is one action as the session ran it.
type Step struct {
	Mark Mark
	// Dur is the action's wall time, from its first command to the stop
	// that ends it; CmdDur the part before its continue (zero for hit).
	Dur, CmdDur time.Duration
	// Stop is how the debugger reported the stop that ended the action:
	// the watched expression that triggered, or "interrupted".
	Stop string
}

// Pids are the processes of a session, for checking that none outlives it.
type Pids struct {
	Target, Debugger, Strace int
}

// Session is a finished session.
type Session struct {
	Config Config
	// Version is the debugger's version line.
	Version string
	// Tasks are the target's threads when the debugger had attached.
	Tasks []int
	Pids  Pids
	Steps []Step
	// Acct is the accounted trace (Trace sessions only).
	Acct *Accounting
	// HeldAtEnd is, per target thread, the slots the kernel model says it
	// holds after the last action (Trace sessions only).
	HeldAtEnd map[int]int
}

// Hooks let tests look at a live session.
type Hooks struct {
	// AfterAction runs after each action, with the target stopped under
	// the debugger; an error ends the session.
	AfterAction func(s *Session, step Step) error
}

// Run runs one session: it builds the target, starts it, attaches the
// debugger (under strace when cfg.Trace), releases the target's writer,
// runs a warm-up and cfg.Reps measured repetitions of Actions, and kills
// and reaps the target, the debugger and strace on every path. After a
// failure the Session it returns (when not nil) holds only the config,
// the debugger's version and the pids, so that a caller can check that
// nothing outlived it.
func Run(ctx context.Context, cfg Config, hooks Hooks) (s *Session, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = 2 * time.Minute
	}
	var tgt Target
	if cfg.Debugger == GDB {
		tgt, err = CTarget(ctx)
	} else {
		tgt, err = GoTarget(ctx)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Debugger == Delve {
		// Build (or find) Delve before the target runs.
		if _, err := DelveBinary(ctx); err != nil {
			return nil, err
		}
	}
	vars := tgt.Vars
	if cfg.Vars != nil {
		vars = cfg.Vars
	}
	s = &Session{Config: cfg}

	// Teardown, in order on every path: SIGKILL to the target (so that no
	// debugger lets it run free), the debugger killed and reaped, the
	// target reaped (a traced process is reaped only once its tracer has
	// seen it die or has gone), then strace, which ends when its tracee
	// has gone.
	var (
		target   *child
		drv      driver
		st       *straceRun
		traceDir string
	)
	defer func() {
		if target != nil {
			target.signal()
		}
		if drv != nil {
			drv.close()
		}
		if target != nil {
			target.kill()
		}
		if st != nil {
			path, ferr := st.finish()
			if err == nil && ferr != nil {
				err = ferr
			}
			if err == nil {
				err = s.account(path, cfg.KeepTrace)
			}
		}
		if traceDir != "" {
			os.RemoveAll(traceDir)
		}
		if err != nil {
			s = failedSession(s, err)
		}
	}()

	target, err = startTarget(ctx, tgt.Path, cfg.Threads)
	if err != nil {
		return s, err
	}
	s.Pids.Target = target.Pid()
	actx, cancel := context.WithTimeout(ctx, 2*cfg.ActionTimeout)
	defer cancel()
	if cfg.Debugger == GDB {
		drv, err = startGDB(actx, target.Pid(), cfg.GDBSet)
	} else {
		drv, err = startDelve(actx, target.Pid())
	}
	if err != nil {
		return s, err
	}
	s.Pids.Debugger = drv.pid()
	s.Version = drv.version(ctx)
	if cfg.Trace {
		if traceDir, err = os.MkdirTemp("", "bpbench-strace-"); err != nil {
			return s, fmt.Errorf("debuggers: %w", err)
		}
		st, err = startStrace(actx, drv.pid(), cfg.Debugger == Delve, drv.markSyscall(), filepath.Join(traceDir, "trace"))
		if err != nil {
			return s, err
		}
		s.Pids.Strace = st.c.Pid()
	}
	if err = drv.attach(actx); err != nil {
		return s, err
	}
	if s.Tasks, err = tasks(target.Pid()); err != nil {
		return s, fmt.Errorf("%w: target: %w", ErrSession, err)
	}
	if err = drv.release(actx, tgt.Release); err != nil {
		return s, err
	}
	cancel()

	r := &runner{drv: drv, vars: vars, pid: target.Pid(), timeout: cfg.ActionTimeout}
	for rep := 0; rep <= cfg.Reps; rep++ {
		for _, a := range Actions {
			step, err := r.act(ctx, rep, a)
			if err != nil {
				return s, fmt.Errorf("rep %d, %s: %w", rep, a, err)
			}
			s.Steps = append(s.Steps, step)
			if hooks.AfterAction != nil {
				if err = hooks.AfterAction(s, step); err != nil {
					return s, err
				}
			}
		}
	}
	// The last marker closes the last action's window; what follows is
	// teardown.
	ectx, ecancel := context.WithTimeout(ctx, cfg.ActionTimeout)
	err = drv.mark(ectx, Mark{Seq: r.seq + 1, Rep: cfg.Reps + 1, Action: "end"})
	ecancel()
	if err != nil {
		return s, err
	}
	return s, nil
}

// failedSession keeps what a failed session knew (its pids, for leak
// checks) and nothing measured.
func failedSession(s *Session, err error) *Session {
	if s == nil {
		return nil
	}
	return &Session{Config: s.Config, Version: s.Version, Pids: s.Pids}
}

// account parses the trace at path, copies it to keep when set, and
// accounts it.
func (s *Session) account(path, keep string) error {
	if keep != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("debuggers: %w", err)
		}
		tmp := keep + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("debuggers: keeping the trace: %w", err)
		}
		if err := os.Rename(tmp, keep); err != nil {
			return fmt.Errorf("debuggers: keeping the trace: %w", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("debuggers: %w", err)
	}
	defer f.Close()
	events, err := ParseStrace(f)
	if err != nil {
		return err
	}
	pols, err := RegisteredPolicies()
	if err != nil {
		return err
	}
	if s.Acct, err = Account(events, pols); err != nil {
		return err
	}
	s.HeldAtEnd = map[int]int{}
	for _, tid := range s.Tasks {
		s.HeldAtEnd[tid] = s.Acct.Kernel.Held(tid)
	}
	return nil
}

// startTarget starts the target with threads threads and waits until it
// says they all run.
func startTarget(ctx context.Context, path string, threads int) (*child, error) {
	cmd := exec.Command(path, strconv.Itoa(threads))
	c, lr, err := startReading(cmd, "target")
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	l, err := lr.next(tctx)
	lr.close() // the target prints nothing more
	if err != nil || l != "ready" {
		c.kill()
		return nil, fmt.Errorf("%w: target %s %d did not start (said %q, %v; stderr: %s)", ErrSession, filepath.Base(path), threads, l, err, c.stderrText())
	}
	return c, nil
}

// runner runs the actions of a session.
type runner struct {
	drv     driver
	vars    []string
	pid     int
	ids     []string
	seq     int
	timeout time.Duration
}

// act runs one action, marked in the trace first.
func (r *runner) act(ctx context.Context, rep int, action string) (Step, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.seq++
	m := Mark{Seq: r.seq, Rep: rep, Action: action}
	if err := r.drv.mark(ctx, m); err != nil {
		return Step{}, err
	}
	step := Step{Mark: m}
	start := time.Now()
	watch := func(vs ...int) error {
		for _, v := range vs {
			id, err := r.drv.watch(ctx, r.vars[v])
			if err != nil {
				return err
			}
			r.ids = append(r.ids, id)
		}
		return nil
	}
	var err error
	switch action {
	case ActionSet:
		err = watch(0)
	case ActionHit:
	case ActionMove:
		if err = r.drv.del(ctx, r.ids); err == nil {
			r.ids = r.ids[:0]
			err = watch(1)
		}
	case ActionFill:
		err = watch(0, 2, 3)
	case ActionClear:
		if err = r.drv.del(ctx, r.ids); err == nil {
			r.ids = r.ids[:0]
		}
	default:
		err = fmt.Errorf("%w: unknown action %q", ErrConfig, action)
	}
	if err != nil {
		return step, err
	}
	if action != ActionHit {
		step.CmdDur = time.Since(start)
	}
	if action == ActionClear {
		err = r.drv.contInterrupt(ctx, func(ctx context.Context) error { return waitRunning(ctx, r.pid, r.pid) })
		step.Stop = "interrupted"
	} else {
		step.Stop, err = r.drv.cont(ctx)
	}
	step.Dur = time.Since(start)
	return step, err
}
