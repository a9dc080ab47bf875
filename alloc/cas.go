package alloc

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
)

func init() { register("cas", newCAS) }

// The cas strategy takes no lock on any Reserve or Release path, and an
// all-CPU task reservation or release costs O(1) atomic operations,
// whatever the number of CPUs and tasks, unless it raises the largest
// all-CPU count any task holds. Its state, per pool:
//
//   - per CPU c, one packed word W_c, as in cas-percpu: for each register
//     index a generation field (odd: held by a CPU-bound breakpoint; cp(c)
//     is the number of live bits), then tmax, a lowering flag L and a
//     version. tmax is an upper bound on pinned_t(c) for every task t, so
//     a CPU-bound reservation reads and CASes this one word.
//   - per CPU c, H_c: a ge-form histogram (bucket j: tasks with one-CPU
//     breakpoints on c whose value, below, is at least j).
//   - per pool, G = {gmax, pend, npend, flag, version} and counts ge[j]
//     (tasks with at least j all-CPU breakpoints), sharded by task id:
//     the role of Linux's tsk_pinned_all.
//   - per task, T = {g, all-CPU mask, tent}: g is its all-CPU breakpoints,
//     held or being reserved, tent the tentative ones (only a task with
//     one-CPU breakpoints has any), and a count "one" of its one-CPU
//     breakpoints, held or being reserved. Per task and CPU, allocated on
//     its first one-CPU breakpoint, P_tc = {one, gseen, mask}: one_t(c),
//     and the g it was last synchronised with. P_tc stands for the value
//     gseen + one in H_c when one > 0, and for nothing otherwise.
//
// Every count is kept at or above the state it stands for: an increase of
// T.g or of P_tc's value is counted in ge or H_c before the CAS that makes
// it (and taken back if the CAS fails), a decrease after; each count
// follows the actual old and new values of its word's CAS or Add.
// pinned_t(c) = g_t + one_t(c).
//
// Invariant A: every CAS that raises cp(c) or tmax(c) checks
// cp(c) + tmax(c) <= N in the value it installs.
//
// Invariant G: tmax(c) >= gmax on every CPU. A raise of gmax to v (the
// first task to reach v all-CPU breakpoints) announces v in pend by a CAS
// on G, makes tmax(c) >= v on every CPU (raiseTmax, checked by A; a CPU
// without room refuses the reservation), then publishes gmax = max(gmax,
// v). The only lowering of tmax(c), lowerCPU, sets L by CAS, then reads G
// and H_c, then installs a bound >= max(gmax, pend) by a CAS expecting the
// flagged word. A raise that checked c before the flag had announced pend
// before, so lowerCPU reads it; one that checks c after sees L and clears
// it by CAS (raiseTmax), so the install fails. So gmax is published only
// when every tmax(c) is at least v, and stays so.
//
// Invariant C: tmax(c) >= pinned_t(c) for every committed breakpoint of
// every task. For a task without one-CPU breakpoints on c, pinned_t(c) =
// g_t <= gmax <= tmax(c): an all-CPU reservation counts itself in ge[g+1],
// then reads G and needs gmax >= g+1 and no flag (or clears the flag by
// CAS), or raises gmax; only then does its CAS on T commit it. gmax is
// lowered (casGlobal.lower) only by flagging G, scanning ge, and installing
// the scan's maximum expecting the flagged word; a reservation that read G
// before the flag had counted itself before, so the scan sees it; one that
// reads G between sees the flag and clears it, failing the install; and
// its count stays until its CAS on T fails or it is released. For a task
// with one-CPU breakpoints on c, pinned_t(c) = gseen + one once P_tc is
// synchronised, and a reservation commits only after checking W_c with L
// clear and tmax >= that value, raising it by CAS if needed (checked by A),
// after H_c counts it; a lowerCPU that flags W_c later scans H_c later.
// T.g and P_tc are separate words: an all-CPU reservation changes T, then
// reads one and the P_tc words; a one-CPU reservation raises one, changes
// P_tc, then reads T. With sequentially consistent atomics at least one of
// them sees the other, synchronises P_tc and commits the combined value on
// W_c; an all-CPU reservation that finds one > 0 only after its CAS on T
// marks itself tentative and does so before it returns. The same crossing
// makes two reservations of one task that chose the same register index
// see each other and retry.
//
// From A and C: cp(c) + pinned_t(c) <= N for every task and CPU at every
// instant, which is exactly what Linux's rules guarantee, so cas never
// over-admits. A task request's own admission is checked on the same
// words: g + 1 <= N and, through G or the raise, cp(c) + g + 1 <= N on
// every CPU, and cp(c) + gseen + one <= N on CPUs where the task has
// one-CPU breakpoints. A CPU-bound request is admitted by one CAS on W_c.
//
// Releases lower nothing: G and every tmax(c) stay upper bounds, and a
// CPU-bound request that they would refuse lowers them first (gmax from
// ge, tmax(c) from G and H_c) and retries, so in a single goroutine every
// decision is exactly the rules'. That keeps a release O(1) too, and keeps
// gmax from swinging when a task drops its last breakpoint and takes it
// again. Refusals that rest on a release still in flight are linearised
// before it.
//
// Tentative holds are visible, so cas can refuse what a serial order would
// admit. SpuriousRefusals counts the refusals that saw one: a task request
// while another reservation of the same task was in flight (T.tent or
// one's in-flight half), a CPU-bound request while a raise of gmax or a
// tentative synchronisation on its CPU was in flight, or after a lowering
// lost a race. Not told apart, to keep per-CPU counters off the one-CPU
// reservation's path (they cost it two locked operations): a CPU-bound refusal that rests on another task's one-CPU
// reservation in flight on that CPU which is then refused itself (both
// wanted the CPU's last register). In a single goroutine the count is 0.
//
// Task records live in a radix table indexed by task id (three loads, no
// hashing; sync.Map above 2^20). The packing limits of W_c are
// cas-percpu's: see there.

