package debuggers

import (
	"bpbench/stats"
	"fmt"
	"time"
)

// Summary is one action's figures over a session's measured repetitions:
// per metric unit, the value of each repetition (Batches) and their median
// (Metrics).
type Summary struct {
	Action  string
	Reps    int
	Metrics map[string]float64
	Batches map[string][]float64
}

// Summarise turns a traced session (counts) and a timed one (usecs/op,
// cmd-usecs/op), of the same debugger and thread count, into one Summary
// per action. Either may be nil; the figures it would give are then
// absent.
func Summarise(traced, timed *Session) (map[string]*Summary, error) {
	out := map[string]*Summary{}
	get := func(a string) *Summary {
		s := out[a]
		if s == nil {
			s = &Summary{Action: a, Batches: map[string][]float64{}}
			out[a] = s
		}
		return s
	}
	if traced != nil {
		if traced.Acct == nil {
			return nil, fmt.Errorf("debuggers: Summarise: the traced session has no accounting")
		}
		by := traced.Acct.ByAction()
		warm := traced.Acct.Warmup()
		for _, a := range Actions {
			reps := by[a]
			if len(reps) == 0 {
				return nil, fmt.Errorf("debuggers: Summarise: no measured %s in the traced session", a)
			}
			s := get(a)
			s.Reps = len(reps)
			if w, ok := warm[a]; ok {
				s.Batches[MetricFirstReserves] = []float64{float64(w.Reserves())}
			}
			kinds := Requests(reps)
			policies := map[string]bool{}
			for _, c := range reps {
				for p := range c.Policy {
					policies[p] = true
				}
			}
			for _, c := range reps {
				add := func(unit string, v int) { s.Batches[unit] = append(s.Batches[unit], float64(v)) }
				add(MetricPtrace, c.Ptrace)
				for _, k := range kinds {
					add(PtraceMetric(k), c.ByRequest[k])
				}
				add(MetricDRWrites, c.DRWrites)
				add(MetricDRReads, c.DRReads)
				add(MetricDR7Writes, c.DR7Writes)
				add(MetricDR6Writes, c.DR6Writes)
				add(MetricRedundant, c.Redundant)
				add(MetricReserves, c.Reserves())
				add(MetricModifies, c.Modifies())
				add(MetricDisables, c.Outcomes[Disabled])
				add(MetricRefused, c.Outcomes[Refused])
				add(MetricChanges, c.Changes)
				for p := range policies {
					add(PolicyMetric(p), c.Policy[p])
				}
			}
		}
	}
	if timed != nil {
		n := map[string]int{}
		for _, st := range timed.Steps {
			if st.Mark.Rep < 1 {
				continue
			}
			s := get(st.Mark.Action)
			n[st.Mark.Action]++
			s.Batches[MetricUsecs] = append(s.Batches[MetricUsecs], usecs(st.Dur))
			s.Batches[MetricCmdUsecs] = append(s.Batches[MetricCmdUsecs], usecs(st.CmdDur))
		}
		for a, k := range n {
			if out[a].Reps == 0 {
				out[a].Reps = k
			}
		}
	}
	for _, s := range out {
		s.Metrics = make(map[string]float64, len(s.Batches))
		for unit, xs := range s.Batches {
			s.Metrics[unit] = stats.Median(xs)
		}
	}
	return out, nil
}

func usecs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
