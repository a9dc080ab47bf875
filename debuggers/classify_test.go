package debuggers

import (
	"reflect"
	"testing"

	"bpbench/hwregs"
)

// TestKernelRules walks one thread through the writes GDB and Delve make
// and checks each inferred outcome against the rules conform's facts
// established (see Kernel).
func TestKernelRules(t *testing.T) {
	const tid = 100
	w8 := func(i int, a uint64) uint64 {
		return uint64(hwregs.DR7(0).WithSlot(i, hwregs.Attr{Addr: a, Len: 8, Type: hwregs.Write}))
	}
	both := w8(0, 0x1000) | w8(1, 0x2000)
	k := NewKernel()
	steps := []struct {
		what    string
		reg     int
		val     uint64
		ok      bool
		want    []SlotOutcome
		changed bool
		held    int
	}{
		{"DR7 = 0 on a fresh thread touches nothing", 7, 0, true, nil, false, 0},
		{"DR0 reserves a disabled slot", 0, 0x1000, true, []SlotOutcome{{0, Reserved}}, true, 1},
		{"DR1 = 0 reserves too (Delve writes all four)", 1, 0, true, []SlotOutcome{{1, Reserved}}, false, 2},
		{"DR7 enables slot 0 in place", 7, w8(0, 0x1000), true, []SlotOutcome{{0, Enabled}, {1, Same}}, true, 2},
		{"DR0 again with the same address", 0, 0x1000, true, []SlotOutcome{{0, Same}}, false, 2},
		{"DR0 moves in place", 0, 0x1008, true, []SlotOutcome{{0, Changed}}, true, 2},
		{"DR7 enabling an unwritten slot 2 reserves it", 7, w8(0, 0) | uint64(hwregs.DR7(0).WithSlot(2, hwregs.Attr{Addr: 0, Len: 1, Type: hwregs.Write})), true,
			[]SlotOutcome{{0, Same}, {1, Same}, {2, Reserved}}, true, 3},
		{"DR7 = both: slot 1 enabled, slot 2 disabled but held", 7, both, true,
			[]SlotOutcome{{0, Same}, {1, Enabled}, {2, Disabled}}, true, 3},
		{"DR7 resizing slot 0 changes it in place", 7, both&^(3<<18) | 3<<18, true,
			[]SlotOutcome{{0, Changed}, {1, Same}, {2, Same}}, true, 3},
		{"DR7 = 0 disables, releases nothing", 7, 0, true,
			[]SlotOutcome{{0, Disabled}, {1, Disabled}, {2, Same}}, true, 3},
		{"DR6 is status", 6, 0xffff0ff0, true, []SlotOutcome{{-1, Status}}, true, 3},
		{"a refused DR3 changes nothing", 3, 0xffffffffffffffff, false, []SlotOutcome{{3, Refused}}, false, 3},
	}
	for _, s := range steps {
		got, changed := k.Write(nil, tid, s.reg, s.val, s.ok)
		if !reflect.DeepEqual(got, s.want) || changed != s.changed {
			t.Errorf("%s: got %v changed=%v, want %v changed=%v", s.what, got, changed, s.want, s.changed)
		}
		if h := k.Held(tid); h != s.held {
			t.Errorf("%s: %d slots held, want %d", s.what, h, s.held)
		}
	}
	if r := k.Regs(tid); r.DR[0] != 0x1008 || r.DR[3] != 0 || r.DR7 != 0 {
		t.Errorf("registers after the walk: %+v", r)
	}
	if k.Held(tid+1) != 0 {
		t.Error("an unseen thread holds slots")
	}
}

// TestReplayPolicies replays GDB's and Delve's ways of writing one change
// and checks what each built-in policy plans for it.
func TestReplayPolicies(t *testing.T) {
	pols, err := RegisteredPolicies()
	if err != nil {
		t.Fatal(err)
	}
	w := func(tid, reg int, val uint64) Call {
		return Call{Req: reqPokeUser, Tid: tid, Addr: drBase + 8*uint64(reg), Data: val}
	}
	peek := func(tid, reg int) Call { return Call{Req: reqPeekUser, Tid: tid, Addr: drBase + 8*uint64(reg)} }
	cont := func(tid int) Call { return Call{Req: 7, Tid: tid} }
	dr7 := uint64(hwregs.DR7(0).WithSlot(0, hwregs.Attr{Addr: 0x1000, Len: 8, Type: hwregs.Write}))

	rp := NewReplay(pols)
	// GDB: DR7 = 0, DR0, DR7, DR6 = 0 then resume: one change, which
	// write-changed makes with DR0 and DR7, write-all with six.
	for _, c := range []Call{w(1, 7, 0), w(1, 0, 0x1000), w(1, 7, dr7), w(1, 6, 0), cont(1)} {
		rp.Call(c)
	}
	writes, changes := rp.Take()
	if changes != 1 || writes["changed"] != 2 || writes["all"] != 6 {
		t.Errorf("GDB set: %d changes, %v", changes, writes)
	}
	// Rewriting the same state is no change.
	for _, c := range []Call{w(1, 7, 0), w(1, 7, dr7), cont(1)} {
		rp.Call(c)
	}
	if writes, changes = rp.Take(); changes != 0 || writes["changed"] != 0 || writes["all"] != 0 {
		t.Errorf("GDB rewrite: %d changes, %v", changes, writes)
	}
	// Delve's move: a read-modify-write that disables slot 0, then one
	// that points it elsewhere and enables it: two changes, told apart
	// by the peek that starts the second.
	for _, c := range []Call{peek(2, 0), w(2, 0, 0x1000), w(2, 7, dr7), cont(2)} {
		rp.Call(c)
	}
	rp.Take()
	seq := []Call{}
	for r := 0; r < 8; r++ {
		if r != 4 && r != 5 {
			seq = append(seq, peek(2, r))
		}
	}
	seq = append(seq, w(2, 0, 0x1000), w(2, 1, 0), w(2, 2, 0), w(2, 3, 0), w(2, 6, 0), w(2, 7, 0))
	seq = append(seq, peek(2, 0), w(2, 0, 0x2000), w(2, 1, 0), w(2, 2, 0), w(2, 3, 0), w(2, 6, 0), w(2, 7, dr7))
	for _, c := range seq {
		rp.Call(c)
	}
	rp.Flush()
	if writes, changes = rp.Take(); changes != 2 || writes["changed"] != 3 || writes["all"] != 12 {
		t.Errorf("Delve move: %d changes, %v; want 2 changes, changed 3 (DR7; DR0 and DR7), all 12", changes, writes)
	}
	// A refused write is not part of any state.
	rp.Call(Call{Req: reqPokeUser, Tid: 3, Addr: drBase, Data: 0x3000, Errno: "EINVAL"})
	rp.Flush()
	if _, changes = rp.Take(); changes != 0 {
		t.Errorf("refused write made %d changes", changes)
	}
}
