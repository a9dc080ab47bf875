package hwregs

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"bpbench/alloc"
)

var task1 = Target{Task: 1, CPU: alloc.AnyCPU}

// mustWrite writes a register that the test expects the Sim to accept.
func mustWrite(t *testing.T, s *Sim, tg Target, reg int, v uint64) {
	t.Helper()
	if err := s.WriteDR(tg, reg, v); err != nil {
		t.Fatalf("WriteDR(%v, DR%d, %#x) = %v", tg, reg, v, err)
	}
}

// mustRead reads a register that the test expects to exist.
func mustRead(t *testing.T, s Backend, tg Target, reg int) uint64 {
	t.Helper()
	v, err := s.ReadDR(tg, reg)
	if err != nil {
		t.Fatalf("ReadDR(%v, DR%d) = %v", tg, reg, err)
	}
	return v
}

// TestSimRefusesLikeKernel checks each refusal the Sim models and that a
// refused write leaves the register file unchanged.
func TestSimRefusesLikeKernel(t *testing.T) {
	s := NewSim()
	mustWrite(t, s, task1, RegDR0, 0x1000)
	dr7 := DR7(0).WithSlot(0, Attr{Addr: 0x1000, Len: 8, Type: Write})
	mustWrite(t, s, task1, RegDR7, uint64(dr7))
	mustWrite(t, s, task1, RegDR1, 0x2001) // disabled slot: any user address

	for _, tc := range []struct {
		name string
		reg  int
		val  uint64
		want error
	}{
		{"DR0=-1", RegDR0, ^uint64(0), ErrBadAddr},
		{"DR1=kernel", RegDR1, 0xffffffff81000000, ErrBadAddr},
		{"DR0=MaxUserAddr", RegDR0, MaxUserAddr, ErrBadAddr},
		{"DR0 unaligned under enabled len 8", RegDR0, 0x1004, ErrBadAddr},
		{"DR4", 4, 0, ErrBadReg},
		{"DR5", 5, 0, ErrBadReg},
		{"DR8", 8, 0, ErrBadReg},
		{"DR-1", -1, 0, ErrBadReg},
		{"DR7 I/O breakpoint", RegDR7, uint64(dr7 | 1<<2 | 0b10<<20), ErrUnsupported},
		{"DR7 exec with LEN 8", RegDR7, uint64(dr7 | 1<<2 | 0b10<<22), ErrBadLen},
		{"DR7 enables unaligned DR1", RegDR7, uint64(dr7.WithSlot(1, Attr{Len: 2, Type: Write})), ErrBadAddr},
	} {
		before := s.Writes()
		err := s.WriteDR(task1, tc.reg, tc.val)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: WriteDR = %v, want %v", tc.name, err, tc.want)
		}
		if s.Writes() != before+1 {
			t.Errorf("%s: refused write not counted", tc.name)
		}
		if got := mustRead(t, s, task1, RegDR0); got != 0x1000 {
			t.Errorf("%s: DR0 = %#x after refused write, want 0x1000", tc.name, got)
		}
		if got := mustRead(t, s, task1, RegDR1); got != 0x2001 {
			t.Errorf("%s: DR1 = %#x after refused write, want 0x2001", tc.name, got)
		}
		if got := DR7(mustRead(t, s, task1, RegDR7)); got != dr7 {
			t.Errorf("%s: DR7 = %v after refused write, want %v", tc.name, got, dr7)
		}
	}
	if _, err := s.ReadDR(task1, 4); !errors.Is(err, ErrBadReg) {
		t.Errorf("ReadDR(DR4) = %v, want ErrBadReg", err)
	}
	if v := mustRead(t, s, Target{Task: 99, CPU: alloc.AnyCPU}, RegDR7); v != 0 {
		t.Errorf("unwritten target DR7 = %#x, want 0", v)
	}
}

