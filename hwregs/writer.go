package hwregs

import (
	"errors"
	"fmt"
	"sync"

	"bpbench/alloc"
)

// Errors of the Writer; test with errors.Is.
var (
	// ErrSlotRange: the allocator handed out an index with no debug
	// register behind it (a pool larger than x86's four).
	ErrSlotRange = errors.New("slot index beyond DR0-DR3")
	// ErrRegBusy: the allocator handed out an index whose register another
	// live breakpoint of the same target already uses, as happens when
	// instructions get a separate pool but share x86's registers.
	ErrRegBusy = errors.New("debug register already used by another breakpoint")
)

// Breakpoint is a breakpoint the Writer has programmed: its reserved slot
// and the attributes in its registers. It is a value; the Writer updates it
// through a pointer on Modify and Reregister.
type Breakpoint struct {
	Slot alloc.Slot
	Attr Attr

	// m is the mirror of Slot's target in the Writer that registered it, so
	// Modify and Unregister skip the shard lookup. It is only a hint: the
	// Writer trusts it after checking, under m.mu, that it belongs to this
	// Writer and that Slot still owns its register, the same check a
	// looked-up mirror gets, so a stale or copied Breakpoint still fails
	// with ErrNotReserved.
	m *mirror
}

// Configurer is implemented by allocators that expose their Config. The
// Writer uses it to refuse a Modify that moves a breakpoint between
// separate instruction and data pools; without it the Writer assumes x86's
// shared pool, which is what its registers are.
type Configurer interface {
	Config() alloc.Config
}

// writerShards spreads target mirrors over independently locked shards. A
// power of two.
const writerShards = 64

// Writer puts breakpoints into debug registers: it reserves slots from an
// allocator and programs a Backend, keeping a mirror of each target's
// DR0-DR3 and DR7 so that WriteChanged can skip registers that already hold
// the wanted value. One Writer serves every goroutine; operations on
// different targets lock different mirrors. The mirror always equals what
// the backend holds, failure paths included, provided nothing else writes
// the same targets through the backend.
type Writer struct {
	alloc  alloc.Allocator
	be     Backend
	wp     WritePolicy
	zero   bool // Unregister zeroes the address register too (WriteAll)
	cfg    alloc.Config
	hasCfg bool
	shards [writerShards]writerShard
}

type writerShard struct {
	mu      sync.RWMutex
	mirrors map[Target]*mirror
	_       [32]byte // pad to a cache line against false sharing between shards
}

// regState is the part of a register file the Writer owns.
type regState = Regs

// mirror is the Writer's copy of one target's registers and which slot
// owns each register. What every operation touches (the lock, the owning
// Writer, the target, the registers, the state being written) comes first,
// and a plan's first writes come right after the owners, so that after a
// system call has evicted the caches a change touches three or four lines.
type mirror struct {
	mu    sync.Mutex
	w     *Writer
	t     Target
	cur   regState
	next  regState             // scratch: the state being written, used under mu
	owner [NumSlots]alloc.Slot // zero Slot: free
	plan  [planCap]RegWrite    // scratch for the policy's plans, used under mu
}

// NewWriter returns a Writer reserving from a and writing through be with
// the register-writing policy wp: WriteChanged, WriteAll or one of the
// caller's own (RegisterPolicy gives it a name, ParsePolicy finds it by
// name). A nil allocator, backend or policy is a programming error and
// panics.
func NewWriter(a alloc.Allocator, be Backend, wp WritePolicy) *Writer {
	if a == nil || be == nil || wp == nil {
		panic("hwregs: NewWriter needs a non-nil allocator, backend and policy")
	}
	w := &Writer{alloc: a, be: be, wp: wp, zero: wp == WriteAll}
	if c, ok := a.(Configurer); ok {
		w.cfg, w.hasCfg = c.Config(), true
	}
	for i := range w.shards {
		w.shards[i].mirrors = make(map[Target]*mirror)
	}
	return w
}

// Policy returns the Writer's register-writing policy.
func (w *Writer) Policy() WritePolicy { return w.wp }

// Backend returns the backend the Writer programs.
func (w *Writer) Backend() Backend { return w.be }

// Allocator returns the allocator the Writer reserves from.
func (w *Writer) Allocator() alloc.Allocator { return w.alloc }

func (w *Writer) shard(t Target) *writerShard {
	h := uint64(int64(t.Task))*0x9e3779b97f4a7c15 ^ uint64(int64(t.CPU))*0xc2b2ae3d27d4eb4f
	return &w.shards[(h>>32)&(writerShards-1)]
}

// lookup returns t's mirror, or nil if the Writer never programmed t.
func (w *Writer) lookup(t Target) *mirror {
	sh := w.shard(t)
	sh.mu.RLock()
	m := sh.mirrors[t]
	sh.mu.RUnlock()
	return m
}

