package hwregs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"bpbench/alloc"
)

// fallbackAlloc is a test-only allocator used only while alloc registers no
// strategy: one lowest-free-index pool per target, without Linux's
// CPU-versus-task rules. It exists so the Writer tests can run before the
// strategies land; once any is registered the tests use the real ones.
type poolKey struct {
	t    Target
	pool alloc.Kind
}

type fallbackAlloc struct {
	cfg  alloc.Config
	mu   sync.Mutex
	used map[poolKey]uint32
	gen  uint32
	live map[alloc.Slot]bool
}

func (f *fallbackAlloc) Reserve(r alloc.Request) (alloc.Slot, error) {
	if err := f.cfg.ValidateRequest(r); err != nil {
		return alloc.Slot{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := poolKey{TargetOf(r), f.cfg.Pool(r.Kind)}
	for i := 0; i < f.cfg.PoolSize(r.Kind); i++ {
		if f.used[t]&(1<<i) == 0 {
			f.used[t] |= 1 << i
			f.gen++
			s := alloc.NewSlot(r, i, f.gen)
			f.live[s] = true
			return s, nil
		}
	}
	return alloc.Slot{}, fmt.Errorf("%v: %w", r, alloc.ErrNoSlot)
}

func (f *fallbackAlloc) Release(s alloc.Slot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live[s] {
		return fmt.Errorf("%v: %w", s.Request(), alloc.ErrNotReserved)
	}
	delete(f.live, s)
	f.used[poolKey{TargetOf(s.Request()), f.cfg.Pool(s.Request().Kind)}] &^= 1 << s.Index()
	return nil
}

func (f *fallbackAlloc) InUse() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live) > 0
}

// strategies returns the allocator strategies to test the Writer with.
func strategies(t testing.TB) []string {
	if s := alloc.Strategies(); len(s) > 0 {
		return s
	}
	t.Logf("no alloc strategy registered yet: using the test-only fallback allocator")
	return []string{"fallback"}
}