// casCPU is one CPU's state in one pool.
type casCPU struct {
	w atomic.Uint64
	// busy counts task operations on this CPU. cas-percpu: started<<32 |
	// in flight, for invariant D. cas: tentative synchronisations of
	// all-CPU reservations in flight, for SpuriousRefusals only.
	busy atomic.Uint64
	h    histogram // cas-percpu: by pinned_t(c); cas: ge form, see casGE
	_    [48]byte
}

// casPool is the per-pool layout and per-CPU state.
type casPool struct {
	n         int
	n64       uint64   // n, for reserveCPU's comparison without conversions
	fb        uint     // bits per register field
	fieldMask uint64   // one field, at index 0
	liveBits  uint64   // the live bit of every field
	idxOf     [64]int8 // register index of a live bit's position (no division on the hot path)
	tShift    uint     // tmax position (5 bits)
	lFlag     uint64   // cas: a lowering of tmax is scanning (the bit after tmax)
	vShift    uint     // version position, up to bit 63
	cpu       []casCPU
	wide      []casGens  // per CPU, when fields are narrower than casWideBits
	gl        *casGlobal // cas only: the all-CPU task counts
}

func newCASPool(n, cpus int) *casPool {
	fb := uint(48 / n)
	if fb > 8 {
		fb = 8
	}
	p := &casPool{n: n, n64: uint64(n), fb: fb, fieldMask: 1<<fb - 1, cpu: make([]casCPU, cpus)}
	for i := 0; i < n; i++ {
		p.liveBits |= 1 << (uint(i) * fb)
		p.idxOf[uint(i)*fb] = int8(i)
	}
	p.tShift = uint(n) * fb
	p.lFlag = 1 << (p.tShift + 5)
	p.vShift = p.tShift + 6
	if fb < casWideBits {
		p.wide = make([]casGens, cpus)
	}
	return p
}

// casWideBits is the narrowest field whose generation identifies a
// CPU-bound slot on its own: 2^7 holders of an index before one repeats.
// Pools of more than 6 registers have narrower fields and keep a 32-bit
// generation per CPU and index beside W_c (casPool.wide), at one more
// locked operation per reservation and release; x86's 4 registers do not.
const casWideBits = 8

// casGens holds one CPU's wide generations, one line.
type casGens [MaxSlots]atomic.Uint32

func (p *casPool) cp(w uint64) int   { return bits.OnesCount64(w & p.liveBits) }
func (p *casPool) tmax(w uint64) int { return int(w>>p.tShift) & 31 }

// withTmax returns w with tmax t and the version bumped.
func (p *casPool) withTmax(w uint64, t int) uint64 {
	w = w&^(31<<p.tShift) | uint64(t)<<p.tShift
	return w + 1<<p.vShift // the version wraps off the top
}

// reserveCPU is the fast path of a valid CPU-bound request on the CPU
// whose state is st, for the common case of a CPU on which no task holds a
// breakpoint (tmax = 0): admission is then a free register, and the whole
// reservation one load and one CAS on W_c. It returns the word it installed
// and the live bit it set, or free = 0, having changed nothing, when tmax
// is not 0, the CPU is full or the CAS lost a race; Reserve then tries
// tryCPU, the general rule, once and leaves the rest to reserveCPUSlow.
// Leaving the population count (and the runtime's check for the POPCNT
// instruction) out of the common case saves about 5% of the pair in
// BenchmarkFloorRatio; the price, one more failed check on CPUs where a
// task holds a breakpoint, shows in BenchmarkTasks/op=cpu.
//
// The new word is w plus the lowest free live bit: a free field holds an
// even generation and reserving makes it the next, odd one (releasing makes
// it the next even one, see Release). Nothing depends on the bit's
// position between the load and the CAS, which would otherwise add a bit
// scan and four shifts to the latency of every admission.
func (p *casPool) reserveCPU(st *casCPU) (nw, free uint64) {
	w := st.w.Load()
	free = ^w & p.liveBits & -(^w & p.liveBits) // the lowest free live bit
	if free != 0 && w>>(p.tShift&63)&31 == 0 {
		if nw = w + free; st.w.CompareAndSwap(w, nw) {
			return nw, free
		}
	}
	return 0, 0
}

// cpuSlot is the Slot of request r for which a CAS installed word nw by
// setting live bit free.
func (p *casPool) cpuSlot(r Request, nw, free uint64) Slot {
	sh := uint(bits.TrailingZeros64(free)) & 63
	if p.wide != nil {
		i := int(p.idxOf[sh])
		return NewSlot(r, i, p.wide[r.CPU][i].Add(1))
	}
	return NewSlot(r, int(p.idxOf[sh]), uint32(nw>>sh&p.fieldMask))
}

// tryCPU is one attempt at the general CPU-bound rule, cp + tmax + 1 <= N,
// with reserveCPU's field update and results. Reserve tries it inline when
// reserveCPU fails because a task holds a breakpoint on the CPU.
func (p *casPool) tryCPU(st *casCPU) (nw, free uint64) {
	w := st.w.Load()
	if bits.OnesCount64(w&p.liveBits)+int(w>>(p.tShift&63)&31) < p.n { // admits(cp, tmax, n)
		free = ^w & p.liveBits & -(^w & p.liveBits) // not 0 since cp < n
		if nw = w + free; st.w.CompareAndSwap(w, nw) {
			return nw, free
		}
	}
	return 0, 0
}

