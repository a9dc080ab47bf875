package conform

import (
	"fmt"
	"strconv"
	"strings"

	"bpbench/alloc"
)

// The trace is the kernel's side of a lockstep sequence, one line an op:
//
//	12 open task=1/cpu=any/inst admitted
//	13 open task=none/cpu=0/data ENOSPC
//	14 close 12
//
// (a close names the op of the open it undoes). Replayed through a model
// configured as the kernel's machine was, it asks the model exactly what
// the kernel was asked, without the kernel: a sequence recorded on a real
// arm64 kernel checks the separate-pool rules on any machine.

func traceOpen(op int, req alloc.Request, admitted bool) string {
	return fmt.Sprintf("%d open %s %s", op, req, answer(admitted))
}

func traceClose(op, opened int) string { return fmt.Sprintf("%d close %d", op, opened) }

// Replay replays a recorded trace through the named strategies configured
// as cfg, and returns each strategy's agreement with the kernel's
// recorded answers (at most maxDiv divergences listed).
func Replay(trace []string, cfg alloc.Config, names []string, maxDiv int) ([]Agreement, error) {
	m, err := newModels(cfg, names, maxDiv)
	if err != nil {
		return nil, err
	}
	for n, line := range trace {
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("conform: trace line %d %q: want \"OP open REQUEST admitted|ENOSPC\" or \"OP close OP\"", n+1, line)
		}
		op, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("conform: trace line %d %q: op: %w", n+1, line, err)
		}
		switch {
		case f[1] == "open" && len(f) == 4 && (f[3] == "admitted" || f[3] == "ENOSPC"):
			req, err := ParseRequest(f[2])
			if err != nil {
				return nil, fmt.Errorf("conform: trace line %d: %w", n+1, err)
			}
			if err := m.open(op, req, nil, f[3] == "admitted"); err != nil {
				return nil, err
			}
		case f[1] == "close" && len(f) == 3:
			opened, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("conform: trace line %d %q: %w", n+1, line, err)
			}
			j := -1
			for i, l := range m.held {
				if l.op == opened {
					j = i
				}
			}
			if j < 0 {
				return nil, fmt.Errorf("conform: trace line %d %q: op %d holds no breakpoint", n+1, line, opened)
			}
			if _, err := m.close(j); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("conform: trace line %d %q: want \"OP open REQUEST admitted|ENOSPC\" or \"OP close OP\"", n+1, line)
		}
	}
	return m.agree, nil
}

// ParseRequest parses a request as alloc.Request.String writes it:
// "task=3/cpu=any/data", "task=none/cpu=1/inst".
func ParseRequest(s string) (alloc.Request, error) {
	bad := func(why string) (alloc.Request, error) {
		return alloc.Request{}, fmt.Errorf("%w: request %q: %s (want task=N|none/cpu=N|any/data|inst)", alloc.ErrInvalid, s, why)
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return bad("three parts")
	}
	task, ok1 := strings.CutPrefix(parts[0], "task=")
	cpu, ok2 := strings.CutPrefix(parts[1], "cpu=")
	if !ok1 || !ok2 {
		return bad("task= and cpu=")
	}
	r := alloc.Request{Task: alloc.NoTask, CPU: alloc.AnyCPU}
	var err error
	if task != "none" {
		if r.Task, err = strconv.Atoi(task); err != nil || r.Task < 0 {
			return bad("task")
		}
	}
	if cpu != "any" {
		if r.CPU, err = strconv.Atoi(cpu); err != nil || r.CPU < 0 {
			return bad("cpu")
		}
	}
	switch parts[2] {
	case "data":
		r.Kind = alloc.Data
	case "inst":
		r.Kind = alloc.Inst
	default:
		return bad("kind")
	}
	return r, nil
}
