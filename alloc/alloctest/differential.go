package alloctest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"bpbench/alloc"
)

// op is one step of a differential sequence: a reservation, or the release
// of the slot reservation ref got (again, if it was released already: a
// double release, which must be ErrNotReserved). Releases name their
// reservation by id, so a sequence stays meaningful when the shrinker
// drops steps; a release whose reservation was dropped or refused is
// skipped.
type op struct {
	id      int
	release bool
	r       alloc.Request
	ref     int
}

func (o op) String() string {
	if o.release {
		return fmt.Sprintf("#%d Release(#%d)", o.id, o.ref)
	}
	return fmt.Sprintf("#%d Reserve(%v)", o.id, o.r)
}

// mismatch is the first step at which a strategy leaves the model: the
// property it breaks (key, stable across replays of a shrunk sequence) and
// what happened.
type mismatch struct {
	step int
	key  string
	msg  string
}

// tally counts what a sequence exercised, by the model's verdicts.
type tally struct{ admitted, refused, noIndex, double int }

// replay runs ops on a fresh allocator and the model in lockstep and
// returns the first mismatch, or nil; tl, if not nil, counts the verdicts.
func replay(f Constructor, cfg alloc.Config, ops []op, tl *tally) (bad *mismatch) {
	if tl == nil {
		tl = new(tally)
	}
	var a alloc.Allocator
	step := -1
	fail := func(key, format string, args ...any) *mismatch {
		return &mismatch{step: step, key: key, msg: fmt.Sprintf(format, args...)}
	}
	if p := catch(func() { a, _ = f(cfg) }); p != nil || a == nil {
		return fail("constructor", "constructor failed: %v", p)
	}
	m := &model{cfg: cfg}
	slots := map[int]alloc.Slot{} // by reservation id, kept after release
	live := map[int]int{}         // reservation id -> position in m.live
	var p error
	for step = range ops {
		o := ops[step]
		if o.release {
			s, ok := slots[o.ref]
			if !ok {
				continue
			}
			var err error
			if p = catch(func() { err = a.Release(s) }); p != nil {
				return fail("panic", "Release(%v index %d) panicked: %v", s.Request(), s.Index(), p)
			}
			pos, held := live[o.ref]
			switch {
			case held && err != nil:
				return fail("release", "release of held %v index %d: %v", s.Request(), s.Index(), err)
			case !held && !errors.Is(err, alloc.ErrNotReserved):
				return fail("double-release", "second release of %v index %d: %v, want ErrNotReserved", s.Request(), s.Index(), err)
			case !held:
				tl.double++
			case held:
				m.remove(pos)
				delete(live, o.ref)
				for id, q := range live {
					if q > pos {
						live[id] = q - 1
					}
				}
			}
		} else {
			want, why := m.admit(o.r)
			wantIdx := m.index(o.r)
			var s alloc.Slot
			var err error
			if p = catch(func() { s, err = a.Reserve(o.r) }); p != nil {
				return fail("panic", "Reserve(%v) panicked: %v", o.r, p)
			}
			switch {
			case err != nil && !errors.Is(err, alloc.ErrNoSlot):
				return fail("refusal-error", "%v: %v, want nil or ErrNoSlot", o.r, err)
			case err == nil && !want:
				return fail("over-admission: "+rule(o.r), "%v admitted, the rules refuse it: %s", o.r, why)
			case err != nil && want:
				return fail("under-admission: "+rule(o.r), "%v refused (%v), the rules admit it: %s", o.r, err, why)
			case err != nil:
				tl.refused++
				continue
			case s.Request() != o.r:
				return fail("Slot.Request", "%v admitted as a slot for %v", o.r, s.Request())
			case s.Gen() == 0:
				return fail("Slot.Gen", "%v admitted with Gen() == 0", o.r)
			case s.Index() != wantIdx:
				return fail("Slot.Index: lowest free register of the target", "%v: index %d, want %d", o.r, s.Index(), wantIdx)
			}
			tl.admitted++
			if wantIdx == alloc.NoIndex {
				tl.noIndex++
			}
			slots[o.id] = s
			live[o.id] = len(m.live)
			m.add(o.r, wantIdx)
		}
		if step%8 == 0 || len(m.live) == 0 {
			var u bool
			if p = catch(func() { u = a.InUse() }); p != nil {
				return fail("panic", "InUse() panicked: %v", p)
			}
			if u != (len(m.live) > 0) {
				return fail("InUse", "InUse() = %v with %d slots held", u, len(m.live))
			}
		}
	}
	step = len(ops)
	for id := range live {
		s := slots[id]
		if err := catch(func() { p = a.Release(s) }); err != nil || p != nil {
			return fail("release", "final release of %v index %d: %v %v", s.Request(), s.Index(), err, p)
		}
	}
	var u bool
	if p = catch(func() { u = a.InUse() }); p != nil || u {
		return fail("InUse", "InUse() = %v (%v) after releasing everything", u, p)
	}
	return nil
}