// String describes the packing, for test failure messages.
func (p *casPool) String() string {
	return fmt.Sprintf("cas pool n=%d field=%d bits tmax@%d flag@%d version@%d", p.n, p.fb, p.tShift, p.tShift+5, p.vShift)
}

// releaseCPU is the inline CPU-bound release of cas and cas-percpu. It
// reports done = false for anything it does not judge (task slots, and
// CPU-bound slots out of range or of an even generation), which the
// caller's slow path takes. A slot's generation must be odd (live; this
// also rejects the zero Slot) and equal to its field in W_c, and the CAS
// that advances the field to the next, even generation expects the word
// that check was made on, so a double, stale or concurrent second release
// of the same slot fails with ErrNotReserved and never frees a later
// holder's field.
func releaseCPU(byKind *[numKinds]*casPool, errs *errTable, s Slot) (done bool, err error) {
	r := s.req
	if r.Task != NoTask || r.Kind >= numKinds || s.gen&1 == 0 {
		return false, nil
	}
	p := byKind[r.Kind]
	if uint(r.CPU) >= uint(len(p.cpu)) || uint(s.index) >= uint(p.n) {
		return false, nil
	}
	st := &p.cpu[r.CPU]
	sh := uint(s.index) * p.fb & 63
	if p.wide != nil {
		// The wide generation decides; the winner owns the field, which
		// is odd (held), and advances it to the next, even value.
		if !p.wide[r.CPU][s.index].CompareAndSwap(s.gen, s.gen+1) {
			return true, errs.stale(r)
		}
		for {
			w := st.w.Load()
			f := w >> sh & p.fieldMask
			if st.w.CompareAndSwap(w, w+((f+1)&p.fieldMask-f)<<sh) {
				return true, nil
			}
		}
	}
	// The field goes from s.gen to the next generation, 0 after the top;
	// the field is s.gen when the CAS succeeds, so adding the difference
	// (modulo 2^64) changes it and nothing else.
	next := uint64(s.gen+1) & p.fieldMask
	delta := (next - uint64(s.gen)) << sh
	for {
		w := st.w.Load()
		if uint32(w>>sh&p.fieldMask) != s.gen {
			return true, errs.stale(r)
		}
		if st.w.CompareAndSwap(w, w+delta) {
			return true, nil
		}
	}
}

// raiseTmax makes tmax(c) at least v if cp(c) + v <= N (invariant A);
// false, changing nothing, if the CPU-bound breakpoints on c leave no
// room. A word that already bounds v and carries no lowering flag is left
// as it is: a lowering that starts later flags W_c first and then reads
// the counts the caller made before calling. A flag is cleared (the
// lowering's install then fails).
func (p *casPool) raiseTmax(c, v int) bool {
	st := &p.cpu[c]
	for {
		w := st.w.Load()
		t := p.tmax(w)
		if t >= v && w&p.lFlag == 0 {
			return true
		}
		if !admits(p.cp(w), v-1, p.n) {
			return false
		}
		if st.w.CompareAndSwap(w, p.withTmax(w&^p.lFlag, max(t, v))) {
			return true
		}
	}
}

// The global word G of a pool.
const (
	gPendShift  = 8                // pend: the largest count a raise in progress is installing
	gNpendShift = 16               // npend: raises in progress
	gNpendOne   = 1 << gNpendShift //
	gFlag       = 1 << 32          // a lowering of gmax is scanning the counts
	gVerOne     = 1 << 33          // the version, bumped by every change
)

func gMax(g uint64) int   { return int(g & 31) }
func gPend(g uint64) int  { return int(g >> gPendShift & 31) }
func gNpend(g uint64) int { return int(g >> gNpendShift & 0xffff) }

// gBound is the smallest tmax any CPU may be lowered to: the published
// maximum, or a larger one being installed (pend is 0 without raises).
func gBound(g uint64) int { return max(gMax(g), gPend(g)) }

// casShards spreads the all-CPU counts over cache lines by task id.
const casShards = 8

// casShard holds, for the tasks of one shard, ge[j-1] = the number of tasks
// holding at least j all-CPU breakpoints (tentative ones included).
type casShard struct {
	ge [MaxSlots]atomic.Int32
	_  [64]byte
}

// casGlobal is a pool's all-CPU task accounting: G and the counts.
type casGlobal struct {
	g     atomic.Uint64
	_     [56]byte
	shard [casShards]casShard
}

// count returns the number of tasks holding at least j >= 1 all-CPU
// breakpoints, tentative ones included.
func (gl *casGlobal) count(j int) int32 {
	var n int32
	for s := range gl.shard {
		n += gl.shard[s].ge[j-1].Load()
	}
	return n
}

// maxFrom returns the largest all-CPU count at most from that a task holds.
func (gl *casGlobal) maxFrom(from int) int {
	for j := from; j > 0; j-- {
		if gl.count(j) > 0 {
			return j
		}
	}
	return 0
}

// lower brings gmax down to the largest all-CPU count a task holds, if
// lower. It first flags G, then scans, then installs the result expecting
// the flagged word: a fast-path reservation that read G before the flag
// had counted itself before that read, so the scan sees it; one that sees
// the flag clears it by CAS, and the install fails. It reports false if
// races kept it from finishing (gmax stays an upper bound).
func (gl *casGlobal) lower() bool {
	for tries := 0; tries < 4; tries++ {
		g := gl.g.Load()
		m := gMax(g)
		if gNpend(g) > 0 {
			return false
		}
		if m == 0 || gl.count(m) > 0 {
			return true
		}
		fg := (g | gFlag) + gVerOne
		if !gl.g.CompareAndSwap(g, fg) {
			continue
		}
		m = gl.maxFrom(m)
		if gl.g.CompareAndSwap(fg, fg&^(gFlag|31)+uint64(m)+gVerOne) {
			return true
		}
	}
	return false
}