// TestSimAccess checks which accesses trap for each slot type, and DR6.
func TestSimAccess(t *testing.T) {
	s := NewSim()
	var d DR7
	program := func(i int, a Attr) {
		mustWrite(t, s, task1, i, a.Addr)
		d = d.WithSlot(i, a)
		mustWrite(t, s, task1, RegDR7, uint64(d))
	}
	program(0, Attr{Addr: 0x1000, Len: 8, Type: Write})
	program(1, Attr{Addr: 0x2002, Len: 2, Type: ReadWrite})
	program(2, Attr{Addr: 0x3001, Len: 1, Type: Exec})
	mustWrite(t, s, task1, RegDR3, 0x1000) // same address as DR0, but disabled

	for _, tc := range []struct {
		addr        uint64
		size        int
		write, exec bool
		want        DR6
	}{
		{0x1000, 8, true, false, 1 << 0},
		{0x1007, 1, true, false, 1 << 0},
		{0x0ffc, 8, true, false, 1 << 0}, // overlaps the start
		{0x1008, 1, true, false, 0},      // just past the end
		{0x0ff8, 8, true, false, 0},      // just before
		{0x1000, 8, false, false, 0},     // a read does not trip a write watch
		{0x2002, 2, false, false, 1 << 1},
		{0x2003, 1, true, false, 1 << 1},
		{0x2004, 4, true, false, 0},
		{0x3001, 1, false, true, 1 << 2},
		{0x3000, 1, false, true, 0},         // exec matches the exact address only
		{0x3001, 1, true, false, 0},         // a data write to an exec address
		{0x1000, 1, false, true, 0},         // an instruction fetch at a data watch
		{0x0ff8, 0x2000, true, false, 0b11}, // one wide access spans two watches
	} {
		dr6, hit := s.Access(task1, tc.addr, tc.size, tc.write, tc.exec)
		if dr6 != tc.want || hit != (tc.want != 0) {
			t.Errorf("Access(%#x, %d, write=%v, exec=%v) = %#x, %v; want %#x", tc.addr, tc.size, tc.write, tc.exec, uint64(dr6), hit, uint64(tc.want))
		}
		if tc.want != 0 {
			if got := DR6(mustRead(t, s, task1, RegDR6)); got.FiredMask() != uint8(tc.want) {
				t.Errorf("DR6 register = %#x after hit, want B bits %#x", uint64(got), uint64(tc.want))
			}
		}
	}
	if _, hit := s.Access(Target{Task: 2, CPU: alloc.AnyCPU}, 0x1000, 8, true, false); hit {
		t.Errorf("access on another target trapped")
	}
}

// TestSimInjectFaults checks the skip/fail plan and that failed writes
// change nothing.
func TestSimInjectFaults(t *testing.T) {
	s := NewSim()
	s.InjectFaults(2, 2)
	var got []bool
	for i := 0; i < 6; i++ {
		err := s.WriteDR(task1, RegDR0, uint64(0x1000+i*8))
		if err != nil && !errors.Is(err, ErrInjected) {
			t.Fatalf("write %d: %v", i, err)
		}
		got = append(got, err == nil)
	}
	if want := []bool{true, true, false, false, true, true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("write outcomes %v, want %v", got, want)
	}
	if v := mustRead(t, s, task1, RegDR0); v != 0x1028 {
		t.Errorf("DR0 = %#x, want 0x1028", v)
	}
	s.InjectFaults(0, 1)
	if err := s.WriteDR(task1, RegDR0, 0x2000); !errors.Is(err, ErrInjected) {
		t.Fatalf("armed write = %v", err)
	}
	if v := mustRead(t, s, task1, RegDR0); v != 0x1028 {
		t.Errorf("DR0 = %#x after injected failure, want 0x1028", v)
	}
	if s.Writes() != 7 {
		t.Errorf("Writes = %d, want 7", s.Writes())
	}
}

// TestSimConcurrent writes many targets from many goroutines (run with
// -race) and checks every target ends with its own last values.
func TestSimConcurrent(t *testing.T) {
	s := NewSim()
	const goroutines, rounds = 8, 500
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				tg := Target{Task: r % 16, CPU: alloc.AnyCPU}
				if g%2 == 1 {
					tg = Target{Task: alloc.NoTask, CPU: r % 4}
				}
				reg := g / 2 % NumSlots
				if err := s.WriteDR(tg, reg, uint64(0x10000*(g+1)+r*8)); err != nil {
					t.Error(err)
					return
				}
				s.Access(tg, 0x10000, 8, true, false)
			}
		}()
	}
	wg.Wait()
	if s.Writes() != goroutines*rounds {
		t.Errorf("Writes = %d, want %d", s.Writes(), goroutines*rounds)
	}
}

// TestSimWriteAllocs checks the steady-state write path does not allocate.
func TestSimWriteAllocs(t *testing.T) {
	s := NewSim()
	mustWrite(t, s, task1, RegDR0, 0x1000)
	a := Attr{Addr: 0x1000, Len: 8, Type: Write}
	n := testing.AllocsPerRun(1000, func() {
		_ = s.WriteDR(task1, RegDR0, 0x1000)
		_ = s.WriteDR(task1, RegDR7, uint64(DR7(0).WithSlot(0, a)))
		s.Access(task1, 0x1000, 1, true, false)
	})
	if n != 0 {
		t.Errorf("WriteDR/Access allocate %v times per run, want 0", n)
	}
}
