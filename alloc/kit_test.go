package alloc_test

import (
	"strings"
	"testing"

	"bpbench/alloc"
	"bpbench/alloc/alloctest"
)

// knownBroken lists open bugs the kit finds in a built-in strategy, by the
// subtests they fail. Such a strategy runs under alloctest.Check: any
// other failing subtest fails TestKit, the listed ones are logged, and
// once none of them fails any more TestKit says the entry can go.
var knownBroken = map[string]struct {
	why  string
	hits func(test string) bool
}{
	// Reported to the cas owner: a panic at Slots = 16 (histogram index
	// 16, issue 9) and a generation field so narrow at 16 slots that a
	// stale Release, four reuses later, frees the current holder's slot.
	"cas":        {"issue 9: panics and generation wrap at Slots = 16", casIssue9},
	"cas-percpu": {"issue 9: panics and generation wrap at Slots = 16", casIssue9},
}

func casIssue9(test string) bool {
	return strings.Contains(test, "slots=16") || strings.HasPrefix(test, "regression/issue9")
}

// TestKit runs the conformance kit on every registered strategy and on the
// ptrace/perf Exclusion decorator around mutex: the one place the shared
// rules, the differential test and the stress test live.
func TestKit(t *testing.T) {
	for _, s := range alloc.Strategies() {
		f := func(c alloc.Config) (alloc.Allocator, error) { return alloc.New(s, c) }
		t.Run("strategy="+s, func(t *testing.T) {
			kb, broken := knownBroken[s]
			if !broken {
				alloctest.Run(t, f)
				return
			}
			hit := 0
			for _, fl := range alloctest.Check(f) {
				if !kb.hits(fl.Test) {
					t.Errorf("%s: %s", fl.Test, fl.Msg)
					continue
				}
				hit++
				if hit == 1 {
					t.Logf("known bug (%s): %s: %.600s", kb.why, fl.Test, fl.Msg)
				}
			}
			if hit == 0 {
				t.Logf("%s passes every subtest of its known bug (%s): remove its knownBroken entry", s, kb.why)
			} else {
				t.Logf("%d subtests fail with the known bug (%s)", hit, kb.why)
			}
		})
	}
	t.Run("strategy=exclusion(mutex)", func(t *testing.T) {
		alloctest.Run(t, func(c alloc.Config) (alloc.Allocator, error) {
			inner, err := alloc.New("mutex", c)
			if err != nil {
				return nil, err
			}
			return alloc.NewExclusion(inner), nil
		})
	})
}