// used reports whether any task is counted.
func (gl *casGlobal) used() bool {
	for s := range gl.shard {
		if gl.shard[s].ge[0].Load() != 0 {
			return true
		}
	}
	return false
}

// The task word T of one task and pool: g (its all-CPU breakpoints, held
// or being reserved), the register mask of its all-CPU breakpoints, and
// tent, the all-CPU reservations of the task in flight.
const (
	tMaskShift = 8
	tTentOne   = 1 << 32
)

func tG(w uint64) int       { return int(w & 0xff) }
func tMask(w uint64) uint32 { return uint32(w>>tMaskShift) & 0xffff }
func tTent(w uint64) int    { return int(w >> 32) }

// The word P_tc of one task on one CPU: one (its one-CPU breakpoints on c),
// gseen (the g it was last synchronised with) and their register mask.
const (
	oGseenShift = 8
	oMaskShift  = 16
)

func oOne(w uint64) int     { return int(w & 0xff) }
func oGseen(w uint64) int   { return int(w >> oGseenShift & 0xff) }
func oMask(w uint64) uint32 { return uint32(w>>oMaskShift) & 0xffff }
func oPack(one, gseen int, mask uint32) uint64 {
	return uint64(one) | uint64(gseen)<<oGseenShift | uint64(mask)<<oMaskShift
}

// oVal is the value P_tc stands for in H_c: pinned_t(c) as of gseen, or 0
// (not counted in H_c) without one-CPU breakpoints on c, where gmax covers
// the task.
func oVal(w uint64) int {
	if one := oOne(w); one > 0 {
		return oGseen(w) + one
	}
	return 0
}

// casGE moves a target in a ge-form histogram (count[j-1] = targets with
// at least j) from lo to hi > lo (d = 1) or back (d = -1).
func casGE(h *histogram, lo, hi int, d int32) {
	for j := lo; j < hi; j++ {
		h.count[j].Add(d)
	}
}

// casOneCPU is one task's one-CPU state on one CPU.
type casOneCPU struct {
	w   atomic.Uint64 // P_tc
	gen [MaxSlots]atomic.Uint32
}

// casTaskState is one task's state in one pool.
type casTaskState struct {
	w atomic.Uint64 // T
	// one counts, in its low 32 bits, the task's one-CPU breakpoints, held
	// or being reserved: raised before the P_tc claim and lowered after the
	// unclaim, so an all-CPU operation that reads 0 after changing T may
	// skip the CPUs. The high bits count its one-CPU reservations in flight
	// (oneFlight), for SpuriousRefusals.
	one    atomic.Int64
	ov     atomic.Uint32 // overflow positions held (see NoIndex)
	cpu    atomic.Pointer[[]casOneCPU]
	allGen [MaxSlots]atomic.Uint32
	ovGen  [MaxSlots]atomic.Uint32
}

// oneFlight is one one-CPU reservation in flight in casTaskState.one.
const oneFlight = 1 << 32

// oneHeld is the low half of casTaskState.one.
func oneHeld(v int64) int32 { return int32(v) }

// cpus returns the task's per-CPU state, allocating it on first use.
func (ts *casTaskState) cpus(n int) []casOneCPU {
	if p := ts.cpu.Load(); p != nil {
		return *p
	}
	return ts.newCPUs(n)
}

// newCPUs is cpus' slow path.
func (ts *casTaskState) newCPUs(n int) []casOneCPU {
	s := make([]casOneCPU, n)
	ts.cpu.CompareAndSwap(nil, &s)
	return *ts.cpu.Load()
}

// takeOv claims an overflow position, -1 if none is free.
func (ts *casTaskState) takeOv() int {
	for {
		o := ts.ov.Load()
		pos := lowestFree(o, MaxSlots)
		if pos < 0 || ts.ov.CompareAndSwap(o, o|1<<pos) {
			return pos
		}
	}
}

func (ts *casTaskState) dropOv(pos int) {
	if pos >= 0 {
		ts.ov.And(^uint32(1 << pos))
	}
}

// casTask is a task's record.
type casTask struct {
	pools [numKinds]casTaskState
}

// The task table: ids below casDense live in a three-level radix table
// whose levels are allocated on first use and installed by CAS, so a
// lookup is three dependent loads and no hashing; larger ids fall back to a
// sync.Map.
const (
	casChunkBits = 4
	casMidBits   = 8
	casTopBits   = 8
	casDense     = 1 << (casChunkBits + casMidBits + casTopBits)
)

type casChunk [1 << casChunkBits]casTask

type casMid [1 << casMidBits]atomic.Pointer[casChunk]

type casTasks struct {
	top [1 << casTopBits]atomic.Pointer[casMid]
	big sync.Map // task id >= casDense -> *casTask
}

// dense returns task id's record if it is in the radix table, small
// enough to inline.
func (t *casTasks) dense(id int) *casTask {
	if uint(id) < casDense {
		if m := t.top[id>>(casChunkBits+casMidBits)].Load(); m != nil {
			if c := m[id>>casChunkBits&(1<<casMidBits-1)].Load(); c != nil {
				return &c[id&(1<<casChunkBits-1)]
			}
		}
	}
	return nil
}

// lookup returns task id's record, nil if it has none.
func (t *casTasks) lookup(id int) *casTask {
	if rec := t.dense(id); rec != nil || uint(id) < casDense {
		return rec
	}
	if v, ok := t.big.Load(id); ok {
		return v.(*casTask)
	}
	return nil
}

