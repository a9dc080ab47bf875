package debuggers

import (
	"errors"
	"strings"
	"testing"
)

// TestParseStraceForms reads the line forms strace prints: with and
// without thread ids and timestamps, split calls, failures, markers of
// both kinds, and lines to skip.
func TestParseStraceForms(t *testing.T) {
	in := strings.Join([]string{
		`1796536323.257922 chdir("/proc/bpbench-mark/6/1/set") = -1 ENOENT (No such file or directory)`,
		`1796536323.262199 ptrace(0x6, 0x18b4, 0x388, 0) = 0`,
		`ptrace(0x3, 0x18b4, 0x350, 0x7ffc60b8cc08) = 0`,
		`05:28:07.387720 ptrace(0x6, 0x18b4, 0x350, 0x5654d6db9030) = -1 ENOSPC (No space left on device)`,
		`5246  1796536251.580971 read(13, "{\"method\":\"RPCServer.ListSources\",\"params\":[{\"Filter\":\"bpbench-mark/7/1/hit\"}],\"id\":2}\n", 4096) = 87`,
		`5222  1796536251.529614 read(13, 0x2b84867a3000, 4096) = -1 EAGAIN (Resource temporarily unavailable)`,
		`5240  1796536251.600000 ptrace(0x6, 0x1901, 0x388, 0x90001 <unfinished ...>`,
		`5246  1796536251.600001 read(13,  <unfinished ...>`,
		`5240  1796536251.600002 <... ptrace resumed>) = 0`,
		`5246  1796536251.600003 <... read resumed>"{\"method\":\"RPCServer.ListSources\",\"params\":[{\"Filter\":\"bpbench-mark/8/1/move\"}]}", 4096) = 80`,
		`[pid  5240] ptrace(0x7, 0x1901, 0, 0) = 0`,
		`5240  1796536251.700000 +++ killed by SIGKILL +++`,
		`5240  1796536251.700001 write(1, "bpbench-mark/9/1/fill", 21) = 21`,
	}, "\n")
	evs, err := ParseStrace(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		mark   string // "seq/rep/action" for a marker
		req    uint64
		tid    int
		addr   uint64
		data   uint64
		errno  string
		tracer int
	}
	wants := []want{
		{mark: "6/1/set"},
		{req: 6, tid: 0x18b4, addr: 0x388, data: 0},
		{req: 3, tid: 0x18b4, addr: 0x350, data: 0x7ffc60b8cc08},
		{req: 6, tid: 0x18b4, addr: 0x350, data: 0x5654d6db9030, errno: "ENOSPC"},
		{mark: "7/1/hit"},
		// The split ptrace sits where it started, before the marker whose
		// read completed after it began.
		{req: 6, tid: 0x1901, addr: 0x388, data: 0x90001, tracer: 5240},
		{mark: "8/1/move"},
		{req: 7, tid: 0x1901, tracer: 5240},
		// The write(2) holding the token is not a marker system call.
	}
	if len(evs) != len(wants) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(wants), evs)
	}
	for i, w := range wants {
		e := evs[i]
		if w.mark != "" {
			if e.Mark == nil {
				t.Errorf("event %d: got a call %+v, want marker %s", i, e.Call, w.mark)
				continue
			}
			if got := markPath(*e.Mark); got != markToken+w.mark {
				t.Errorf("event %d: marker %s, want %s", i, got, w.mark)
			}
			continue
		}
		c := e.Call
		if c == nil {
			t.Errorf("event %d: got marker %+v, want a call", i, e.Mark)
			continue
		}
		if c.Req != w.req || c.Tid != w.tid || c.Addr != w.addr || c.Data != w.data || c.Errno != w.errno || c.Tracer != w.tracer {
			t.Errorf("event %d: got %+v, want %+v", i, *c, w)
		}
	}
	if c := evs[3].Call; c.OK() || !c.DRWrite() || c.DR() != 0 {
		t.Errorf("failed DR0 poke: OK %v DRWrite %v DR %d", c.OK(), c.DRWrite(), c.DR())
	}
	if c := evs[2].Call; !c.DRRead() || c.DR() != 0 {
		t.Errorf("DR0 peek: DRRead %v DR %d", c.DRRead(), c.DR())
	}
	if c := evs[1].Call; c.DR() != 7 {
		t.Errorf("offset 0x388 is DR%d, want DR7", c.DR())
	}
}

// TestParseStraceDR checks which user-area offsets are debug registers.
func TestParseStraceDR(t *testing.T) {
	for _, c := range []struct {
		req, addr uint64
		want      int
	}{
		{6, 848, 0}, {6, 848 + 8*3, 3}, {6, 848 + 8*6, 6}, {6, 848 + 8*7, 7},
		{6, 848 + 8*8, -1}, {6, 840, -1}, {6, 852, -1}, {3, 848 + 8*7, 7},
		{5, 848, -1}, // POKEDATA at that address is memory, not the user area
	} {
		if got := (Call{Req: c.req, Addr: c.addr}).DR(); got != c.want {
			t.Errorf("req %d addr %d: DR %d, want %d", c.req, c.addr, got, c.want)
		}
	}
	if RequestName(0x4204) != "getregset" || RequestName(6) != "pokeuser" || RequestName(0x9999) != "req-9999" {
		t.Error("RequestName")
	}
}

// TestParseStraceBad refuses what it cannot count: decoded (non-raw)
// ptrace lines and a resume without a start.
func TestParseStraceBad(t *testing.T) {
	for _, in := range []string{
		`ptrace(PTRACE_POKEUSER, 13338, offsetof(struct user, u_debugreg)+56, NULL) = 0`,
		`5240  <... ptrace resumed>) = 0`,
		"5240  ptrace(0x6, 1, 2, 3 <unfinished ...>\n5240  ptrace(0x6, 1, 2, 3 <unfinished ...>",
	} {
		if _, err := ParseStrace(strings.NewReader(in)); !errors.Is(err, ErrTrace) {
			t.Errorf("%q: error %v, want ErrTrace", in, err)
		}
	}
	// A call cut off by the end of the trace is dropped, not guessed.
	evs, err := ParseStrace(strings.NewReader("5240  ptrace(0x6, 1, 2, 3 <unfinished ...>\n"))
	if err != nil || len(evs) != 0 {
		t.Errorf("cut-off call: %v, %v", evs, err)
	}
}
