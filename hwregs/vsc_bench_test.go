package hwregs

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"bpbench/alloc"
	"bpbench/internal/cpupin"
)

// vscCPU is the CPU both sides of BenchmarkVsC run on: the Go tracer thread
// (or the perf event's thread) and the C program with its tracee, as in
// shared/anchors.md's raw C figures.
const vscCPU = 0

// vscMinOps is the fewest ops the C loop times, so that b.N's first
// rounds (1, 100) still give it a stable mean.
const vscMinOps = 20_000

// BenchmarkVsC measures the Writer (ptrace) and PerfEvent (perf) modify as
// a user calls them against a C program making the same system calls in a
// loop (testdata/vsc/*.c, built with the system's C compiler), in the same
// run and under the same pinning; x-c is the Go ns/op over the C one.
//
//   - backend=ptrace/call=inside: Writer.Modify in a loop inside one
//     Ptrace.Do, on the tracer thread.
//   - backend=ptrace/call=hop: one Ptrace.Do per Writer.Modify from the
//     benchmark's goroutine, which is not the tracer thread: what a caller
//     pays for each op it hands over.
//   - backend=perf: PerfEvent.Modify on the benchmark's own thread.
//
// It skips, saying why, without a C compiler or the kernel features.
func BenchmarkVsC(b *testing.B) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("gcc"); err != nil {
			b.Skip("no C compiler (cc or gcc) to build the C floor")
		}
	}
	dir := b.TempDir()
	build := func(name string) string {
		out := filepath.Join(dir, name)
		if msg, err := exec.Command(cc, "-O2", "-o", out, filepath.Join("testdata", "vsc", name+".c")).CombinedOutput(); err != nil {
			b.Fatalf("building %s: %v\n%s", name, err, msg)
		}
		return out
	}
	b.Run("backend=ptrace", func(b *testing.B) {
		prog := build("ptrace_poke")
		p := ptStart(b, 1)
		b.Run("call=inside/op=modify", func(b *testing.B) { vscPtrace(b, p, prog, false) })
		b.Run("call=hop/op=modify", func(b *testing.B) { vscPtrace(b, p, prog, true) })
	})
	b.Run("backend=perf/op=modify", func(b *testing.B) {
		skipUnlessPerf(b)
		vscPerf(b, build("perf_modify"))
	})
}

// vscPtrace times b.N Writer.Modify calls on a breakpoint alternating
// between two variables of the tracee, inside one Do or one Do each.
func vscPtrace(b *testing.B, p *Ptrace, prog string, hop bool) {
	h := p.Hello()
	attrs := [2]Attr{{Addr: h.VarAddr(0, 0), Len: 8, Type: Write}, {Addr: h.VarAddr(0, 1), Len: 8, Type: Write}}
	a, err := alloc.New(ptBenchStrategy, alloc.X86(1))
	if err != nil {
		b.Fatal(err)
	}
	w := NewWriter(a, p, WriteChanged)
	var (
		bp   Breakpoint
		next Attr
		merr error
	)
	ptDo(b, p, func() error {
		if err := ptReset(p); err != nil {
			return err
		}
		bp, err = w.Register(alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}, attrs[0])
		return err
	})
	modify := func() { merr = w.Modify(&bp, next) }
	b.ReportAllocs()
	b.ResetTimer()
	if hop {
		for i := 0; i < b.N && merr == nil; i++ {
			next = attrs[(i+1)&1]
			if err := p.Do(modify); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		ptDo(b, p, func() error {
			for i := 0; i < b.N && merr == nil; i++ {
				next = attrs[(i+1)&1]
				modify()
			}
			return nil
		})
	}
	b.StopTimer()
	if merr != nil {
		b.Fatal(merr)
	}
	ptDo(b, p, func() error { return w.Unregister(bp) })
	vscReport(b, prog)
}

// vscPerf times b.N PerfEvent.Modify calls on a breakpoint of the
// benchmark's thread, pinned, alternating between two variables.
func vscPerf(b *testing.B, prog string) {
	unpin, err := cpupin.Pin(vscCPU)
	if err != nil {
		b.Fatal(err)
	}
	defer unpin()
	attrs := [2]Attr{perfWatch(0, Write), perfWatch(1, Write)}
	e := perfBenchOpen(b, attrs[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Modify(attrs[(i+1)&1]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	e.Close()
	vscReport(b, prog)
}

// vscReport runs the C loop right after the Go one, with as many ops (at
// least vscMinOps), and reports its mean as c-ns/op and the ratio x-c.
func vscReport(b *testing.B, prog string) {
	n := max(b.N, vscMinOps)
	out, err := exec.CommandContext(context.Background(), prog, strconv.Itoa(n), strconv.Itoa(vscCPU)).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", filepath.Base(prog), err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != "ns/op" {
		b.Fatalf("%s printed %q, want \"ns/op <mean>\"", filepath.Base(prog), out)
	}
	c, err := strconv.ParseFloat(f[1], 64)
	if err != nil || c <= 0 {
		b.Fatalf("%s printed %q: %v", filepath.Base(prog), out, err)
	}
	goNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(c, "c-ns/op")
	b.ReportMetric(goNs/c, "x-c")
}