// mirrorOf returns t's mirror, creating it from the backend's current
// registers so that WriteChanged never skips a write the backend needs.
func (w *Writer) mirrorOf(t Target) (*mirror, error) {
	if m := w.lookup(t); m != nil {
		return m, nil
	}
	sh := w.shard(t)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if m := sh.mirrors[t]; m != nil {
		return m, nil
	}
	m := &mirror{w: w, t: t}
	for i := 0; i < NumSlots; i++ {
		v, err := w.be.ReadDR(t, i)
		if err != nil {
			return nil, fmt.Errorf("hwregs: reading DR%d of %v: %w", i, t, err)
		}
		m.cur.DR[i] = v
	}
	v, err := w.be.ReadDR(t, RegDR7)
	if err != nil {
		return nil, fmt.Errorf("hwregs: reading DR7 of %v: %w", t, err)
	}
	m.cur.DR7 = DR7(v)
	sh.mirrors[t] = m
	return m, nil
}

// held returns the mirror of bp's target, locked, and the register i bp
// owns in it, if bp still owns it; otherwise an error wrapping
// alloc.ErrNotReserved or ErrSlotRange. It takes bp's mirror hint if bp
// has one from this Writer.
func (w *Writer) held(op string, bp *Breakpoint) (m *mirror, i int, err error) {
	i = bp.Slot.Index()
	if bp.Slot.Valid() && uint(i) < NumSlots {
		m = bp.m
		if m == nil || m.w != w {
			m = w.lookup(TargetOf(bp.Slot.Request()))
		}
		if m != nil {
			m.mu.Lock()
			if m.owner[i] == bp.Slot {
				return m, i, nil
			}
			m.mu.Unlock()
		}
	}
	return nil, 0, notHeld(op, bp)
}

// notHeld explains why held refused bp; it is off the hot path so that
// building the error costs nothing when bp is held.
func notHeld(op string, bp *Breakpoint) error {
	i := bp.Slot.Index()
	switch {
	case !bp.Slot.Valid():
		return fmt.Errorf("hwregs: %s: %w: zero Breakpoint (never registered, or lost by Reregister)", op, alloc.ErrNotReserved)
	case i < 0 || i >= NumSlots:
		return fmt.Errorf("hwregs: %s: slot index %d: %w", op, i, ErrSlotRange)
	}
	return fmt.Errorf("hwregs: %s: DR%d of %v: %w (already unregistered)", op, i, TargetOf(bp.Slot.Request()), alloc.ErrNotReserved)
}

// checkAttr validates a for a breakpoint of request kind k.
func checkAttr(a Attr, k alloc.Kind) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Type.Kind() != k {
		return fmt.Errorf("%w: Attr.Type = %v needs Request.Kind = %v, have %v", alloc.ErrInvalid, a.Type, a.Type.Kind(), k)
	}
	return nil
}

// Register reserves a slot for req and programs a into it: DR[Index], then
// DR7. The attribute must be valid and match req.Kind. If a write fails the
// registers are restored and the slot released.
func (w *Writer) Register(req alloc.Request, a Attr) (Breakpoint, error) {
	if err := checkAttr(a, req.Kind); err != nil {
		return Breakpoint{}, fmt.Errorf("hwregs: register %v: %w", req, err)
	}
	m, err := w.mirrorOf(TargetOf(req))
	if err != nil {
		return Breakpoint{}, err
	}
	return w.register(m, req, a)
}

// register is Register once a is checked and m is the mirror of req's
// target.
func (w *Writer) register(m *mirror, req alloc.Request, a Attr) (Breakpoint, error) {
	s, err := w.alloc.Reserve(req)
	if errors.Is(err, alloc.ErrNoSlot) {
		// A refusal is the hot path of a holder retrying against
		// competitors: the allocator's error already names the target and
		// is preallocated, so pass it on as it is rather than allocate.
		return Breakpoint{}, err
	}
	if err != nil {
		return Breakpoint{}, fmt.Errorf("hwregs: register %v: %w", req, err)
	}
	i := s.Index()
	if i < 0 || i >= NumSlots {
		return Breakpoint{}, w.releaseAfter(s, fmt.Errorf("hwregs: register %v: slot index %d: %w", req, i, ErrSlotRange))
	}
	m.mu.Lock()
	if m.owner[i].Valid() {
		m.mu.Unlock()
		return Breakpoint{}, w.releaseAfter(s, fmt.Errorf("hwregs: register %v: DR%d of %v: %w", req, i, m.t, ErrRegBusy))
	}
	if err := w.change(m, i, a.Addr, m.cur.DR7.WithSlot(i, a)); err != nil {
		m.mu.Unlock()
		return Breakpoint{}, w.releaseAfter(s, fmt.Errorf("hwregs: register %v at DR%d: %w", a, i, err))
	}
	m.owner[i] = s
	m.mu.Unlock()
	return Breakpoint{Slot: s, Attr: a, m: m}, nil
}