// get returns task id's record, creating it.
func (t *casTasks) get(id int) *casTask {
	if rec := t.dense(id); rec != nil {
		return rec
	}
	return t.create(id)
}

// create is get's slow path.
func (t *casTasks) create(id int) *casTask {
	if rec := t.lookup(id); rec != nil {
		return rec
	}
	if uint(id) >= casDense {
		v, _ := t.big.LoadOrStore(id, new(casTask))
		return v.(*casTask)
	}
	mp := &t.top[id>>(casChunkBits+casMidBits)]
	if mp.Load() == nil {
		mp.CompareAndSwap(nil, new(casMid))
	}
	cp := &mp.Load()[id>>casChunkBits&(1<<casMidBits-1)]
	if cp.Load() == nil {
		cp.CompareAndSwap(nil, new(casChunk))
	}
	return &cp.Load()[id&(1<<casChunkBits-1)]
}

// casBase is what cas and cas-percpu share: the pools with their W_c
// words and the refusal bookkeeping.
type casBase struct {
	cfg      Config
	pools    [numKinds]*casPool
	byKind   [numKinds]*casPool // pools[cfg.poolIndex(k)], without the branch
	spurious atomic.Uint64
	errs     errTable
}

func (b *casBase) init(cfg Config, global bool) {
	b.cfg, b.errs = cfg, newErrTable(cfg)
	b.pools[Data] = newCASPool(cfg.Slots, cfg.CPUs)
	if cfg.InstSlots > 0 {
		b.pools[Inst] = newCASPool(cfg.InstSlots, cfg.CPUs)
	}
	for k, p := range b.pools {
		if p != nil && global {
			p.gl = new(casGlobal)
		}
		b.byKind[k] = b.pools[cfg.poolIndex(Kind(k))]
	}
}

// SpuriousRefusals implements SpuriousRefusals.
func (b *casBase) SpuriousRefusals() uint64 { return b.spurious.Load() }

// cpuFast is the inline part of a CPU-bound Reserve: the request is
// validated by the comparisons reserveCPU needs anyway, then admitted by
// reserveCPU or, when a task bound is set on the CPU, tryCPU. p is nil
// for anything else; ok is false with p set when the caller's slow path
// must retry or refuse.
func (b *casBase) cpuFast(r Request) (s Slot, p *casPool, ok bool) {
	if r.Task != NoTask || r.Kind >= numKinds {
		return Slot{}, nil, false
	}
	if p = b.byKind[r.Kind]; uint(r.CPU) >= uint(len(p.cpu)) {
		return Slot{}, nil, false
	}
	st := &p.cpu[r.CPU]
	if nw, free := p.reserveCPU(st); free != 0 {
		return p.cpuSlot(r, nw, free), p, true
	}
	if nw, free := p.tryCPU(st); free != 0 {
		return p.cpuSlot(r, nw, free), p, true
	}
	return Slot{}, p, false
}

type casAlloc struct {
	casBase
	tasks casTasks
}

func newCAS(cfg Config) (Allocator, error) {
	a := new(casAlloc)
	a.init(cfg, true)
	return a, nil
}

// Reserve implements Allocator: CPU-bound requests by cpuFast, the rest
// by reserveTask.
func (a *casAlloc) Reserve(r Request) (Slot, error) {
	if r.Task == NoTask {
		if s, p, ok := a.cpuFast(r); ok {
			return s, nil
		} else if p != nil {
			return a.reserveCPUSlow(p, r)
		}
	}
	return a.reserveTask(r)
}

// reserveCPUSlow retries tryCPU after lost CASes, lowers a task bound that
// releases left high, and refuses.
func (a *casAlloc) reserveCPUSlow(p *casPool, r Request) (Slot, error) {
	st := &p.cpu[r.CPU]
	exact := true
	for tries := 0; ; tries++ {
		if nw, free := p.tryCPU(st); free != 0 {
			return p.cpuSlot(r, nw, free), nil
		}
		w := st.w.Load()
		cp, t := p.cp(w), p.tmax(w)
		if admits(cp, t, p.n) {
			continue // lost a race; try again
		}
		if tries < 8 && admits(cp, 0, p.n) {
			exact = p.gl.lower()
			if a.lowerCPU(p, r.CPU) {
				continue
			}
		}
		if tries >= 8 || !exact || gNpend(p.gl.g.Load()) > 0 || uint32(st.busy.Load()) != 0 {
			a.spurious.Add(1)
		}
		return Slot{}, a.errs.noSlot(r)
	}
}

// lowerCPU lowers tmax(c) to the least bound invariants G and C allow:
// gmax (or a raise in progress) and the largest value in H_c. It flags W_c
// by CAS, then reads G and scans H_c, then installs the bound expecting the
// flagged word. A task reservation that checked W_c before the flag had
// counted itself in ge or H_c before that check, so the scan sees it; one
// that checks W_c after sees the flag and clears it by CAS (raiseTmax), and
// the install fails. It reports whether it changed tmax or lost a race
// (worth retrying).
func (a *casAlloc) lowerCPU(p *casPool, c int) bool {
	st := &p.cpu[c]
	w := st.w.Load()
	t := p.tmax(w)
	if t == 0 {
		return false
	}
	fw := (w | p.lFlag) + 1<<p.vShift
	if !st.w.CompareAndSwap(w, fw) {
		return true
	}
	b := max(gBound(p.gl.g.Load()), st.h.max(p.n))
	nw := fw &^ p.lFlag
	if b < t {
		nw = p.withTmax(nw, b)
	}
	for !st.w.CompareAndSwap(fw, nw) {
		// W_c moved (a CPU-bound slot, a raise): the scan may be stale, so
		// only take the flag off if it is still there. Clearing a flag
		// always changes the word, so it can only make an install fail.
		if fw = st.w.Load(); fw&p.lFlag == 0 {
			break
		}
		nw = fw &^ p.lFlag
	}
	return b < t
}

