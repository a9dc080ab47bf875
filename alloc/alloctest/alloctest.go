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
	"strings"
	"sync"
	"testing"

	"bpbench/alloc"
)

// Constructor builds an allocator for a valid Config, as alloc.Register
// takes it.
type Constructor = func(alloc.Config) (alloc.Allocator, error)

// TB is what the kit needs from a test: testing.TB's reporting plus Run.
// Run adapts a *testing.T to it; a test of the kit itself substitutes a
// recorder (see Check).
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	// Fatalf reports a failure and ends the current subtest; it may only be
	// called from the goroutine running it.
	Fatalf(format string, args ...any)
	Failed() bool
	// Run runs f as the subtest name and reports whether it passed.
	Run(name string, f func(TB)) bool
}

// Run checks the allocators f builds against alloc's contract, one
// subtest per property and machine.
func Run(t *testing.T, f Constructor) {
	t.Helper()
	RunT(tAdapter{t}, f)
}

// tAdapter is a *testing.T seen as a TB.
type tAdapter struct{ *testing.T }

func (a tAdapter) Run(name string, f func(TB)) bool {
	return a.T.Run(name, func(t *testing.T) { f(tAdapter{t}) })
}

// RunT is Run on any TB.
func RunT(t TB, f Constructor) {
	t.Helper()
	t.Run("kunit", func(t TB) { testKUnit(t, f) })
	t.Run("pools", func(t TB) { testPools(t, f) })
	t.Run("invalid", func(t TB) { testInvalid(t, f) })
	t.Run("release", func(t TB) { testRelease(t, f) })
	t.Run("fragmented_index", func(t TB) { testFragmented(t, f) })
	t.Run("regression", func(t TB) { testRegressions(t, f) })
	t.Run("differential", func(t TB) { testDifferential(t, f) })
	t.Run("stress", func(t TB) { testStress(t, f) })
	t.Run("concurrent_release", func(t TB) { testConcurrentRelease(t, f) })
	t.Run("all_cpu_index", func(t TB) { testAllCPUIndex(t, f) })
	t.Run("allocs", func(t TB) { testAllocs(t, f) })
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

// Failure is one failed subtest recorded by Check.
type Failure struct {
	Test string // subtest path below the kit, e.g. "kunit/cpus=2,slots=4,inst=0,tasks=4/one_cpu"
	Msg  string // what it reported
}

// Check runs the kit on f without a *testing.T and returns the failures of
// the innermost failing subtests, in order. It is how the kit's own tests
// prove it fails where it should, and how a caller can assert which
// properties a strategy known to be broken still breaks.
func Check(f Constructor) []Failure {
	r := &recorder{}
	RunT(r, f)
	return r.root().fails
}

// recorder is a TB that records instead of failing.
type recorder struct {
	path   string
	parent *recorder
	mu     sync.Mutex
	failed bool
	kids   bool
	msgs   []string
	fails  []Failure // collected at the root
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

func (r *recorder) Run(name string, f func(TB)) bool {
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
			root.fails = append(root.fails, Failure{Test: p, Msg: strings.Join(kid.msgs, "\n")})
			root.mu.Unlock()
		}
		r.mu.Lock()
		r.failed = true
		r.mu.Unlock()
		return false
	}
	return true
}

// catch runs fn and returns a panic in it as an error with its stack.
func catch(fn func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	fn()
	return nil
}
