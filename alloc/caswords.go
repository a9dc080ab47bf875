package alloc

import (
	"math/bits"
	"sync/atomic"
)

// The words of cas's task accounting: G (one per pool), T (one per task
// and pool) and P_tc (one per task, CPU and pool), with the counts kept
// beside them: ge (tasks by all-CPU count, casGlobal) and H_c (tasks by
// the value of their P_tc on c, casCPU); the raise of gmax that invariant
// G is about (admitAll, raiseTmax); and the changes of P_tc that move H_c
// (transition, unclaim).
//
// Every count is kept at or above the state it stands for: an increase of
// T.g or of P_tc's value is counted in ge or H_c before the CAS that makes
// it (and taken back if the CAS fails), a decrease after; each count
// follows the actual old and new values of its word's CAS or Add.

// globalWord is G, one per pool: the largest all-CPU count any task holds,
// published, and the raises and lowerings of it in progress. From bit 0:
//
//   - gmax, bits 0-4: an upper bound on every task's all-CPU count g_t
//     (invariant C), kept below every tmax(c) (invariant G). Releases leave
//     it; casGlobal.lower brings it down to what ge shows.
//   - pend, bits 8-12: the largest count a raise in progress is
//     installing, 0 without raises.
//   - npend, bits 16-31: raises in progress.
//   - flag, bit 32: a lowering of gmax is scanning ge.
//   - a version, bits 33-63, bumped by every change.
//
// Invariant G: tmax(c) >= gmax on every CPU. A raise of gmax to v (the
// first task to reach v all-CPU breakpoints; casState.admitAll) announces
// v in pend by a CAS on G, makes tmax(c) >= v on every CPU (raiseTmax,
// checked by A; a CPU without room refuses the reservation), then
// publishes gmax = max(gmax, v). The only lowering of tmax(c), lowerCPU,
// sets L by CAS, then reads G and H_c, then installs a bound >= max(gmax,
// pend) by a CAS expecting the flagged word. A raise that checked c before
// the flag had announced pend before, so lowerCPU reads it; one that
// checks c after sees L and clears it by CAS (raiseTmax), so the install
// fails. So gmax is published only when every tmax(c) is at least v, and
// stays so.
type globalWord uint64

const (
	gPendShift  = 8
	gNpendShift = 16
	gFlag       = 1 << 32
	gVerShift   = 33
)

// packGlobal builds G from its fields; the version wraps off the top.
func packGlobal(gmax, pend, npend int, flag bool, ver uint64) globalWord {
	g := globalWord(gmax) | globalWord(pend)<<gPendShift | globalWord(npend)<<gNpendShift | globalWord(ver)<<gVerShift
	if flag {
		g |= gFlag
	}
	return g
}

// unpack returns G's fields.
func (g globalWord) unpack() (gmax, pend, npend int, flag bool, ver uint64) {
	return g.max(), int(g >> gPendShift & 31), g.npend(), g.lowering(), uint64(g >> gVerShift)
}

func (g globalWord) max() int       { return int(g & 31) }
func (g globalWord) npend() int     { return int(g >> gNpendShift & 0xffff) }
func (g globalWord) lowering() bool { return g&gFlag != 0 }

// bound is the smallest tmax any CPU may be lowered to: the published
// maximum, or a larger one being installed.
func (g globalWord) bound() int { return max(g.max(), int(g>>gPendShift&31)) }

// withFlag is G once a lowering of gmax begins its scan (flag set), or
// once a reservation has cleared the flag, which makes the lowering's
// install fail.
func (g globalWord) withFlag(flag bool) globalWord {
	m, pend, np, _, ver := g.unpack()
	return packGlobal(m, pend, np, flag, ver+1)
}

// announced is G once a raise to v has begun (it also clears the flag).
func (g globalWord) announced(v int) globalWord {
	m, pend, np, _, ver := g.unpack()
	return packGlobal(m, max(pend, v), np+1, false, ver+1)
}