// refuse returns the refusal of r, counting it as spurious if a tentative
// hold may have caused it.
func (a *casAlloc) refuse(r Request, suspect bool) (Slot, error) {
	if suspect {
		a.spurious.Add(1)
	}
	return Slot{}, a.errs.noSlot(r)
}

func (a *casAlloc) reserveTask(r Request) (Slot, error) {
	if !a.cfg.requestOK(r) {
		return Slot{}, a.cfg.ValidateRequest(r)
	}
	p := a.byKind[r.Kind]
	ts := &a.tasks.get(r.Task).pools[a.cfg.poolIndex(r.Kind)]
	if r.CPU == AnyCPU {
		return a.reserveAll(p, ts, r)
	}
	return a.reserveOne(p, ts, r)
}

// reserveAll reserves an all-CPU breakpoint for a task: counted in its
// shard (ge[k+1]) before T shows it and admitted by G, in O(1) when gmax
// is already at least k+1. Without one-CPU breakpoints the CAS on T then
// commits it: the count and G's admission come first and hold until the
// count is taken back, so the hold is never tentative. A task with
// one-CPU breakpoints takes reserveMixed.
func (a *casAlloc) reserveAll(p *casPool, ts *casTaskState, r Request) (Slot, error) {
	sh := &p.gl.shard[uint(r.Task)%casShards]
	for {
		tw := ts.w.Load()
		k := tG(tw)
		if k >= p.n {
			return a.refuse(r, tTent(tw) > 0)
		}
		i := lowestFree(tMask(tw), p.n)
		if i < 0 || oneHeld(ts.one.Load()) > 0 {
			return a.reserveMixed(p, ts, sh, r)
		}
		sh.ge[k].Add(1)
		if g := p.gl.g.Load(); (gMax(g) <= k || g&gFlag != 0) && !a.admitAll(p, k+1) {
			sh.ge[k].Add(-1)
			return a.refuse(r, tTent(tw) > 0)
		}
		add := uint64(1) + 1<<(tMaskShift+uint(i))
		if !ts.w.CompareAndSwap(tw, tw+add) {
			sh.ge[k].Add(-1)
			continue
		}
		if oneHeld(ts.one.Load()) > 0 {
			// A one-CPU reservation of the task began meanwhile (the
			// crossing of invariant C): settle as reserveMixed does, with
			// this hold tentative from now on.
			ts.w.Add(tTentOne)
			switch res, suspect := a.settleAll(p, ts, sh, i, add+tTentOne); res {
			case casRetry:
				continue
			case casRefused:
				return a.refuse(r, suspect)
			}
		}
		return NewSlot(r, i, ts.allGen[i].Add(1)), nil
	}
}

// reserveMixed is reserveAll for a task with one-CPU breakpoints: the
// index must be free on every CPU (or the slot gets NoIndex), the hold is
// tentative in T until every CPU with one-CPU breakpoints of the task has
// been synchronised and committed on W_c.
func (a *casAlloc) reserveMixed(p *casPool, ts *casTaskState, sh *casShard, r Request) (Slot, error) {
	for {
		tw := ts.w.Load()
		k := tG(tw)
		if k >= p.n {
			return a.refuse(r, tTent(tw) > 0)
		}
		i, pos := lowestFree(tMask(tw)|a.oneMasks(ts), p.n), -1
		add := uint64(1) + tTentOne
		if i >= 0 {
			add += 1 << (tMaskShift + uint(i))
		} else if pos = ts.takeOv(); pos < 0 { // fragmented indexes: see NoIndex
			return a.refuse(r, true)
		}
		sh.ge[k].Add(1)
		if !ts.w.CompareAndSwap(tw, tw+add) {
			sh.ge[k].Add(-1)
			ts.dropOv(pos)
			continue
		}
		res, suspect := casRefused, tTent(ts.w.Load()) > 1
		if a.admitAll(p, k+1) {
			res, suspect = a.settleAll(p, ts, sh, i, add)
		} else {
			a.unreserveAll(ts, sh, add)
			a.syncAll(p, ts, false)
		}
		switch res {
		case casRetry:
			ts.dropOv(pos)
			continue
		case casRefused:
			ts.dropOv(pos)
			return a.refuse(r, suspect)
		}
		if pos >= 0 {
			return NewSlot(r, overflowRaw(pos), ts.ovGen[pos].Add(1)), nil
		}
		return NewSlot(r, i, ts.allGen[i].Add(1)), nil
	}
}

// settleAll's outcomes.
const (
	casDone = iota
	casRetry
	casRefused
)

// settleAll finishes an all-CPU reservation at index i (-1: an overflow
// position) whose tentative T change add is made and admitted by G: it
// steps back if a one-CPU reservation of the task took i meanwhile (it or
// we, or both, see the other), else synchronises the task's CPUs and
// commits, or takes the hold back if a CPU has no room.
func (a *casAlloc) settleAll(p *casPool, ts *casTaskState, sh *casShard, i int, add uint64) (res int, suspect bool) {
	if i >= 0 && a.oneMasks(ts)&(1<<i) != 0 {
		a.unreserveAll(ts, sh, add)
		return casRetry, false
	}
	if fail := a.syncAll(p, ts, true); fail >= 0 {
		suspect = tTent(ts.w.Load()) > 1 || uint32(p.cpu[fail].busy.Load()) > 0
		a.unreserveAll(ts, sh, add)
		a.syncAll(p, ts, false)
		return casRefused, suspect
	}
	ts.w.Add(^uint64(tTentOne) + 1) // committed: no longer tentative
	return casDone, false
}

