package alloc

import (
	"fmt"
	"math/bits"
	"sync/atomic"
)

// This file holds what cas and cas-percpu share: the packed per-CPU pool
// word W_c with its CPU-bound fast paths, the per-task slot generations,
// and casBase, the pools and refusal bookkeeping of both.

// cpuWord is W_c, one CPU's word in one pool of N registers. A CPU-bound
// reservation reads and CASes this one word. From bit 0:
//
//   - per register index i < N, a field of casPool.fb bits holding a
//     generation counter. Reserving and releasing each advance a field by
//     one (modulo its width), so an odd field is held by a CPU-bound
//     breakpoint and its value is the holder's Slot.Gen; its low bit is
//     the live bit. cp(c), the number of CPU-bound breakpoints on c, is
//     the number of live bits.
//   - tmax, 5 bits: an upper bound on pinned_t(c) for every task t (each
//     strategy keeps it so, by its own invariant C).
//   - L, 1 bit: a lowering of tmax is scanning (cas's lowerCPU; cas-percpu
//     never sets it).
//   - a version, the remaining bits up to 63, bumped by every change of
//     tmax and by setting L, so that a CAS expecting an older word fails
//     even where tmax came back to the same value.
//
// W_c changes by deltas (a field advanced, tmax replaced, L set or
// cleared), never by rebuilding it, so casPool has accessors and
// transitions for it rather than a pack.
//
// Invariant A, kept by both strategies: every CAS that raises cp(c) or
// tmax(c) checks cp(c) + tmax(c) <= N in the value it installs; lowering
// either only decreases the sum. So cp(c) + tmax(c) <= N always holds.
//
// Limits of the packing, documented rather than hidden: a field has 8 bits
// for pools of up to 6 registers (48 / N bits above that, 3 at N = 16).
// With 8 bits a stale CPU-bound Slot is recognised unless its index was
// reused a multiple of 128 times since; narrower pools keep a 32-bit
// generation per CPU and index beside W_c (casPool.wide), which decides
// instead. The version has 64 - 6 - N*field bits (26 at N = 4, 10 at
// N = 16), and a lowering is only fooled if exactly a multiple of 2^bits
// version bumps on the same CPU happen between its two accesses to W_c.
// Task slots keep full 32-bit generations.
type cpuWord uint64

// atomicWord is a packed word of type W, read and changed atomically:
// its methods are atomic.Uint64's, typed.
type atomicWord[W ~uint64] struct{ v atomic.Uint64 }

func (a *atomicWord[W]) Load() W { return W(a.v.Load()) }

func (a *atomicWord[W]) CompareAndSwap(old, new W) bool {
	return a.v.CompareAndSwap(uint64(old), uint64(new))
}

// Add adds d and returns the new word; Sub subtracts it. Words that
// change by Add keep every field away from overflow, so a delta changes
// only its own fields.
func (a *atomicWord[W]) Add(d W) W { return W(a.v.Add(uint64(d))) }
func (a *atomicWord[W]) Sub(d W) W { return W(a.v.Add(-uint64(d))) }

// casPool is one pool's layout of W_c and its words, one per CPU.
type casPool struct {
	n         int
	fb        uint     // bits per register field
	fieldMask uint64   // one field, at index 0
	liveBits  cpuWord  // the live bit of every field
	idxOf     [64]int8 // register index of a live bit's position (no division on the hot path)
	tShift    uint     // tmax position (5 bits)
	lFlag     cpuWord  // L, the bit after tmax
	vOne      cpuWord  // one version step
	cpu       []poolCPU
	wide      []slotGens // per CPU, when fields are narrower than casWideBits
}

// poolCPU holds W_c alone on its cache line, so that CPU-bound
// reservations on different CPUs, and the strategies' task accounting
// beside it, never share a line with it.
type poolCPU struct {
	w atomicWord[cpuWord]
	_ [56]byte
}

// newCASPool returns the layout and words of a pool of n registers on
// cpus CPUs, for a strategy to embed in its own state of the pool.
func newCASPool(n, cpus int) casPool {
	fb := uint(48 / n)
	if fb > 8 {
		fb = 8
	}
	p := casPool{n: n, fb: fb, fieldMask: 1<<fb - 1, cpu: make([]poolCPU, cpus)}
	for i := 0; i < n; i++ {
		p.liveBits |= 1 << (uint(i) * fb)
		p.idxOf[uint(i)*fb] = int8(i)
	}
	p.tShift = uint(n) * fb
	p.lFlag = 1 << (p.tShift + 5)
	p.vOne = 1 << (p.tShift + 6)
	if fb < casWideBits {
		p.wide = make([]slotGens, cpus)
	}
	return p
}

