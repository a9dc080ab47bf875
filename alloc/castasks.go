package alloc

import (
	"sync"
	"sync/atomic"
)

// casTask is a task's record in cas: its state in each pool (caswords.go).
type casTask struct {
	pools [numKinds]casTaskState
}

// casTasks is cas's task table. Ids below casDense live in a three-level
// radix table whose levels are allocated on first use and installed by
// CAS, so a lookup is three dependent loads and no hashing, and a record
// never moves once created; larger ids fall back to a sync.Map. Records
// are never freed (nor are cas-percpu's); one whose task holds nothing
// stands in no count.
type casTasks struct {
	top [1 << casTopBits]atomic.Pointer[casMid]
	big sync.Map // task id >= casDense -> *casTask
}

// The radix table's levels: the top level by the high bits of the id, a
// middle level, and chunks of records by the low bits.
const (
	casChunkBits = 4
	casMidBits   = 8
	casTopBits   = 8
	casDense     = 1 << (casChunkBits + casMidBits + casTopBits)
)

type casChunk [1 << casChunkBits]casTask

type casMid [1 << casMidBits]atomic.Pointer[casChunk]

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