// newAlloc returns a fresh allocator of the named strategy.
func newAlloc(t testing.TB, name string, cfg alloc.Config) alloc.Allocator {
	t.Helper()
	if name == "fallback" {
		return &fallbackAlloc{cfg: cfg, used: map[poolKey]uint32{}, live: map[alloc.Slot]bool{}}
	}
	a, err := alloc.New(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// forEach runs f for every strategy and policy with a fresh x86 allocator
// (2 CPUs) and Sim.
func forEach(t *testing.T, f func(t *testing.T, w *Writer, sim *Sim)) {
	for _, s := range strategies(t) {
		for _, p := range Policies {
			t.Run(fmt.Sprintf("strategy=%s/policy=%v", s, p), func(t *testing.T) {
				sim := NewSim()
				w := NewWriter(newAlloc(t, s, alloc.X86(2)), sim, p)
				f(t, w, sim)
			})
		}
	}
}

// checkBP checks that bp's register and DR7 slot hold exactly its attr.
func checkBP(t testing.TB, be Backend, bp Breakpoint) {
	t.Helper()
	tg, i := TargetOf(bp.Slot.Request()), bp.Slot.Index()
	v, err := be.ReadDR(tg, i)
	if err != nil {
		t.Fatal(err)
	}
	d, err := be.ReadDR(tg, RegDR7)
	if err != nil {
		t.Fatal(err)
	}
	want := SlotCtl{Local: true, Type: bp.Attr.Type, Len: bp.Attr.Len}
	if v != bp.Attr.Addr || DR7(d).Slot(i) != want {
		t.Fatalf("%v: DR%d = %#x, DR7 slot %+v; want %#x, %+v", tg, i, v, DR7(d).Slot(i), bp.Attr.Addr, want)
	}
}

// regs returns DR0-DR3 and DR7 of tg.
func regs(t testing.TB, be Backend, tg Target) [5]uint64 {
	t.Helper()
	var r [5]uint64
	for i, reg := range []int{RegDR0, RegDR1, RegDR2, RegDR3, RegDR7} {
		v, err := be.ReadDR(tg, reg)
		if err != nil {
			t.Fatal(err)
		}
		r[i] = v
	}
	return r
}

// checkMirror checks the Writer's mirror of tg equals the backend.
func checkMirror(t testing.TB, w *Writer, tg Target) {
	t.Helper()
	m := w.lookup(tg)
	if m == nil {
		return
	}
	m.mu.Lock()
	cur := m.cur
	m.mu.Unlock()
	want := [5]uint64{cur.DR[0], cur.DR[1], cur.DR[2], cur.DR[3], uint64(cur.DR7)}
	if got := regs(t, w.Backend(), tg); got != want {
		t.Fatalf("%v: backend %#x, mirror %#x", tg, got, want)
	}
}

// traps reports whether a write of size bytes at addr traps on tg, and on
// which slot.
func traps(sim *Sim, tg Target, addr uint64, size int) (int, bool) {
	dr6, hit := sim.Access(tg, addr, size, true, false)
	return dr6.FirstFired(), hit
}

var taskReq = alloc.Request{Task: 1, CPU: alloc.AnyCPU, Kind: alloc.Data}

// mustRegister registers a for req, failing the test if w refuses.
func mustRegister(t *testing.T, w *Writer, req alloc.Request, a Attr) Breakpoint {
	t.Helper()
	bp, err := w.Register(req, a)
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

// registerFour registers four 8-byte write breakpoints of taskReq, at
// 0x1000, 0x1008, 0x1010 and 0x1018: one x86 pool's worth.
func registerFour(t *testing.T, w *Writer) []Breakpoint {
	t.Helper()
	var bps []Breakpoint
	for i := 0; i < 4; i++ {
		bps = append(bps, mustRegister(t, w, taskReq, Attr{Addr: uint64(0x1000 + 8*i), Len: 8, Type: Write}))
	}
	return bps
}

// TestWriterRegister fills a task's four registers, checks their exact
// contents and traps, refuses a fifth, and unregisters everything.
func TestWriterRegister(t *testing.T) {
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		tg := TargetOf(taskReq)
		attrs := []Attr{
			{Addr: 0x1000, Len: 8, Type: Write},
			{Addr: 0x2002, Len: 2, Type: ReadWrite},
			{Addr: 0x3004, Len: 4, Type: Write},
			{Addr: 0x4001, Len: 1, Type: Exec},
		}
		var bps []Breakpoint
		seen := map[int]bool{}
		for _, a := range attrs {
			req := taskReq
			req.Kind = a.Type.Kind()
			bp, err := w.Register(req, a)
			if err != nil {
				t.Fatalf("Register(%v): %v", a, err)
			}
			if seen[bp.Slot.Index()] {
				t.Fatalf("index %d handed out twice", bp.Slot.Index())
			}
			seen[bp.Slot.Index()] = true
			checkBP(t, sim, bp)
			bps = append(bps, bp)
		}
		before := regs(t, sim, tg)
		if _, err := w.Register(taskReq, Attr{Addr: 0x5000, Len: 1, Type: Write}); !errors.Is(err, alloc.ErrNoSlot) {
			t.Fatalf("fifth Register = %v, want ErrNoSlot", err)
		}
		if regs(t, sim, tg) != before {
			t.Fatalf("refused Register changed the registers")
		}
		for _, bp := range bps[:3] {
			if i, hit := traps(sim, tg, bp.Attr.Addr, 1); !hit || i != bp.Slot.Index() {
				t.Errorf("write at %v: trap %v on slot %d, want slot %d", bp.Attr, hit, i, bp.Slot.Index())
			}
		}
		if dr6, hit := sim.Access(tg, 0x4001, 1, false, true); !hit || dr6.FirstFired() != bps[3].Slot.Index() {
			t.Errorf("exec at 0x4001: %v %v", dr6, hit)
		}
		if _, hit := traps(sim, tg, 0x5000, 1); hit {
			t.Errorf("refused breakpoint traps")
		}
		for _, bp := range bps {
			if err := w.Unregister(bp); err != nil {
				t.Fatal(err)
			}
			if _, hit := traps(sim, tg, bp.Attr.Addr, 1); hit {
				t.Errorf("%v still traps after Unregister", bp.Attr)
			}
		}
		if d := mustRead(t, sim, tg, RegDR7); d != 0 {
			t.Errorf("DR7 = %#x after unregistering all", d)
		}
		if w.Allocator().InUse() {
			t.Errorf("allocator still in use")
		}
		checkMirror(t, w, tg)
	})
}

// TestWriterModifyTraps is bp_modify1 and bp_modify2 of
// tools/perf/arch/x86/tests/bp-modify.c on the Sim: after Modify the old
// address no longer traps and the new one does; a Modify to DR0 = -1 fails
// and the old breakpoint still traps. Both for Modify and
// DisableModifyEnable, on task and CPU targets.
func TestWriterModifyTraps(t *testing.T) {
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		for _, req := range []alloc.Request{taskReq, {Task: alloc.NoTask, CPU: 1, Kind: alloc.Data}} {
			for _, op := range []string{"modify", "disable-enable"} {
				modify := w.Modify
				if op == "disable-enable" {
					modify = w.DisableModifyEnable
				}
				tg := TargetOf(req)
				bp := mustRegister(t, w, req, Attr{Addr: 0x1000, Len: 8, Type: Write})
				slot := bp.Slot
				if err := modify(&bp, Attr{Addr: 0x2000, Len: 4, Type: ReadWrite}); err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				if bp.Slot != slot || bp.Attr.Addr != 0x2000 {
					t.Fatalf("%s: bp = %+v, want same slot at 0x2000", op, bp)
				}
				checkBP(t, sim, bp)
				if _, hit := traps(sim, tg, 0x1000, 8); hit {
					t.Errorf("%s: old address still traps", op)
				}
				if i, hit := traps(sim, tg, 0x2000, 4); !hit || i != slot.Index() {
					t.Errorf("%s: new address: trap %v slot %d", op, hit, i)
				}
				before, writes := regs(t, sim, tg), sim.Writes()
				old := bp
				for _, bad := range []Attr{{Addr: ^uint64(0), Len: 1, Type: Write}, {Addr: 0x2001, Len: 4, Type: Write}, {Addr: 0x2000, Len: 4, Type: Read}} {
					if err := modify(&bp, bad); !errors.Is(err, alloc.ErrInvalid) {
						t.Errorf("%s to %v = %v, want ErrInvalid", op, bad, err)
					}
				}
				if bp != old || regs(t, sim, tg) != before || sim.Writes() != writes {
					t.Errorf("%s: refused modify changed bp, registers or wrote", op)
				}
				if _, hit := traps(sim, tg, 0x2000, 4); !hit {
					t.Errorf("%s: breakpoint stopped trapping after a refused modify", op)
				}
				if err := w.Unregister(bp); err != nil {
					t.Fatal(err)
				}
			}
		}
		if w.Allocator().InUse() {
			t.Errorf("allocator still in use")
		}
	})
}