// shrink returns the shortest sequence it finds that still fails with the
// same key: the failing prefix, then delta debugging (drop chunks of
// halving size, replaying from scratch, while the failure stays). At most
// budget replays.
func shrink(f Constructor, cfg alloc.Config, ops []op, bad *mismatch, budget int) ([]op, *mismatch) {
	ops = ops[:min(bad.step+1, len(ops))]
	for n := max(len(ops)/2, 1); budget > 0; {
		dropped := false
		for i := 0; i+n <= len(ops) && budget > 0; {
			cand := append(append([]op(nil), ops[:i]...), ops[i+n:]...)
			budget--
			if b := replay(f, cfg, cand, nil); b != nil && b.key == bad.key {
				ops, bad, dropped = cand[:min(b.step+1, len(cand))], b, true
				continue
			}
			i += n
		}
		if !dropped {
			if n == 1 {
				break
			}
			n /= 2
		}
	}
	return ops, bad
}

// sequence draws a random sequence for m: the three target shapes, both
// kinds, m.tasks tasks, CPUs drawn mostly from four hot ones. It tracks the
// model as it goes and alternates filling (mostly reservations, until the
// rules have refused eight) and draining (mostly releases, down to a
// random level), so every machine, even 256 CPUs with 16 registers, keeps
// reaching the rules' limits; one release in twenty repeats an earlier one.
func sequence(rng *rand.Rand, m machine, steps int) []op {
	hot := []int{0, min(1, m.CPUs-1), m.CPUs / 2, m.CPUs - 1}
	cpu := func() int {
		if rng.IntN(4) == 0 {
			return rng.IntN(m.CPUs)
		}
		return hot[rng.IntN(len(hot))]
	}
	md := &model{cfg: m.Config}
	var ops []op
	var live, gone []int // reservation ids, in md.live's order
	filling, refusals, floor := true, 0, 0
	for id := range steps {
		if len(gone) > 0 && rng.IntN(20) == 0 {
			ops = append(ops, op{id: id, release: true, ref: gone[rng.IntN(len(gone))]})
			continue
		}
		if len(live) > 0 && rng.IntN(100) < map[bool]int{true: 15, false: 80}[filling] {
			j := rng.IntN(len(live))
			ops = append(ops, op{id: id, release: true, ref: live[j]})
			gone = append(gone, live[j])
			live = append(live[:j], live[j+1:]...)
			md.remove(j)
			if !filling && len(live) <= floor {
				filling, refusals = true, 0
			}
			continue
		}
		r := alloc.Request{Kind: alloc.Kind(rng.IntN(2))}
		switch rng.IntN(3) {
		case 0:
			r.Task, r.CPU = alloc.NoTask, cpu()
		case 1:
			r.Task, r.CPU = rng.IntN(m.tasks), alloc.AnyCPU
		default:
			r.Task, r.CPU = rng.IntN(m.tasks), cpu()
		}
		ops = append(ops, op{id: id, r: r})
		if ok, _ := md.admit(r); !ok {
			if refusals++; filling && refusals >= 8 {
				filling, floor = false, rng.IntN(len(live)/2+1)
			}
			continue
		}
		md.add(r, md.index(r))
		live = append(live, id)
	}
	return ops
}

// testDifferential runs random sequences on the strategy and the model in
// lockstep on every machine: every reservation must be admitted or refused
// as the kernel's formulas say and get the model's index, every release
// and double release must answer as the contract says. A failure names
// the broken property and prints the shortest sequence found that breaks it.
func testDifferential(t tb, f Constructor) {
	steps := 6000
	if testing.Short() {
		steps = 1500
	}
	forMachines(t, nil, func(t tb, m machine) {
		n := steps
		if m.CPUs > 8 {
			n /= 3 // the brute-force model is O(CPUs x live) per step
		}
		ops := sequence(rand.New(rand.NewPCG(uint64(m.CPUs), uint64(m.Slots<<8|m.InstSlots))), m, n)
		var tl tally
		bad := replay(f, m.Config, ops, &tl)
		if bad == nil {
			t.Logf("%d steps: admitted %d (NoIndex %d), refused %d, double releases %d", len(ops), tl.admitted, tl.noIndex, tl.refused, tl.double)
			// The sequence is fixed by its seed and judged by the model, so
			// this checks the kit, not the strategy: it must keep reaching
			// the rules' limits.
			if tl.refused < len(ops)/40 || tl.admitted < len(ops)/5 || tl.double == 0 {
				t.Errorf("the sequence exercises too little: %+v in %d steps", tl, len(ops))
			}
			return
		}
		short, bad := shrink(f, m.Config, ops, bad, 4000)
		lines := make([]string, len(short))
		for i, o := range short {
			lines[i] = o.String()
		}
		t.Errorf("%s\nbroken by %s at step %d of this shortest sequence found (from %d random steps):\n\t%s",
			bad.key, bad.msg, bad.step, len(ops), strings.Join(lines, "\n\t"))
	})
}