// raised is G once a raise to v has ended; with ok, gmax is at least v.
// pend is cleared with the last raise in progress.
func (g globalWord) raised(v int, ok bool) globalWord {
	m, pend, np, flag, ver := g.unpack()
	if np--; np == 0 {
		pend = 0
	}
	if ok {
		m = max(m, v)
	}
	return packGlobal(m, pend, np, flag, ver+1)
}

// lowered is G with the lowering's result m installed.
func (g globalWord) lowered(m int) globalWord {
	_, pend, np, _, ver := g.unpack()
	return packGlobal(m, pend, np, false, ver+1)
}

// casShards spreads the all-CPU counts over cache lines by task id.
const casShards = 8

// casShard holds, for the tasks of one shard, ge[j-1] = the number of tasks
// holding at least j all-CPU breakpoints (tentative ones included): a task
// going from k to k+1 moves one count, ge[k].
type casShard struct {
	ge [MaxSlots]atomic.Int32
	_  [64]byte
}

// casGlobal is a pool's all-CPU task accounting: G and the counts.
type casGlobal struct {
	g     atomicWord[globalWord]
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
		m := g.max()
		if g.npend() > 0 {
			return false
		}
		if m == 0 || gl.count(m) > 0 {
			return true
		}
		fg := g.withFlag(true)
		if !gl.g.CompareAndSwap(g, fg) {
			continue
		}
		if gl.g.CompareAndSwap(fg, fg.lowered(gl.maxFrom(m))) {
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

// admitAll admits a task's v-th all-CPU breakpoint on every CPU by G: at
// once if gmax >= v (every tmax(c) is at least gmax, and cp(c) + tmax(c) <=
// N), else by raising gmax: announce v as pend, raise tmax(c) to v on
// every CPU where cp(c) + v <= N, then publish. A raise that finds a CPU
// without room refuses and leaves the CPUs it raised for lowerCPU.
func (p *casState) admitAll(v int) bool {
	gl := p.gl
	for {
		g := gl.g.Load()
		if g.max() >= v {
			if !g.lowering() || gl.g.CompareAndSwap(g, g.withFlag(false)) {
				return true
			}
			continue
		}
		if !gl.g.CompareAndSwap(g, g.announced(v)) {
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
			if gl.g.CompareAndSwap(g, g.raised(v, ok)) {
				return ok
			}
		}
	}
}

// raiseTmax makes tmax(c) at least v if cp(c) + v <= N (invariant A);
// false, changing nothing, if the CPU-bound breakpoints on c leave no
// room. A word that already bounds v and carries no lowering flag is left
// as it is: a lowering that starts later flags W_c first and then reads
// the counts the caller made before calling. A flag is cleared (the
// lowering's install then fails).
func (p *casState) raiseTmax(c, v int) bool {
	st := &p.cpu[c]
	for {
		w := st.w.Load()
		t := p.tmax(w)
		if t >= v && !p.lowering(w) {
			return true
		}
		if !admits(p.cp(w), v-1, p.n) {
			return false
		}
		if st.w.CompareAndSwap(w, p.withTmax(p.unflagged(w), max(t, v))) {
			return true
		}
	}
}

// taskWord is T, one task's word in one pool. From bit 0:
//
//   - g, bits 0-7: its all-CPU breakpoints, held or being reserved;
//   - mask, bits 8-23: the register indexes of those that have one (an
//     overflow position has none, see NoIndex);
//   - tent, bits 32-63: how many of them are tentative, reservations that
//     may still be taken back (only a task with one-CPU breakpoints has
//     any).
type taskWord uint64

const (
	tMaskShift = 8
	tTentShift = 32
)

// packTask builds T from its fields.
func packTask(g int, mask uint32, tent int) taskWord {
	return taskWord(g) | taskWord(mask)<<tMaskShift | taskWord(tent)<<tTentShift
}

// unpack returns T's fields.
func (w taskWord) unpack() (g int, mask uint32, tent int) { return w.g(), w.mask(), w.tent() }

func (w taskWord) g() int       { return int(w & 0xff) }
func (w taskWord) mask() uint32 { return uint32(w>>tMaskShift) & 0xffff }
func (w taskWord) tent() int    { return int(w >> tTentShift) }

// holdAt is the change of T that holds one more all-CPU breakpoint at
// register index i; holdOv holds one at an overflow position. T changes
// by adding and subtracting these, so concurrent changes commute.
func holdAt(i int) taskWord { return 1 + 1<<((tMaskShift+uint(i))&63) }

const (
	holdOv  taskWord = 1
	tentOne taskWord = 1 << tTentShift // one more tentative hold
)

// oneWord is P_tc, one task's word on one CPU in one pool. From bit 0:
//
//   - one, bits 0-7: its one-CPU breakpoints on c, held or being
//     reserved, one_t(c);
//   - gseen, bits 8-15: the g of T it was last synchronised with;
//   - mask, bits 16-31: the register indexes of its one-CPU breakpoints
//     on c.
//
// P_tc stands for the value gseen + one in H_c when one > 0 (val), and
// for nothing otherwise, where gmax covers the task on c. Once
// synchronised, val is pinned_t(c).
type oneWord uint64

const (
	oGseenShift = 8
	oMaskShift  = 16
)

// packOne builds P_tc from its fields.
func packOne(one, gseen int, mask uint32) oneWord {
	return oneWord(one) | oneWord(gseen)<<oGseenShift | oneWord(mask)<<oMaskShift
}

// unpack returns P_tc's fields.
func (w oneWord) unpack() (one, gseen int, mask uint32) { return w.one(), w.gseen(), w.mask() }

func (w oneWord) one() int             { return int(w & 0xff) }
func (w oneWord) gseen() int           { return int(w >> oGseenShift & 0xff) }
func (w oneWord) mask() uint32         { return uint32(w>>oMaskShift) & 0xffff }
func (w oneWord) synced(g int) oneWord { return packOne(w.one(), g, w.mask()) }

// val is the value P_tc stands for in H_c: pinned_t(c) as of gseen, or 0
// (not counted in H_c) without one-CPU breakpoints on c.
func (w oneWord) val() int {
	if one := w.one(); one > 0 {
		return w.gseen() + one
	}
	return 0
}

// claimed is P_tc with one more one-CPU breakpoint, at index i, and
// synchronised with g.
func (w oneWord) claimed(i, g int) oneWord { return packOne(w.one()+1, g, w.mask()|1<<i) }

// unclaimed is P_tc without its one-CPU breakpoint at index i, which it
// holds: one down by one and bit i cleared, by subtraction.
func (w oneWord) unclaimed(i int) oneWord { return w - 1 - 1<<((oMaskShift+uint(i))&63) }

// casCPU is cas's task accounting on one CPU of one pool.
type casCPU struct {
	// h is H_c in ge form: count[j-1] is the number of tasks whose P_tc
	// on c stands for a value of at least j. A task whose value moves
	// from v to nv moves the buckets in between, and h.max is the largest
	// value any task's P_tc stands for.
	h histogram
	// syncing counts tentative synchronisations of all-CPU reservations
	// in flight on c, for SpuriousRefusals only.
	syncing atomic.Int32
	_       [60]byte
}

// move moves a task in H_c from value lo to hi > lo (d = 1) or back
// (d = -1).
func (t *casCPU) move(lo, hi int, d int32) {
	for j := lo; j < hi; j++ {
		t.h.count[j].Add(d)
	}
}

// transition changes P_tc from ow to nw and moves the task in H_c from
// ow.val() to nw.val(): an increase is counted before the CAS (and taken
// back if it fails), a decrease after it, so every bucket of H_c is at
// least what the P_tc words stand for at every instant. The caller checks
// that an increase stays within the pool. It reports false if P_tc changed.
func (p *casState) transition(c int, pw *atomicWord[oneWord], ow, nw oneWord) bool {
	v, nv := ow.val(), nw.val()
	t := &p.task[c]
	if nv > v {
		t.move(v, nv, 1)
		if !pw.CompareAndSwap(ow, nw) {
			t.move(v, nv, -1)
			return false
		}
		return true
	}
	if !pw.CompareAndSwap(ow, nw) {
		return false
	}
	t.move(nv, v, -1)
	return true
}

// unclaim removes the one-CPU breakpoint at index i from P_tc on c. The
// value P_tc stands for falls, so H_c follows after the CAS, as in
// transition (written out here: the release's path is one call shorter).
func (p *casState) unclaim(pc *casOneCPU, c, i int) {
	for {
		ow := pc.w.Load()
		if nw := ow.unclaimed(i); pc.w.CompareAndSwap(ow, nw) {
			p.task[c].move(nw.val(), ow.val(), -1)
			return
		}
	}
}

// oneCounts is a task's count of its one-CPU breakpoints in one pool,
// with the claims its one-CPU reservations took back. From bit 0:
//
//   - held, bits 0-31: its one-CPU breakpoints, held or being reserved:
//     raised before the P_tc claim and lowered after the unclaim, so an
//     all-CPU operation that reads 0 after changing T may skip the CPUs
//     (the crossing of invariant C).
//   - rolling, bits 32-47: claims being taken back (after a refusal, or a
//     crossing with an all-CPU reservation), counted before the unclaim.
//   - rolled, bits 48-63: claims taken back, counted after the unclaim;
//     it wraps off the top, so a refusal misses those taken back during
//     its reservation only if they are an exact multiple of 2^16.
//
// The two halves serve SpuriousRefusals (refuseOne): a refused
// reservation that saw another claim of the task in P_tc finds it there
// still, uncommitted (claimsInFlight), or being taken back (rolling), or
// taken back since the reservation began (rolled moved).
type oneCounts uint64

const (
	oneHold    oneCounts = 1
	oneRolling oneCounts = 1 << 32
	oneRolled  oneCounts = 1 << 48
)

func (n oneCounts) held() int32     { return int32(n) }
func (n oneCounts) rolling() uint16 { return uint16(n >> 32) }
func (n oneCounts) rolled() uint16  { return uint16(n >> 48) }

// casOneCPU is one task's one-CPU state on one CPU.
type casOneCPU struct {
	w   atomicWord[oneWord] // P_tc
	gen slotGens
}

// claimsInFlight reports whether P_tc holds a claim whose generation is
// even: a reservation between its claim and its commit, or a release
// between its generation and its unclaim.
func (pc *casOneCPU) claimsInFlight() bool {
	for m := pc.w.Load().mask(); m != 0; m &= m - 1 {
		if pc.gen[bits.TrailingZeros32(m)].Load()&1 == 0 {
			return true
		}
	}
	return false
}

// casTaskState is one task's state in one pool.
type casTaskState struct {
	w   atomicWord[taskWord] // T
	one atomicWord[oneCounts]
	cpu atomic.Pointer[[]casOneCPU]
	allSlots
}

// newCPUs allocates the task's per-CPU state on its first one-CPU
// breakpoint (reserveOne loads ts.cpu inline, since a call to a helper
// costs the one-CPU pair more than the load).
func (ts *casTaskState) newCPUs(n int) *[]casOneCPU {
	s := make([]casOneCPU, n)
	ts.cpu.CompareAndSwap(nil, &s)
	return ts.cpu.Load()
}

// oneMasks is the union of the task's one-CPU register masks.
func (ts *casTaskState) oneMasks() uint32 {
	var used uint32
	if cp := ts.cpu.Load(); cp != nil {
		for c := range *cp {
			used |= (*cp)[c].w.Load().mask()
		}
	}
	return used
}