// TestWriterWriteCounts checks how many register writes each operation
// costs under each policy.
func TestWriterWriteCounts(t *testing.T) {
	want := map[WritePolicy]map[string]uint64{
		WriteChanged: {"register": 2, "modify-addr": 1, "modify-type": 1, "modify-shrink": 2, "modify-same": 0, "disable-enable": 3, "unregister": 1, "reregister": 3},
		WriteAll:     {"register": 6, "modify-addr": 6, "modify-type": 6, "modify-shrink": 6, "modify-same": 6, "disable-enable": 18, "unregister": 6, "reregister": 12},
	}
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		count := func(name string, f func() error) {
			t.Helper()
			n := sim.Writes()
			if err := f(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := sim.Writes() - n; got != want[w.Policy()][name] {
				t.Errorf("%s: %d writes, want %d", name, got, want[w.Policy()][name])
			}
		}
		var bp Breakpoint
		count("register", func() (err error) {
			bp, err = w.Register(taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
			return err
		})
		count("modify-addr", func() error { return w.Modify(&bp, Attr{Addr: 0x2000, Len: 8, Type: Write}) })
		count("modify-type", func() error { return w.Modify(&bp, Attr{Addr: 0x2000, Len: 8, Type: ReadWrite}) })
		// 8 bytes at 0x2000 to 1 byte at 0x2003: DR0 = 0x2003 is refused
		// under the old length, so DR7 goes first.
		count("modify-shrink", func() error { return w.Modify(&bp, Attr{Addr: 0x2003, Len: 1, Type: ReadWrite}) })
		checkBP(t, sim, bp)
		count("modify-same", func() error { return w.Modify(&bp, bp.Attr) })
		count("disable-enable", func() error { return w.DisableModifyEnable(&bp, Attr{Addr: 0x3000, Len: 4, Type: Write}) })
		count("reregister", func() error { _, err := w.Reregister(&bp, Attr{Addr: 0x4000, Len: 4, Type: Write}); return err })
		checkBP(t, sim, bp)
		count("unregister", func() error { return w.Unregister(bp) })
		checkMirror(t, w, TargetOf(taskReq))
	})
}