// casWideBits is the narrowest field whose generation identifies a
// CPU-bound slot on its own: 2^7 holders of an index before one repeats.
// Pools of more than 6 registers have narrower fields and keep a 32-bit
// generation per CPU and index beside W_c (casPool.wide), at one more
// locked operation per reservation and release; x86's 4 registers do not.
const casWideBits = 8

// cp is the number of CPU-bound breakpoints in w.
func (p *casPool) cp(w cpuWord) int { return bits.OnesCount64(uint64(w & p.liveBits)) }

// tmax is w's bound on every task's pinned_t(c).
func (p *casPool) tmax(w cpuWord) int { return int(w>>(p.tShift&63)) & 31 }

// lowering reports whether L is set in w.
func (p *casPool) lowering(w cpuWord) bool { return w&p.lFlag != 0 }

// withTmax returns w with tmax t and the version bumped.
func (p *casPool) withTmax(w cpuWord, t int) cpuWord {
	w = w&^(31<<(p.tShift&63)) | cpuWord(t)<<(p.tShift&63)
	return w + p.vOne // the version wraps off the top
}

// flagged returns w with L set and the version bumped.
func (p *casPool) flagged(w cpuWord) cpuWord { return (w | p.lFlag) + p.vOne }

// unflagged returns w with L clear. The version stays: clearing L changes
// the word anyway, so a CAS expecting the flagged word fails.
func (p *casPool) unflagged(w cpuWord) cpuWord { return w &^ p.lFlag }

// freeBit returns the live bit of w's lowest free field, 0 if every
// field is held.
func (p *casPool) freeBit(w cpuWord) cpuWord {
	free := ^w & p.liveBits
	return free & -free
}

// reserveCPU is the fast path of a valid CPU-bound request on CPU st, for
// the common case of a CPU on which no task holds a breakpoint (tmax = 0):
// admission is then a free register, and the whole reservation one load
// and one CAS on W_c. It returns the word it installed and the live bit it
// set, or free = 0, having changed nothing, when tmax is not 0, the CPU is
// full or the CAS lost a race; the caller then tries tryCPU, the general
// rule, once and leaves the rest to reserveCPUSlow. Leaving the population
// count (and the runtime's check for the POPCNT instruction) out of the
// common case saves about 5% of the pair in BenchmarkFloorRatio; the
// price, one more failed check on CPUs where a task holds a breakpoint,
// shows in BenchmarkTasks/op=cpu.
//
// The new word is w plus the lowest free live bit: a free field holds an
// even generation and reserving makes it the next, odd one (releasing makes
// it the next even one, see releaseCPU). Nothing depends on the bit's
// position between the load and the CAS, which would otherwise add a bit
// scan and four shifts to the latency of every admission.
func (p *casPool) reserveCPU(st *poolCPU) (nw, free cpuWord) {
	// freeBit and tmax, spelt out: with the calls the inliner prices the
	// function over its budget.
	w := st.w.Load()
	free = ^w & p.liveBits & -(^w & p.liveBits)
	if free != 0 && w>>(p.tShift&63)&31 == 0 {
		if nw = w + free; st.w.CompareAndSwap(w, nw) {
			return nw, free
		}
	}
	return 0, 0
}

// tryCPU is one attempt at the general CPU-bound rule, cp + tmax + 1 <= N,
// with reserveCPU's field update and results.
func (p *casPool) tryCPU(st *poolCPU) (nw, free cpuWord) {
	w := st.w.Load()
	if bits.OnesCount64(uint64(w&p.liveBits))+int(w>>(p.tShift&63)&31) < p.n { // admits(cp, tmax, n), spelt out as in reserveCPU
		free = ^w & p.liveBits & -(^w & p.liveBits) // not 0 since cp < n
		if nw = w + free; st.w.CompareAndSwap(w, nw) {
			return nw, free
		}
	}
	return 0, 0
}

