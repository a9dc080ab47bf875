package debuggers

import (
	"strconv"
	"strings"
)

// Action names, in the order a session runs them once per repetition.
const (
	// ActionSet sets one write watchpoint and continues to its first hit.
	ActionSet = "set"
	// ActionHit continues to the next hit with nothing changed: the
	// baseline every other action's continue is part of.
	ActionHit = "hit"
	// ActionMove deletes the watchpoint, sets one on another variable and
	// continues to a hit: how both debuggers change a watchpoint.
	ActionMove = "move"
	// ActionFill sets watchpoints until four are held (three new ones
	// beside the moved one) and continues to a hit.
	ActionFill = "fill"
	// ActionClear deletes every watchpoint, continues and interrupts the
	// target once it runs, so that a lazy debugger applies the deletion.
	ActionClear = "clear"
)

// Actions lists the actions in session order.
var Actions = []string{ActionSet, ActionHit, ActionMove, ActionFill, ActionClear}

// Debugger names, as they appear in result names (debugger=...).
const (
	GDB   = "gdb"
	Delve = "dlv"
	RR    = "rr"
)

// Metric units of a Debugger result. Counts are per action, medians over
// the session's measured repetitions; usecs/op comes from a session run
// without strace.
const (
	// MetricPtrace counts every ptrace request the debugger made.
	MetricPtrace = "ptrace/op"
	// MetricDRWrites counts PTRACE_POKEUSER requests on a debug register
	// (DR0-DR3, DR6, DR7), refused ones included.
	MetricDRWrites = "dr-writes/op"
	// MetricDRReads counts PTRACE_PEEKUSER requests on a debug register.
	MetricDRReads = "dr-reads/op"
	// MetricDR7Writes counts the DR7 writes among MetricDRWrites.
	MetricDR7Writes = "dr7-writes/op"
	// MetricDR6Writes counts the DR6 (status) writes among MetricDRWrites.
	MetricDR6Writes = "dr6-writes/op"
	// MetricRedundant counts debug-register writes of the value the
	// register already held.
	MetricRedundant = "redundant-writes/op"
	// MetricReserves counts slots the writes reserved (inferred: the
	// kernel registered a breakpoint for a slot that had none).
	MetricReserves = "reserves/op"
	// MetricFirstReserves is MetricReserves the first time the action ran,
	// on the fresh target (the warm-up repetition): where the slots are
	// taken, since no debugger gives one back.
	MetricFirstReserves = "first-reserves"
	// MetricModifies counts modify_user_hw_breakpoint calls the writes
	// caused on held slots (inferred), the no-op ones included.
	MetricModifies = "modifies/op"
	// MetricDisables counts breakpoints the writes disabled while they
	// keep their slot (inferred).
	MetricDisables = "disables/op"
	// MetricRefused counts debug-register writes the kernel refused.
	MetricRefused = "refused/op"
	// MetricChanges counts thread register states the debugger changed:
	// runs of writes to one thread that left DR0-DR3 or DR7 different.
	MetricChanges = "changes/op"
	// MetricUsecs is the wall time per action in microseconds, from the
	// untraced session.
	MetricUsecs = "usecs/op"
	// MetricCmdUsecs is the wall time of an action's commands alone, up
	// to the reply of the last one and before its continue.
	MetricCmdUsecs = "cmd-usecs/op"
)

// PtraceMetric is the unit counting ptrace requests of one kind, e.g.
// "ptrace-pokeuser/op".
func PtraceMetric(req string) string { return "ptrace-" + req + "/op" }

// PolicyMetric is the unit of the writes the named write policy would make
// for the debugger's register states, e.g. "policy-changed-writes/op".
func PolicyMetric(policy string) string { return "policy-" + policy + "-writes/op" }

// PolicyOfMetric returns the policy name of a PolicyMetric unit.
func PolicyOfMetric(unit string) (string, bool) {
	s, ok := strings.CutPrefix(unit, "policy-")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, "-writes/op")
}

// CaseName is the result name of one debugger, thread count and action.
func CaseName(debugger string, threads int, action string) string {
	return "Debugger/debugger=" + debugger + "/threads=" + strconv.Itoa(threads) + "/action=" + action
}