// TestWriterRollback fails each write of each operation in turn (Sim fault
// injection) and checks the registers are exactly as before, the mirror
// matches the backend, a failed Register releases its slot, and a failed
// update leaves the old breakpoint trapping. Then it fails the restore too
// and checks the mirror still tracks the backend.
func TestWriterRollback(t *testing.T) {
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		tg := TargetOf(taskReq)
		other := mustRegister(t, w, taskReq, Attr{Addr: 0x8000, Len: 8, Type: ReadWrite})
		bp := mustRegister(t, w, taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
		ops := map[string]func() error{
			"register": func() error {
				_, err := w.Register(taskReq, Attr{Addr: 0x5000, Len: 4, Type: Write})
				return err
			},
			"modify":         func() error { return w.Modify(&bp, Attr{Addr: 0x2000, Len: 2, Type: ReadWrite}) },
			"modify-shrink":  func() error { return w.Modify(&bp, Attr{Addr: 0x1003, Len: 1, Type: Write}) },
			"disable-enable": func() error { return w.DisableModifyEnable(&bp, Attr{Addr: 0x2000, Len: 2, Type: ReadWrite}) },
			"unregister":     func() error { return w.Unregister(bp) },
		}
		for name, op := range ops {
			for k := 0; ; k++ {
				before, old := regs(t, sim, tg), bp
				sim.InjectFaults(k, 1)
				err := op()
				sim.InjectFaults(0, 0)
				if err == nil {
					// k is past the operation's last write: undo it and go
					// on with the next operation.
					if k == 0 {
						t.Fatalf("%s: succeeded with its first write failing", name)
					}
					undoRollbackOp(t, w, name, &bp, other)
					break
				}
				if !errors.Is(err, ErrInjected) {
					t.Fatalf("%s failing write %d: %v", name, k, err)
				}
				if got := regs(t, sim, tg); got != before {
					t.Fatalf("%s failing write %d: registers %#x, want %#x", name, k, got, before)
				}
				checkMirror(t, w, tg)
				if bp != old {
					t.Fatalf("%s failing write %d changed bp", name, k)
				}
				checkBP(t, sim, bp)
				checkBP(t, sim, other)
				if _, hit := traps(sim, tg, 0x1000, 8); !hit {
					t.Fatalf("%s failing write %d: old breakpoint stopped trapping", name, k)
				}
			}
		}
		// A failed Register released its slot: two more fit beside bp and other.
		var extra []Breakpoint
		for i := 0; i < 2; i++ {
			b, err := w.Register(taskReq, Attr{Addr: uint64(0x9000 + 8*i), Len: 8, Type: Write})
			if err != nil {
				t.Fatalf("slot leaked by a failed Register: %v", err)
			}
			extra = append(extra, b)
		}
		for _, b := range extra {
			if err := w.Unregister(b); err != nil {
				t.Fatal(err)
			}
		}
		// Restore fails too: the operation reports both, and the mirror
		// still equals the backend, so the next operation repairs things.
		sim.InjectFaults(1, 100)
		err := w.DisableModifyEnable(&bp, Attr{Addr: 0x2000, Len: 2, Type: ReadWrite})
		sim.InjectFaults(0, 0)
		if !errors.Is(err, ErrInjected) {
			t.Fatalf("double failure: %v", err)
		}
		checkMirror(t, w, tg)
		if err := w.Modify(&bp, bp.Attr); err != nil {
			t.Fatal(err)
		}
		checkBP(t, sim, bp)
		for _, b := range []Breakpoint{bp, other} {
			if err := w.Unregister(b); err != nil {
				t.Fatal(err)
			}
		}
		if w.Allocator().InUse() {
			t.Errorf("allocator still in use")
		}
	})
}