// cpuSlot is the Slot of request r for which a CAS installed word nw by
// setting live bit free.
func (p *casPool) cpuSlot(r Request, nw, free cpuWord) Slot {
	sh := uint(bits.TrailingZeros64(uint64(free))) & 63
	if p.wide != nil {
		i := int(p.idxOf[sh])
		return NewSlot(r, i, p.wide[r.CPU].take(i))
	}
	return NewSlot(r, int(p.idxOf[sh]), uint32(uint64(nw)>>sh&p.fieldMask))
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
func (b *casBase) releaseCPU(s Slot) (done bool, err error) {
	r := s.req
	if r.Task != NoTask || r.Kind >= numKinds || s.gen&1 == 0 {
		return false, nil
	}
	p := b.byKind[r.Kind]
	if uint(r.CPU) >= uint(len(p.cpu)) || uint(s.index) >= uint(p.n) {
		return false, nil
	}
	st := &p.cpu[r.CPU]
	sh := uint(s.index) * p.fb & 63
	if p.wide != nil {
		// The wide generation decides; the winner owns the field, which
		// is odd (held), and advances it to the next, even value.
		if !p.wide[r.CPU].give(int(s.index), s.gen) {
			return true, b.errs.stale(r)
		}
		for {
			w := st.w.Load()
			f := uint64(w) >> sh & p.fieldMask
			if st.w.CompareAndSwap(w, w+cpuWord((f+1)&p.fieldMask-f)<<sh) {
				return true, nil
			}
		}
	}
	// The field goes from s.gen to the next generation, 0 after the top;
	// the field is s.gen when the CAS succeeds, so adding the difference
	// (modulo 2^64) changes it and nothing else.
	next := uint64(s.gen+1) & p.fieldMask
	delta := cpuWord(next-uint64(s.gen)) << sh
	for {
		w := st.w.Load()
		if uint32(uint64(w)>>sh&p.fieldMask) != s.gen {
			return true, b.errs.stale(r)
		}
		if st.w.CompareAndSwap(w, w+delta) {
			return true, nil
		}
	}
}

// String describes the packing, for test failure messages.
func (p *casPool) String() string {
	return fmt.Sprintf("cas pool n=%d field=%d bits tmax@%d flag@%d version@%d", p.n, p.fb, p.tShift, p.tShift+5, p.tShift+6)
}

// slotGens holds a generation per register index (or overflow position):
// even means free, odd means held, and the odd value is the holder's
// Slot.Gen, so a stale or double release never matches. The strategies
// own an index before they take its generation.
type slotGens [MaxSlots]atomic.Uint32

// take marks index i held and returns its generation.
func (g *slotGens) take(i int) uint32 { return g[i].Add(1) }

// give frees index i if gen is its current holder.
func (g *slotGens) give(i int, gen uint32) bool { return g[i].CompareAndSwap(gen, gen+1) }

// allSlots is one task's all-CPU slots in one pool, in either strategy:
// generations per register index and per overflow position (NoIndex
// slots, see NoIndex), and the overflow positions held.
type allSlots struct {
	allGen slotGens
	ovGen  slotGens
	ov     atomic.Uint32
}

// takeOv claims an overflow position, -1 if none is free.
func (a *allSlots) takeOv() int {
	for {
		o := a.ov.Load()
		pos := lowestFree(o, MaxSlots)
		if pos < 0 || a.ov.CompareAndSwap(o, o|1<<pos) {
			return pos
		}
	}
}

// dropOv frees overflow position pos, if any (pos >= 0).
func (a *allSlots) dropOv(pos int) {
	if pos >= 0 {
		a.ov.And(^uint32(1 << pos))
	}
}

// slot returns the Slot of admitted all-CPU request r at register index i,
// or at overflow position pos when pos >= 0.
func (a *allSlots) slot(r Request, i, pos int) Slot {
	if pos >= 0 {
		return NewSlot(r, overflowRaw(pos), a.ovGen.take(pos))
	}
	return NewSlot(r, i, a.allGen.take(i))
}

// give ends the all-CPU slot at raw index raw (an overflow position when
// negative) if gen holds it; the caller frees the position afterwards.
func (a *allSlots) give(raw int, gen uint32) bool {
	if raw < 0 {
		return a.ovGen.give(overflowPos(raw), gen)
	}
	return a.allGen.give(raw, gen)
}

// casBase is what cas and cas-percpu share: the pools with their W_c
// words and the refusal bookkeeping.
type casBase struct {
	cfg      Config
	pools    [numKinds]*casPool
	byKind   [numKinds]*casPool // pools[cfg.poolIndex(k)], without the branch
	spurious atomic.Uint64
	errs     errTable
	bound    taskBound // the strategy's side of reserveCPUSlow
}

// taskBound is a strategy's side of a CPU-bound reservation that the task
// bound tmax(c) refuses.
type taskBound interface {
	// lowerTmax tries to bring tmax(c) in kind k's pool, which leaves no
	// room beside cp CPU-bound breakpoints, down to what the tasks hold.
	// It reports whether to try again, and whether its view of the tasks
	// may have been inexact because of operations in flight.
	lowerTmax(k Kind, c, cp, tmax int) (retry, inexact bool)
	// inFlight reports whether a task operation on c that a refusal may
	// rest on was in flight.
	inFlight(k Kind, c int) bool
}

// casStates sets b up for a strategy whose state of a pool of n registers
// mk builds around the pool's words p, and returns those states by Kind,
// as b.byKind. bound is the strategy's side of reserveCPUSlow.
func casStates[S interface{ words() *casPool }](b *casBase, cfg Config, bound taskBound, mk func(p casPool) S) (byKind [numKinds]S) {
	var own [numKinds]S
	b.cfg, b.errs, b.bound = cfg, newErrTable(cfg), bound
	for k, n := range [numKinds]int{cfg.Slots, cfg.InstSlots} { // 0: instructions share the data pool
		if n > 0 {
			own[k] = mk(newCASPool(n, cfg.CPUs))
			b.pools[k] = own[k].words()
		}
	}
	for k := range byKind {
		byKind[k] = own[cfg.poolIndex(Kind(k))]
		b.byKind[k] = b.pools[cfg.poolIndex(Kind(k))]
	}
	return byKind
}

// reserveCPUBound is the Reserve of both strategies for a request with
// Task == NoTask: the request is validated by the comparisons reserveCPU
// needs anyway, then admitted by reserveCPU or, when a task bound is set
// on the CPU, tryCPU, with reserveCPUSlow behind them. done is false for
// an invalid request, which the strategy's validation then reports.
func (b *casBase) reserveCPUBound(r Request) (s Slot, done bool, err error) {
	if r.Kind >= numKinds {
		return Slot{}, false, nil
	}
	p := b.byKind[r.Kind]
	if uint(r.CPU) >= uint(len(p.cpu)) {
		return Slot{}, false, nil
	}
	st := &p.cpu[r.CPU]
	if nw, free := p.reserveCPU(st); free != 0 {
		return p.cpuSlot(r, nw, free), true, nil
	}
	if nw, free := p.tryCPU(st); free != 0 {
		return p.cpuSlot(r, nw, free), true, nil
	}
	s, err = b.reserveCPUSlow(p, r)
	return s, true, err
}

// reserveCPUSlow retries tryCPU after lost CASes, has the strategy lower a
// task bound that releases left high, and refuses, counting the refusal as
// spurious when it may rest on something in flight.
func (b *casBase) reserveCPUSlow(p *casPool, r Request) (Slot, error) {
	st := &p.cpu[r.CPU]
	inexact := false
	for tries := 0; ; tries++ {
		if nw, free := p.tryCPU(st); free != 0 {
			return p.cpuSlot(r, nw, free), nil
		}
		w := st.w.Load()
		cp, t := p.cp(w), p.tmax(w)
		if admits(cp, t, p.n) {
			continue // lost a race; try again
		}
		if tries < 8 {
			retry, inx := b.bound.lowerTmax(r.Kind, r.CPU, cp, t)
			inexact = inexact || inx
			if retry {
				continue
			}
		}
		if tries >= 8 || inexact || b.bound.inFlight(r.Kind, r.CPU) {
			b.spurious.Add(1)
		}
		return Slot{}, b.errs.noSlot(r)
	}
}

// cpuHeld reports whether any CPU-bound breakpoint is held or, with
// tmax, any task bound is above zero.
func (b *casBase) cpuHeld(tmax bool) bool {
	for _, p := range b.pools {
		if p == nil {
			continue
		}
		for c := range p.cpu {
			w := p.cpu[c].w.Load()
			if p.cp(w) > 0 || tmax && p.tmax(w) > 0 {
				return true
			}
		}
	}
	return false
}

// SpuriousRefusals implements SpuriousRefusals.
func (b *casBase) SpuriousRefusals() uint64 { return b.spurious.Load() }