// unreserveAll takes back a tentative all-CPU breakpoint whose T change
// was add. Other reservations of the task may have moved g since, so the
// count taken back is the level the Add actually leaves (ge[g_old]), not
// the one the reservation added: the counts follow T's transitions.
func (a *casAlloc) unreserveAll(ts *casTaskState, sh *casShard, add uint64) {
	k := tG(ts.w.Add(-add) + add)
	sh.ge[k-1].Add(-1)
}

// oneMasks is the union of the task's one-CPU register masks.
func (a *casAlloc) oneMasks(ts *casTaskState) uint32 {
	var used uint32
	if cp := ts.cpu.Load(); cp != nil {
		for c := range *cp {
			used |= oMask((*cp)[c].w.Load())
		}
	}
	return used
}

// admitAll admits a task's v-th all-CPU breakpoint on every CPU by G: at
// once if gmax >= v (every tmax(c) is at least gmax, and cp(c) + tmax(c) <=
// N), else by raising gmax: announce v as pend, raise tmax(c) to v on
// every CPU where cp(c) + v <= N, then publish. A raise that finds a CPU
// without room refuses and leaves the CPUs it raised for lowerCPU.
func (a *casAlloc) admitAll(p *casPool, v int) bool {
	gl := p.gl
	for {
		g := gl.g.Load()
		if gMax(g) >= v {
			if g&gFlag == 0 || gl.g.CompareAndSwap(g, g&^gFlag+gVerOne) {
				return true
			}
			continue
		}
		ng := g&^(gFlag|31<<gPendShift) | uint64(max(gPend(g), v))<<gPendShift
		if !gl.g.CompareAndSwap(g, ng+gNpendOne+gVerOne) {
			continue
		}
		ok := true
		for c := range p.cpu {
			if !p.raiseTmax(c, v) {
				ok = false
				break
			}
		}
		for {
			g := gl.g.Load()
			ng := g - gNpendOne + gVerOne
			if gNpend(ng) == 0 {
				ng &^= 31 << gPendShift
			}
			if ok && gMax(ng) < v {
				ng = ng&^31 | uint64(v)
			}
			if gl.g.CompareAndSwap(g, ng) {
				return ok
			}
		}
	}
}

// syncAll brings every P_tc of the task to its current g (syncCPU); with
// raise, it returns the first CPU without room, else -1.
func (a *casAlloc) syncAll(p *casPool, ts *casTaskState, raise bool) int {
	cp := ts.cpu.Load()
	if cp == nil {
		return -1
	}
	for c := range *cp {
		pc := &(*cp)[c]
		if oOne(pc.w.Load()) == 0 {
			continue
		}
		if !raise {
			a.syncCPU(p, ts, pc, c, false)
			continue
		}
		st := &p.cpu[c]
		st.busy.Add(1)
		ok := a.syncCPU(p, ts, pc, c, true)
		st.busy.Add(^uint64(0))
		if !ok {
			return c
		}
	}
	return -1
}

// transition changes P_tc from ow to nw and moves the task in H_c from
// oVal(ow) to oVal(nw): an increase is counted before the CAS (and taken
// back if it fails), a decrease after it, so every bucket of H_c is at
// least what the P_tc words stand for at every instant. The caller checks
// that an increase stays within the pool. It reports false if P_tc changed.
func (p *casPool) transition(c int, pw *atomic.Uint64, ow, nw uint64) bool {
	v, nv := oVal(ow), oVal(nw)
	h := &p.cpu[c].h
	if nv > v {
		casGE(h, v, nv, 1)
		if !pw.CompareAndSwap(ow, nw) {
			casGE(h, v, nv, -1)
			return false
		}
		return true
	}
	if !pw.CompareAndSwap(ow, nw) {
		return false
	}
	casGE(h, nv, v, -1)
	return true
}

// syncCPU brings gseen in P_tc to the task's current g and, with raise,
// commits the resulting value on W_c (cp(c) + value <= N, invariant C); it
// reports false if that does not fit. Without raise (releases and
// rollbacks) a value that does not fit is a tentative all-CPU reservation
// that will fail here and roll back, and is left alone.
func (a *casAlloc) syncCPU(p *casPool, ts *casTaskState, pc *casOneCPU, c int, raise bool) bool {
	for {
		ow := pc.w.Load()
		if oOne(ow) == 0 {
			return true
		}
		if g := tG(ts.w.Load()); oGseen(ow) != g {
			nw := oPack(oOne(ow), g, oMask(ow))
			if oVal(nw) > p.n {
				return !raise
			}
			p.transition(c, &pc.w, ow, nw)
			continue
		}
		if !raise {
			return true
		}
		return p.raiseTmax(c, oVal(ow))
	}
}

// reserveOne reserves a one-CPU breakpoint of a task on c: claimed in P_tc
// with gseen = g, then checked against T's mask (an all-CPU reservation of
// the task may have taken the index), synchronised and committed on W_c.
func (a *casAlloc) reserveOne(p *casPool, ts *casTaskState, r Request) (Slot, error) {
	c := r.CPU
	pc := &ts.cpus(a.cfg.CPUs)[c]
	ts.one.Add(1 + oneFlight)
	for {
		ow := pc.w.Load()
		tw := ts.w.Load()
		g, one := tG(tw), oOne(ow)
		i := lowestFree(oMask(ow)|tMask(tw), p.n)
		if i < 0 || g+one+1 > p.n {
			return a.refuseOne(ts, r, tTent(tw) > 0)
		}
		if !p.transition(c, &pc.w, ow, oPack(one+1, g, oMask(ow)|1<<i)) {
			continue
		}
		tw = ts.w.Load()
		if tMask(tw)&(1<<i) != 0 {
			a.unclaimOne(p, pc, c, i)
			continue
		}
		// Commonly g has not moved and W_c already bounds the value: the
		// claim is then committed (raiseTmax's fast case, inline).
		if w := p.cpu[c].w.Load(); tG(tw) == g && p.tmax(w) >= g+one+1 && w&p.lFlag == 0 {
			ts.one.Add(-oneFlight)
			return NewSlot(r, i, pc.gen[i].Add(1)), nil
		}
		if !a.syncCPU(p, ts, pc, c, true) {
			a.unclaimOne(p, pc, c, i)
			return a.refuseOne(ts, r, tTent(ts.w.Load()) > 0)
		}
		ts.one.Add(-oneFlight)
		return NewSlot(r, i, pc.gen[i].Add(1)), nil
	}
}