// undoRollbackOp reverts a successful operation of TestWriterRollback so
// the next one starts from bp at 0x1000 and other.
func undoRollbackOp(t *testing.T, w *Writer, name string, bp *Breakpoint, other Breakpoint) {
	t.Helper()
	var err error
	switch name {
	case "register":
		m := w.lookup(TargetOf(taskReq))
		for i := 0; i < NumSlots; i++ {
			m.mu.Lock()
			s := m.owner[i]
			m.mu.Unlock()
			if s.Valid() && s != bp.Slot && s != other.Slot {
				err = w.Unregister(Breakpoint{Slot: s})
			}
		}
	case "unregister":
		*bp, err = w.Register(taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
	default:
		err = w.Modify(bp, Attr{Addr: 0x1000, Len: 8, Type: Write})
	}
	if err != nil {
		t.Fatalf("undoing %s: %v", name, err)
	}
}

// TestWriterStale checks that a breakpoint no longer held cannot be
// unregistered or modified, even when its register now belongs to another.
func TestWriterStale(t *testing.T) {
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		bp := mustRegister(t, w, taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
		if err := w.Unregister(bp); err != nil {
			t.Fatal(err)
		}
		if err := w.Unregister(bp); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("double Unregister = %v, want ErrNotReserved", err)
		}
		now := mustRegister(t, w, taskReq, Attr{Addr: 0x3000, Len: 4, Type: Write})
		for name, f := range map[string]func(*Breakpoint, Attr) error{"modify": w.Modify, "disable-enable": w.DisableModifyEnable} {
			stale := bp
			if err := f(&stale, Attr{Addr: 0x2000, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrNotReserved) {
				t.Errorf("%s of a stale breakpoint = %v, want ErrNotReserved", name, err)
			}
		}
		if _, err := w.Reregister(&bp, Attr{Addr: 0x2000, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("Reregister of a stale breakpoint = %v", err)
		}
		var zero Breakpoint
		if err := w.Modify(&zero, Attr{Addr: 0x2000, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("Modify of the zero Breakpoint = %v", err)
		}
		checkBP(t, sim, now)
		if err := w.Unregister(now); err != nil {
			t.Fatal(err)
		}
	})
}

// configured gives an allocator a Config so the Writer can see its pools.
type configured struct {
	alloc.Allocator
	cfg alloc.Config
}

func (c configured) Config() alloc.Config { return c.cfg }

// TestWriterKinds checks the request kind must match the type, and that a
// Modify between exec and data is allowed when the pools are shared (x86)
// and refused when they are separate.
func TestWriterKinds(t *testing.T) {
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		if _, err := w.Register(taskReq, Attr{Addr: 0x1000, Len: 1, Type: Exec}); !errors.Is(err, alloc.ErrInvalid) {
			t.Errorf("data request for exec attr = %v, want ErrInvalid", err)
		}
		instReq := taskReq
		instReq.Kind = alloc.Inst
		bp := mustRegister(t, w, instReq, Attr{Addr: 0x1001, Len: 1, Type: Exec})
		if err := w.Modify(&bp, Attr{Addr: 0x2000, Len: 8, Type: Write}); err != nil {
			t.Fatalf("exec to write on x86: %v", err)
		}
		checkBP(t, sim, bp)
		if err := w.Unregister(bp); err != nil {
			t.Fatal(err)
		}
	})
	for _, s := range strategies(t) {
		cfg := alloc.Config{CPUs: 1, Slots: 2, InstSlots: 2}
		w := NewWriter(configured{newAlloc(t, s, cfg), cfg}, NewSim(), WriteChanged)
		req := alloc.Request{Task: 1, CPU: alloc.AnyCPU, Kind: alloc.Inst}
		bp := mustRegister(t, w, req, Attr{Addr: 0x1001, Len: 1, Type: Exec})
		if err := w.Modify(&bp, Attr{Addr: 0x2000, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrInvalid) {
			t.Errorf("%s: exec to write across separate pools = %v, want ErrInvalid", s, err)
		}
		// Separate pools hand out index 0 twice on one target; the Writer
		// refuses to program one register for two breakpoints.
		req.Kind = alloc.Data
		if _, err := w.Register(req, Attr{Addr: 0x3000, Len: 8, Type: Write}); !errors.Is(err, ErrRegBusy) {
			t.Errorf("%s: second breakpoint in DR0 = %v, want ErrRegBusy", s, err)
		}
		if err := w.Unregister(bp); err != nil {
			t.Fatal(err)
		}
		if w.Allocator().InUse() {
			t.Errorf("%s: allocator still in use", s)
		}
	}
}

// TestWriterSlotRange checks a pool larger than x86's four registers gets
// a clear error for the fifth slot and releases it.
func TestWriterSlotRange(t *testing.T) {
	for _, s := range strategies(t) {
		w := NewWriter(newAlloc(t, s, alloc.Config{CPUs: 1, Slots: 8}), NewSim(), WriteChanged)
		bps := registerFour(t, w)
		if _, err := w.Register(taskReq, Attr{Addr: 0x2000, Len: 8, Type: Write}); !errors.Is(err, ErrSlotRange) {
			t.Errorf("%s: fifth of eight = %v, want ErrSlotRange", s, err)
		}
		for _, bp := range bps {
			if err := w.Unregister(bp); err != nil {
				t.Fatal(err)
			}
		}
		if w.Allocator().InUse() {
			t.Errorf("%s: slot leaked after ErrSlotRange", s)
		}
	}
}

// stealing reserves steal right after every Release, the way a CPU-bound
// perf event created between close and re-open takes the slot.
type stealing struct {
	alloc.Allocator
	steal  alloc.Request
	stolen []alloc.Slot
}

func (s *stealing) Release(sl alloc.Slot) error {
	err := s.Allocator.Release(sl)
	if got, rerr := s.Allocator.Reserve(s.steal); rerr == nil {
		s.stolen = append(s.stolen, got)
	}
	return err
}

// TestWriterReregisterRace checks Reregister loses the breakpoint when the
// slot is taken between Unregister and Register (ErrNoSlot, zero bp,
// registers cleared) and reports an index change, while Modify under the
// same thief keeps its slot.
func TestWriterReregisterRace(t *testing.T) {
	for _, s := range strategies(t) {
		t.Run("strategy="+s, func(t *testing.T) {
			// Task 1 holds four slots of one CPU's x86 pool; the thief is
			// CPU-bound on that CPU, so the slot task 1 frees is the only one.
			st := &stealing{Allocator: newAlloc(t, s, alloc.X86(1)), steal: alloc.Request{Task: alloc.NoTask, CPU: 0, Kind: alloc.Data}}
			sim := NewSim()
			w := NewWriter(st, sim, WriteChanged)
			bps := registerFour(t, w)
			if err := w.Modify(&bps[1], Attr{Addr: 0x5000, Len: 8, Type: Write}); err != nil {
				t.Fatalf("Modify under a thief: %v", err)
			}
			lost := bps[0]
			moved, err := w.Reregister(&bps[0], Attr{Addr: 0x6000, Len: 8, Type: Write})
			if s == "fallback" {
				// The fallback allocator keeps CPU and task pools apart, so
				// nothing is stolen: the test only checks the Reregister path.
				if err != nil || moved || bps[0].Slot.Index() != lost.Slot.Index() {
					t.Fatalf("fallback Reregister = %v, moved %v", err, moved)
				}
				checkBP(t, sim, bps[0])
			} else {
				if !errors.Is(err, alloc.ErrNoSlot) || moved {
					t.Fatalf("Reregister with the slot stolen = %v, moved %v; want ErrNoSlot", err, moved)
				}
				if bps[0] != (Breakpoint{}) {
					t.Fatalf("lost breakpoint not zeroed: %+v", bps[0])
				}
				if DR7(mustRead(t, sim, TargetOf(taskReq), RegDR7)).Enabled(lost.Slot.Index()) {
					t.Fatalf("lost slot still enabled")
				}
				if _, hit := traps(sim, TargetOf(taskReq), 0x6000, 8); hit {
					t.Fatalf("lost breakpoint traps at its new address")
				}
				bps = bps[1:]
			}
			for _, bp := range bps {
				if bp.Slot.Valid() {
					if err := w.Unregister(bp); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, sl := range st.stolen {
				if err := st.Allocator.Release(sl); err != nil {
					t.Fatal(err)
				}
			}
			if st.InUse() {
				t.Errorf("allocator still in use")
			}
		})
	}
}

// TestWriterReregisterMoves checks Reregister reports a changed index when
// another breakpoint of the same task takes the freed register.
func TestWriterReregisterMoves(t *testing.T) {
	for _, s := range strategies(t) {
		st := &stealing{Allocator: newAlloc(t, s, alloc.X86(1)), steal: taskReq}
		sim := NewSim()
		w := NewWriter(st, sim, WriteAll)
		bp := mustRegister(t, w, taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
		old := bp.Slot.Index()
		moved, err := w.Reregister(&bp, Attr{Addr: 0x2000, Len: 8, Type: Write})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if moved != (bp.Slot.Index() != old) || !moved {
			t.Errorf("%s: moved = %v, index %d -> %d; the thief took the freed index so it must move", s, moved, old, bp.Slot.Index())
		}
		checkBP(t, sim, bp)
		if err := w.Unregister(bp); err != nil {
			t.Fatal(err)
		}
		for _, sl := range st.stolen {
			_ = st.Allocator.Release(sl)
		}
		if st.InUse() {
			t.Errorf("%s: allocator still in use", s)
		}
	}
}

// TestWriterModifyAllocs checks Modify does not allocate on the Sim.
func TestWriterModifyAllocs(t *testing.T) {
	for _, p := range Policies {
		w := NewWriter(newAlloc(t, strategies(t)[0], alloc.X86(2)), NewSim(), p)
		bp := mustRegister(t, w, taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
		a, b := Attr{Addr: 0x1000, Len: 8, Type: Write}, Attr{Addr: 0x2000, Len: 8, Type: Write}
		n := testing.AllocsPerRun(1000, func() {
			_ = w.Modify(&bp, b)
			_ = w.DisableModifyEnable(&bp, a)
		})
		if n != 0 {
			t.Errorf("policy=%v: Modify+DisableModifyEnable allocate %v times, want 0", p, n)
		}
	}
}

// TestWriterConcurrent runs Register, Modify, DisableModifyEnable,
// Reregister and Unregister from many goroutines over shared task and CPU
// targets (run with -race) and checks after every step that each live
// breakpoint's registers hold its attr and no register index is held
// twice per target; at the end every register is clear and nothing is held.
func TestWriterConcurrent(t *testing.T) {
	const goroutines, rounds, tasks, cpus = 8, 400, 3, 2
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		var (
			mu     sync.Mutex
			holder = map[Target]*[NumSlots]int{} // goroutine+1 holding each index
		)
		claim := func(g int, bp Breakpoint, on bool) {
			mu.Lock()
			defer mu.Unlock()
			tg := TargetOf(bp.Slot.Request())
			h := holder[tg]
			if h == nil {
				h = new([NumSlots]int)
				holder[tg] = h
			}
			i := bp.Slot.Index()
			switch {
			case on && h[i] != 0:
				t.Errorf("%v DR%d given to goroutine %d while goroutine %d holds it", tg, i, g, h[i]-1)
			case on:
				h[i] = g + 1
			default:
				h[i] = 0
			}
		}
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				attr := func() Attr {
					n := []int{1, 2, 4, 8}[rng.IntN(4)]
					ty := []Type{Write, ReadWrite}[rng.IntN(2)]
					return Attr{Addr: uint64(0x10000*(g+1) + 8*rng.IntN(64)), Len: n, Type: ty}
				}
				var live []Breakpoint
				for r := 0; r < rounds && !t.Failed(); r++ {
					switch op := rng.IntN(6); {
					case op <= 1 || len(live) == 0:
						req := alloc.Request{Task: rng.IntN(tasks), CPU: alloc.AnyCPU, Kind: alloc.Data}
						if rng.IntN(4) == 0 {
							req = alloc.Request{Task: alloc.NoTask, CPU: rng.IntN(cpus), Kind: alloc.Data}
						}
						bp, err := w.Register(req, attr())
						if errors.Is(err, alloc.ErrNoSlot) {
							continue
						}
						if err != nil {
							t.Error(err) // ends the loop; live breakpoints are still unregistered below
							continue
						}
						claim(g, bp, true)
						checkBP(t, sim, bp)
						live = append(live, bp)
					case op == 2 || op == 3:
						// Both change bp in its slot, so it stays live.
						change := w.Modify
						if op == 3 {
							change = w.DisableModifyEnable
						}
						bp := &live[rng.IntN(len(live))]
						if err := change(bp, attr()); err != nil {
							t.Error(err) // ends the loop; live breakpoints are still unregistered below
							continue
						}
						checkBP(t, sim, *bp)
					case op == 4:
						k := rng.IntN(len(live))
						claim(g, live[k], false)
						if _, err := w.Reregister(&live[k], attr()); err != nil {
							if !errors.Is(err, alloc.ErrNoSlot) {
								t.Error(err)
							}
							if !live[k].Slot.Valid() {
								live = append(live[:k], live[k+1:]...)
							}
							continue
						}
						claim(g, live[k], true)
						checkBP(t, sim, live[k])
					default:
						k := rng.IntN(len(live))
						claim(g, live[k], false)
						if err := w.Unregister(live[k]); err != nil {
							t.Error(err) // ends the loop; live breakpoints are still unregistered below
							continue
						}
						live = append(live[:k], live[k+1:]...)
					}
				}
				for _, bp := range live {
					claim(g, bp, false)
					if err := w.Unregister(bp); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		for tg := range holder {
			if d := mustRead(t, sim, tg, RegDR7); d != 0 {
				t.Errorf("%v: DR7 = %v at the end", tg, DR7(d))
			}
			checkMirror(t, w, tg)
		}
		if w.Allocator().InUse() {
			t.Errorf("allocator still in use at the end")
		}
	})
}

// TestAttrFastCheck checks Validate's inlined accepting check against its
// field-by-field explanation over a grid of edge values: ok must accept
// exactly what the explanation finds nothing wrong with.
func TestAttrFastCheck(t *testing.T) {
	lens := []int{-8, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 1 << 40}
	addrs := []uint64{0, 1, 2, 3, 4, 6, 7, 8, 0x1000, 0x1003, MaxUserAddr - 16, MaxUserAddr - 8, MaxUserAddr - 4,
		MaxUserAddr - 1, MaxUserAddr, MaxUserAddr + 8, 1 << 63, ^uint64(0) - 7, ^uint64(0)}
	n := 0
	for ty := Type(0); ty <= Read+1; ty++ {
		for _, l := range lens {
			for _, ad := range addrs {
				a := Attr{Addr: ad, Len: l, Type: ty}
				explained := !errors.Is(a.invalid(), errFastCheck)
				if a.ok() == explained {
					t.Errorf("%+v: ok = %v but invalid() = %v", a, a.ok(), a.invalid())
				}
				if err := a.Validate(); (err == nil) != a.ok() || (err != nil && !errors.Is(err, alloc.ErrInvalid)) {
					t.Errorf("%+v: Validate = %v, ok = %v", a, err, a.ok())
				}
				if a.ok() {
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the grid has no valid attribute")
	}
}

// TestWriterMirrorHint checks that the mirror a Breakpoint carries from
// Register never lets through what the Writer's own lookup would refuse: a
// copy that outlived its slot (even with the same register reused), a
// breakpoint of another Writer on the same target, and a Breakpoint built
// by hand from a held slot, which has no hint and must still work.
func TestWriterMirrorHint(t *testing.T) {
	forEach(t, func(t *testing.T, w *Writer, sim *Sim) {
		tg := TargetOf(taskReq)
		bp := mustRegister(t, w, taskReq, Attr{Addr: 0x1000, Len: 8, Type: Write})
		stale := bp
		if err := w.Unregister(bp); err != nil {
			t.Fatal(err)
		}
		// The same register again, for a new slot: the stale copy's hint
		// points at the right mirror, but its slot no longer owns DR0.
		now := mustRegister(t, w, taskReq, Attr{Addr: 0x3000, Len: 4, Type: Write})
		if now.Slot.Index() != stale.Slot.Index() {
			t.Fatalf("re-registered at DR%d, want the freed DR%d", now.Slot.Index(), stale.Slot.Index())
		}
		before := regs(t, sim, tg)
		if err := w.Modify(&stale, Attr{Addr: 0x2000, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("Modify of a stale copy = %v, want ErrNotReserved", err)
		}
		if err := w.Unregister(stale); !errors.Is(err, alloc.ErrNotReserved) {
			t.Errorf("Unregister of a stale copy = %v, want ErrNotReserved", err)
		}
		if got := regs(t, sim, tg); got != before {
			t.Fatalf("refused operations changed the registers: %#x, want %#x", got, before)
		}

		// Another Writer on another backend holds the same target and slot
		// index; its breakpoint must not reach this Writer's mirror.
		sim2 := NewSim()
		w2 := NewWriter(newAlloc(t, strategies(t)[0], alloc.X86(2)), sim2, w.Policy())
		foreign, err := w2.Register(taskReq, Attr{Addr: 0x5000, Len: 8, Type: Write})
		if err != nil {
			t.Fatal(err)
		}
		if foreign.Slot == now.Slot {
			t.Fatalf("setup: the two allocators handed out equal slots %v", now.Slot)
		}
		if err := w.Modify(&foreign, Attr{Addr: 0x6000, Len: 8, Type: Write}); !errors.Is(err, alloc.ErrNotReserved) {
			t.Fatalf("Modify of another Writer's breakpoint = %v, want ErrNotReserved", err)
		}
		if got := regs(t, sim, tg); got != before {
			t.Fatalf("another Writer's breakpoint changed this Writer's registers: %#x, want %#x", got, before)
		}
		checkBP(t, sim2, foreign)
		if err := w2.Unregister(foreign); err != nil {
			t.Fatal(err)
		}

		// A hand-built Breakpoint has no hint: the Writer looks its mirror up.
		byHand := Breakpoint{Slot: now.Slot, Attr: now.Attr}
		if err := w.Modify(&byHand, Attr{Addr: 0x4000, Len: 8, Type: ReadWrite}); err != nil {
			t.Fatalf("Modify of a hand-built Breakpoint: %v", err)
		}
		checkBP(t, sim, byHand)
		checkMirror(t, w, tg)
		if err := w.Unregister(byHand); err != nil {
			t.Fatal(err)
		}
		if w.Allocator().InUse() {
			t.Errorf("allocator still in use")
		}
	})
}
