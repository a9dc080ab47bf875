// Package alloctest checks an alloc.Allocator against the contract of
// package alloc, the way testing/fstest checks an fs.FS: call Run from a
// test of the package that implements a strategy,
//
//	func TestConformance(t *testing.T) {
//		alloctest.Run(t, func(c alloc.Config) (alloc.Allocator, error) {
//			return alloc.New("my-strategy", c)
//		})
//	}
//
// and every property becomes a named subtest: the nine KUnit cases of
// kernel/events/hw_breakpoint_test.c, the rule and release tables, a
// differential test against a brute-force model of the kernel's admission
// formulas (a failure names the rule and prints the shortest operation
// sequence that breaks it), a concurrent stress test whose refusals are
// certain by construction, and allocation checks of the refusal paths.
// They run on machines from 1 CPU with 1 register to 256 CPUs; a panic in
// the strategy is reported as a failure naming the Config and the
// operations, not a crash. Nothing depends on timing or scheduling.
package alloctest

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"bpbench/alloc"
)

// Constructor builds an allocator for a valid Config, as alloc.Register
// takes it.
type Constructor = func(alloc.Config) (alloc.Allocator, error)

// tb is what the kit needs from a test: testing.TB's reporting plus Run.
// Run adapts a *testing.T to it; a test of the kit itself substitutes a
// recorder (see check).
type tb interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	// Fatalf reports a failure and ends the current subtest; it may only be
	// called from the goroutine running it.
	Fatalf(format string, args ...any)
	Failed() bool
	// Run runs f as the subtest name and reports whether it passed.
	Run(name string, f func(tb)) bool
}

// Run checks the allocators f builds against alloc's contract, one
// subtest per property and machine. Its top-level subtests are, in order:
//
//	kunit               the nine cases of kernel/events/hw_breakpoint_test.c
//	pools               shared (x86) and separate instruction pools
//	invalid             malformed Configs, Requests and Slots
//	release             double and stale releases, index reuse
//	fragmented_index    the one NoIndex corner
//	regression          sequences that once broke a strategy
//	differential        random sequences against the reference model
//	stress              concurrent barrier rounds and free-running ops
//	concurrent_release  one slot released from several goroutines at once
//	all_cpu_index       no NoIndex for a task without one-CPU breakpoints
//	allocs              refusals and stale releases allocate nothing
func Run(t *testing.T, f Constructor) {
	t.Helper()
	runT(tAdapter{t}, f)
}

// RunOnly is Run restricted to the named top-level subtests.
func RunOnly(t *testing.T, f Constructor, subtests ...string) {
	t.Helper()
	runT(tAdapter{t}, f, subtests...)
}

// tAdapter is a *testing.T seen as a tb.
type tAdapter struct{ *testing.T }

func (a tAdapter) Run(name string, f func(tb)) bool {
	return a.T.Run(name, func(t *testing.T) { f(tAdapter{t}) })
}

// subtest is one of Run's top-level subtests.
type subtest struct {
	name string
	run  func(tb, Constructor)
}

var subtests = []subtest{
	{"kunit", testKUnit},
	{"pools", testPools},
	{"invalid", testInvalid},
	{"release", testRelease},
	{"fragmented_index", testFragmented},
	{"regression", testRegressions},
	{"differential", testDifferential},
	{"stress", testStress},
	{"concurrent_release", testConcurrentRelease},
	{"all_cpu_index", testAllCPUIndex},
	{"allocs", testAllocs},
}

// runT is Run on any tb, restricted to the named top-level subtests if
// any are given; an unknown name is a failure.
func runT(t tb, f Constructor, only ...string) {
	t.Helper()
	for _, name := range only {
		if !slices.ContainsFunc(subtests, func(s subtest) bool { return s.name == name }) {
			t.Errorf("alloctest: no subtest %q", name)
		}
	}
	for _, s := range subtests {
		if len(only) == 0 || slices.Contains(only, s.name) {
			t.Run(s.name, func(t tb) { s.run(t, f) })
		}
	}
}

// machine is one simulated machine the kit runs on, with the number of
// tasks its random sequences use.
type machine struct {
	alloc.Config
	tasks int
}

func (m machine) String() string {
	return fmt.Sprintf("cpus=%d,slots=%d,inst=%d,tasks=%d", m.CPUs, m.Slots, m.InstSlots, m.tasks)
}

// machines run the shared rule tests and the differential test: the
// extremes of every Config field the strategies must handle.
var machines = []machine{
	{alloc.Config{CPUs: 1, Slots: 1}, 3},
	{alloc.X86(2), 4},
	{alloc.Config{CPUs: 2, Slots: 3, InstSlots: 2}, 4},
	{alloc.Config{CPUs: 2, Slots: alloc.MaxSlots}, 3},
	{alloc.Config{CPUs: 2, Slots: alloc.MaxSlots, InstSlots: alloc.MaxSlots}, 3},
	{alloc.Config{CPUs: 5, Slots: 2}, 4},
	{alloc.X86(4), 40},
	{alloc.X86(256), 6},
}

// failure is one failed subtest recorded by check.
type failure struct {
	Test string // subtest path below the kit, e.g. "kunit/cpus=2,slots=4,inst=0,tasks=4/one_cpu"
	Msg  string // what it reported
}

// check runs the kit (or only the named top-level subtests) on f without a
// *testing.T and returns the failures of the innermost failing subtests,
// in order. It is how the kit's own tests prove it fails where it should.
func check(f Constructor, only ...string) []failure {
	r := &recorder{}
	runT(r, f, only...)
	return r.root().fails
}

// recorder is a tb that records instead of failing.
type recorder struct {
	path   string
	parent *recorder
	mu     sync.Mutex
	failed bool
	kids   bool
	msgs   []string
	fails  []failure // collected at the root
}

func (r *recorder) root() *recorder {
	for r.parent != nil {
		r = r.parent
	}
	return r
}

func (r *recorder) Helper() {}

func (r *recorder) Logf(string, ...any) {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Run(name string, f func(tb)) bool {
	p := name
	if r.path != "" {
		p = r.path + "/" + name
	}
	kid := &recorder{path: p, parent: r}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(kid)
	}()
	<-done
	r.mu.Lock()
	r.kids = true
	r.mu.Unlock()
	if kid.Failed() {
		root := r.root()
		if len(kid.msgs) > 0 || !kid.kids {
			root.mu.Lock()
			root.fails = append(root.fails, failure{Test: p, Msg: strings.Join(kid.msgs, "\n")})
			root.mu.Unlock()
		}
		r.mu.Lock()
		r.failed = true
		r.mu.Unlock()
		return false
	}
	return true
}

// catch runs fn and returns a panic in it as an error with the stack of
// the strategy's frames.
func catch(fn func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, strategyFrames(debug.Stack()))
		}
	}()
	fn()
	return nil
}

// strategyFrames cuts a goroutine stack to the frames between the panic
// and the kit's own call into the strategy; the whole stack if it cannot.
func strategyFrames(stack []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stack)), "\n")
	from, to := -1, -1
	for i := 1; i+1 < len(lines); i += 2 { // after the header: function, then file line
		switch {
		case from < 0 && strings.HasPrefix(lines[i], "panic("):
			from = i + 2
		case from >= 0 && strings.HasPrefix(lines[i], "bpbench/alloc/alloctest."):
			to = i
		}
		if to >= 0 {
			break
		}
	}
	if from < 0 || to < from {
		return string(stack)
	}
	return strings.Join(lines[from:to], "\n")
}