// refuseOne ends a refused one-CPU reservation, counting it as spurious if
// a tentative all-CPU hold or another one-CPU reservation of the task was
// in flight.
func (a *casAlloc) refuseOne(ts *casTaskState, r Request, tentative bool) (Slot, error) {
	others := ts.one.Add(-1-oneFlight)>>32 != 0
	return a.refuse(r, tentative || others)
}

// unclaimOne removes the one-CPU breakpoint at index i from P_tc.
func (a *casAlloc) unclaimOne(p *casPool, pc *casOneCPU, c, i int) {
	for {
		ow := pc.w.Load()
		if p.transition(c, &pc.w, ow, ow-1-1<<(oMaskShift+uint(i))) {
			return
		}
	}
}

// Release implements Allocator: CPU-bound slots inline (releaseCPU), task
// slots by releaseTask. A release never lowers a bound: G and W_c keep
// theirs until a CPU-bound refusal needs them lower (reserveCPUSlow).
func (a *casAlloc) Release(s Slot) error {
	r := s.req
	if r.Task == NoTask {
		if done, err := releaseCPU(&a.byKind, &a.errs, s); done {
			return err
		}
	} else if r.Kind < numKinds && s.gen&1 != 0 && uint(s.index) < MaxSlots && uint(r.CPU+1) <= uint(a.cfg.CPUs) {
		// A task slot with a register index: checked by its generation
		// alone (an index beyond the pool never had one).
		if rec := a.tasks.dense(r.Task); rec != nil {
			ts := &rec.pools[a.cfg.poolIndex(r.Kind)]
			p := a.byKind[r.Kind]
			if r.CPU == AnyCPU {
				if !ts.allGen[s.index].CompareAndSwap(s.gen, s.gen+1) {
					return a.errs.stale(r)
				}
				a.dropAll(p, ts, r.Task, 1+1<<(tMaskShift+uint(s.index)))
				return nil
			}
			cp := ts.cpu.Load()
			if cp == nil || !(*cp)[r.CPU].gen[s.index].CompareAndSwap(s.gen, s.gen+1) {
				return a.errs.stale(r)
			}
			a.unclaimOne(p, &(*cp)[r.CPU], r.CPU, int(s.index))
			ts.one.Add(-1)
			return nil
		}
	}
	return a.releaseTask(s)
}

// dropAll takes a released all-CPU breakpoint (T change sub) out of T and
// then out of the counts.
func (a *casAlloc) dropAll(p *casPool, ts *casTaskState, task int, sub uint64) {
	k := tG(ts.w.Add(-sub) + sub)
	p.gl.shard[uint(task)%casShards].ge[k-1].Add(-1)
	if oneHeld(ts.one.Load()) > 0 {
		a.syncAll(p, ts, false)
	}
}

// releaseTask releases task slots and rejects everything releaseCPU did
// not take.
func (a *casAlloc) releaseTask(s Slot) error {
	if err := a.cfg.checkRelease(s); err != nil {
		return err
	}
	r := s.req
	if r.IsCPUBound() || s.gen&1 == 0 {
		return a.errs.stale(r) // an even generation: never live
	}
	rec := a.tasks.lookup(r.Task)
	if rec == nil {
		return a.errs.stale(r)
	}
	p := a.byKind[r.Kind]
	ts := &rec.pools[a.cfg.poolIndex(r.Kind)]
	raw := int(s.index)
	if r.CPU != AnyCPU {
		cp := ts.cpu.Load()
		if cp == nil || !(*cp)[r.CPU].gen[raw].CompareAndSwap(s.gen, s.gen+1) {
			return a.errs.stale(r)
		}
		a.unclaimOne(p, &(*cp)[r.CPU], r.CPU, raw)
		ts.one.Add(-1)
		return nil
	}
	sub := uint64(1)
	if raw < 0 {
		if !ts.ovGen[overflowPos(raw)].CompareAndSwap(s.gen, s.gen+1) {
			return a.errs.stale(r)
		}
	} else {
		if !ts.allGen[raw].CompareAndSwap(s.gen, s.gen+1) {
			return a.errs.stale(r)
		}
		sub += 1 << (tMaskShift + uint(raw))
	}
	a.dropAll(p, ts, r.Task, sub)
	if raw < 0 {
		ts.dropOv(overflowPos(raw))
	}
	return nil
}

// InUse implements Allocator: a live CPU-bound field, a task counted in
// H_c or in the all-CPU counts (tmax itself may be left high by releases).
func (a *casAlloc) InUse() bool {
	for _, p := range a.pools {
		if p == nil {
			continue
		}
		for c := range p.cpu {
			if p.cp(p.cpu[c].w.Load()) > 0 || p.cpu[c].h.used() {
				return true
			}
		}
		if p.gl.used() {
			return true
		}
	}
	return false
}