// releaseAfter releases s after a failed Register and returns err, joined
// with the release error if that fails too.
func (w *Writer) releaseAfter(s alloc.Slot, err error) error {
	if rerr := w.alloc.Release(s); rerr != nil {
		return errors.Join(err, fmt.Errorf("releasing slot: %w", rerr))
	}
	return err
}

// checkModify validates a as the new attributes of bp.
func (w *Writer) checkModify(bp *Breakpoint, a Attr) error {
	if !a.ok() {
		return a.invalid()
	}
	if k := bp.Slot.Request().Kind; a.Type.Kind() != k && w.hasCfg && w.cfg.Pool(k) != w.cfg.Pool(a.Type.Kind()) {
		return fmt.Errorf("%w: Attr.Type = %v: moving a %v breakpoint to the separate %v pool needs a new slot (use Reregister)", alloc.ErrInvalid, a.Type, k, a.Type.Kind())
	}
	return nil
}

// heldForModify checks that bp may change to a (checkModify) and then
// takes bp's mirror as held does; op names the call in errors. The caller
// unlocks m.mu.
func (w *Writer) heldForModify(op string, bp *Breakpoint, a Attr) (m *mirror, i int, err error) {
	if err := w.checkModify(bp, a); err != nil {
		return nil, 0, fmt.Errorf("hwregs: %s %v: %w", op, bp.Attr, err)
	}
	return w.held(op, bp)
}

// Modify changes bp to a in place: the same slot and register, no call to
// the allocator, so no other breakpoint can take the slot meanwhile (Linux's
// modify_user_hw_breakpoint). It writes DR[Index] and then DR7 as the
// policy requires. If a is invalid or a write fails, bp and its registers
// stay exactly as they were and the breakpoint keeps trapping. bp must not
// be used by another goroutine at the same time.
func (w *Writer) Modify(bp *Breakpoint, a Attr) error {
	m, i, err := w.heldForModify("modify", bp, a)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	if err := w.change(m, i, a.Addr, m.cur.DR7.WithSlot(i, a)); err != nil {
		return fmt.Errorf("hwregs: modify %v to %v at DR%d: %w", bp.Attr, a, i, err)
	}
	bp.Attr, bp.m = a, m
	return nil
}

// DisableModifyEnable changes bp to a the way debuggers do to avoid a trap
// on a half-written breakpoint: DR7 with the slot off, then DR[Index], then
// DR7 with the slot on; under WriteAll each of the three states is written
// whole. Failure leaves bp as it was, as Modify does.
func (w *Writer) DisableModifyEnable(bp *Breakpoint, a Attr) error {
	m, i, err := w.heldForModify("disable-modify-enable", bp, a)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	addr, dr7 := m.cur.DR[i], m.cur.DR7
	off := dr7.WithoutSlot(i)
	err = w.set(m, i, addr, off, w.wp)
	if err == nil {
		err = w.set(m, i, a.Addr, off, w.wp)
	}
	if err == nil {
		err = w.set(m, i, a.Addr, off.WithSlot(i, a), w.wp)
	}
	if err != nil {
		return fmt.Errorf("hwregs: disable-modify-enable %v to %v at DR%d: %w", bp.Attr, a, i, w.rollback(m, i, addr, dr7, err))
	}
	bp.Attr, bp.m = a, m
	return nil
}

// Unregister disables bp's slot in DR7 (and, under WriteAll, zeroes
// DR[Index]) and releases the slot. Unregistering a breakpoint twice is an
// error wrapping alloc.ErrNotReserved. If the write fails the breakpoint
// stays registered and active.
func (w *Writer) Unregister(bp Breakpoint) error {
	_, err := w.unregister(&bp)
	return err
}

// unregister is Unregister; it also returns the mirror bp was in, for
// Reregister to register into without looking it up again.
func (w *Writer) unregister(bp *Breakpoint) (*mirror, error) {
	m, i, err := w.held("unregister", bp)
	if err != nil {
		return nil, err
	}
	addr := m.cur.DR[i]
	if w.zero {
		addr = 0
	}
	if err := w.change(m, i, addr, m.cur.DR7.WithoutSlot(i)); err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("hwregs: unregister %v at DR%d: %w", bp.Attr, i, err)
	}
	m.owner[i] = alloc.Slot{}
	m.mu.Unlock()
	if err := w.alloc.Release(bp.Slot); err != nil {
		return nil, fmt.Errorf("hwregs: unregister %v at DR%d: %w", bp.Attr, i, err)
	}
	return m, nil
}

// Reregister changes bp to a by Unregister and then Register, the baseline
// Modify is compared with. Between the two another breakpoint can take the
// slot: then it returns an error wrapping alloc.ErrNoSlot and sets *bp to
// the zero Breakpoint. moved reports that the new slot has a different
// register index than the old one. An invalid a is refused before anything
// is unregistered.
func (w *Writer) Reregister(bp *Breakpoint, a Attr) (moved bool, err error) {
	req := bp.Slot.Request()
	req.Kind = a.Type.Kind()
	if err := checkAttr(a, req.Kind); err != nil {
		return false, fmt.Errorf("hwregs: reregister %v: %w", bp.Attr, err)
	}
	m, err := w.unregister(bp)
	if err != nil {
		return false, fmt.Errorf("hwregs: reregister: %w", err)
	}
	old := bp.Slot.Index()
	// req has bp's target, so m is its mirror too.
	nb, err := w.register(m, req, a)
	if err != nil {
		*bp = Breakpoint{}
		return false, fmt.Errorf("hwregs: reregister: breakpoint gone after unregister: %w", err)
	}
	*bp = nb
	return nb.Slot.Index() != old, nil
}

// change sets register i to addr and DR7 to dr7 under the Writer's policy.
// Every operation changes one slot at a time, so only DR[i] and DR7 can
// differ from the mirror. If a write fails it restores both and returns the
// error (joined with the restore failure, if any).
func (w *Writer) change(m *mirror, i int, addr uint64, dr7 DR7) error {
	oaddr, odr7 := m.cur.DR[i], m.cur.DR7
	if err := w.set(m, i, addr, dr7, w.wp); err != nil {
		return w.rollback(m, i, oaddr, odr7, err)
	}
	return nil
}

// rollback writes back DR[i] = addr and DR7 = dr7, where they differ, after
// a failed set, and returns err, joined with the restore failure if any.
// The mirror keeps tracking the backend even if restoring fails.
func (w *Writer) rollback(m *mirror, i int, addr uint64, dr7 DR7, err error) error {
	if rerr := w.set(m, i, addr, dr7, planChanged); rerr != nil {
		return errors.Join(err, fmt.Errorf("restoring registers: %w", rerr))
	}
	return err
}

// set moves the target to DR[i] = addr and DR7 = dr7, the other address
// registers unchanged, with the writes wp plans.
func (w *Writer) set(m *mirror, i int, addr uint64, dr7 DR7, wp WritePolicy) error {
	m.next = m.cur
	m.next.DR[i], m.next.DR7 = addr, dr7
	return w.writeNext(m, wp)
}

// planChanged is WriteChanged's plan, which rollback and ProcessWriter use
// whatever the Writer's policy: the fewest writes back to a known state.
var planChanged WritePolicy = changedPolicy{}

// writeState writes next into the target with the writes wp plans. It
// stops at the first failed write; m.cur is updated after each successful
// write only, so it always equals the backend. A plan that does not reach
// next fails with ErrPlan. The Writer's own operations change one slot at
// a time through set; ProcessWriter moves whole register files.
func (w *Writer) writeState(m *mirror, next regState, wp WritePolicy) error {
	m.next = next
	return w.writeNext(m, wp)
}

// writeNext is writeState for the state in m.next. The built-in plans are
// called directly: the interface call, which cannot be inlined, costs
// more than their planning.
func (w *Writer) writeNext(m *mirror, wp WritePolicy) error {
	var plan []RegWrite
	custom := false
	switch wp.(type) {
	case changedPolicy:
		plan = planWrites(m.plan[:0], &m.cur, &m.next, false)
	case allPolicy:
		plan = planWrites(m.plan[:0], &m.cur, &m.next, true)
	default:
		plan, custom = wp.Plan(m.plan[:0], &m.cur, &m.next), true
	}
	for _, wr := range plan {
		if err := w.be.WriteDR(m.t, wr.Reg, wr.Val); err != nil {
			return err
		}
		switch {
		case uint(wr.Reg) < NumSlots:
			m.cur.DR[wr.Reg] = wr.Val
		case wr.Reg == RegDR7:
			m.cur.DR7 = DR7(wr.Val)
		}
	}
	if custom && m.cur != m.next {
		return fmt.Errorf("hwregs: %w: DR0-DR3 = %#x, DR7 = %#x after it, want %#x, %#x", ErrPlan, m.cur.DR, uint64(m.cur.DR7), m.next.DR, uint64(m.next.DR7))
	}
	return nil
}
