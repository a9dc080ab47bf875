package debuggers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// The strace output this package reads is produced with
//
//	strace -o FILE -ttt -qq -e signal=none -s 256 -e raw=ptrace -e trace=ptrace,chdir|read [-f] -p PID
//
// so that ptrace arguments are printed as raw numbers (no decoding that
// changes between strace versions, and no register dumps), and the marker
// system calls carry their path or buffer. With -f every line starts with
// the thread id that made the call.

// ErrTrace is wrapped by errors about strace output that cannot be read.
var ErrTrace = errors.New("unreadable strace output")

// User-area offsets of the debug registers on amd64:
// offsetof(struct user, u_debugreg) + 8*i.
const (
	drBase = 848
	drEnd  = drBase + 8*8
)

// ptrace requests this package names (linux/ptrace.h, amd64).
var requestNames = map[uint64]string{
	0: "traceme", 1: "peektext", 2: "peekdata", 3: "peekuser", 4: "poketext",
	5: "pokedata", 6: "pokeuser", 7: "cont", 8: "kill", 9: "singlestep",
	12: "getregs", 13: "setregs", 14: "getfpregs", 15: "setfpregs",
	16: "attach", 17: "detach", 18: "getfpxregs", 19: "setfpxregs",
	24: "syscall", 30: "arch_prctl", 31: "sysemu", 32: "sysemu_singlestep",
	33:     "singleblock",
	0x4200: "setoptions", 0x4201: "geteventmsg", 0x4202: "getsiginfo",
	0x4203: "setsiginfo", 0x4204: "getregset", 0x4205: "setregset",
	0x4206: "seize", 0x4207: "interrupt", 0x4208: "listen",
	0x4209: "peeksiginfo", 0x420a: "getsigmask", 0x420b: "setsigmask",
	0x420e: "get_syscall_info",
}

const (
	reqPeekUser = 3
	reqPokeUser = 6
)

// RequestName returns the lower-case name of a ptrace request without its
// PTRACE_ prefix ("pokeuser"), or "req-0x..." for one it does not know.
func RequestName(req uint64) string {
	if n, ok := requestNames[req]; ok {
		return n
	}
	return "req-" + strconv.FormatUint(req, 16)
}

// Call is one ptrace request as strace recorded it.
type Call struct {
	// Line is the line of the trace it starts on (1-based).
	Line int
	// Tracer is the debugger thread that made it (0 when strace ran
	// without -f and printed no thread ids).
	Tracer int
	// Req is the request number (PTRACE_*).
	Req uint64
	// Tid is the target thread (ptrace's pid argument).
	Tid int
	// Addr and Data are ptrace's third and fourth arguments.
	Addr, Data uint64
	// Ret is the return value; Errno is set ("ENOSPC") when it failed.
	Ret   int64
	Errno string
}

// DR returns the debug register (0-7) a PEEKUSER or POKEUSER request
// addresses, or -1 for any other request or user-area offset.
func (c Call) DR() int {
	if (c.Req != reqPeekUser && c.Req != reqPokeUser) || c.Addr < drBase || c.Addr >= drEnd || (c.Addr-drBase)%8 != 0 {
		return -1
	}
	return int(c.Addr-drBase) / 8
}

// DRWrite reports whether c writes a debug register.
func (c Call) DRWrite() bool { return c.Req == reqPokeUser && c.DR() >= 0 }

// DRRead reports whether c reads a debug register.
func (c Call) DRRead() bool { return c.Req == reqPeekUser && c.DR() >= 0 }

// OK reports whether the request succeeded.
func (c Call) OK() bool { return c.Errno == "" }

// Mark is a phase boundary the session made the debugger leave in the
// trace: the action of repetition Rep, the Seq-th marker of the session.
type Mark struct {
	Line   int
	Seq    int
	Rep    int
	Action string
}

// markToken starts every marker path or request; markPath renders one.
const markToken = "bpbench-mark/"

func markPath(m Mark) string {
	return markToken + strconv.Itoa(m.Seq) + "/" + strconv.Itoa(m.Rep) + "/" + m.Action
}

var markRe = regexp.MustCompile(`bpbench-mark/(\d+)/(\d+)/([a-z]+)`)

// Event is one entry of a trace: a marker or a ptrace call, in the order
// strace printed them (a call that strace split around another thread's
// output sits where it started).
type Event struct {
	Mark *Mark
	Call *Call
}

// lineRe splits a strace line into its optional thread id, optional
// timestamp and the rest.
var lineRe = regexp.MustCompile(`^(?:\[pid\s+(\d+)\]\s+|(\d+)\s+)?(?:\d+(?:\.\d+)?\s+|\d\d:\d\d:\d\d(?:\.\d+)?\s+)?(.*)$`)

// ptraceRe matches a whole raw ptrace call: four numeric arguments and
// the result.
var ptraceRe = regexp.MustCompile(`^ptrace\(([^,]+), ([^,]+), ([^,]+), ([^)]+)\)\s+=\s+(-?(?:0x[0-9a-f]+|\d+))(?:\s+(E[A-Z0-9]+))?`)

// ParseStrace reads strace output (see the command at the top of this
// file) and returns its markers and ptrace calls in order. A ptrace line it
// cannot read is an error wrapping ErrTrace: a miscounted trace is worse
// than none. Other system calls and strace's own lines are skipped.
func ParseStrace(r io.Reader) ([]Event, error) {
	var (
		events  []Event
		pending = map[int]pendingCall{} // tracer -> unfinished ptrace
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := lineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		tracer := 0
		if s := m[1] + m[2]; s != "" {
			tracer, _ = strconv.Atoi(s)
		}
		rest := m[3]
		if mm := markRe.FindStringSubmatch(rest); mm != nil && isMarkSyscall(rest) {
			seq, _ := strconv.Atoi(mm[1])
			rep, _ := strconv.Atoi(mm[2])
			events = append(events, Event{Mark: &Mark{Line: n, Seq: seq, Rep: rep, Action: mm[3]}})
			continue
		}
		switch {
		case strings.HasPrefix(rest, "ptrace(") && strings.HasSuffix(rest, "<unfinished ...>"):
			if _, dup := pending[tracer]; dup {
				return nil, fmt.Errorf("%w: line %d: thread %d starts a ptrace call before the last one resumed", ErrTrace, n, tracer)
			}
			pending[tracer] = pendingCall{index: len(events), line: n, text: strings.TrimSuffix(rest, "<unfinished ...>")}
			events = append(events, Event{}) // filled when it resumes
		case strings.HasPrefix(rest, "<... ptrace resumed>"):
			p, ok := pending[tracer]
			if !ok {
				return nil, fmt.Errorf("%w: line %d: ptrace resumed on thread %d that started none", ErrTrace, n, tracer)
			}
			delete(pending, tracer)
			c, err := parsePtrace(strings.TrimRight(p.text, " ")+strings.TrimPrefix(rest, "<... ptrace resumed>"), p.line, tracer)
			if err != nil {
				return nil, err
			}
			events[p.index] = Event{Call: &c}
		case strings.HasPrefix(rest, "ptrace("):
			c, err := parsePtrace(rest, n, tracer)
			if err != nil {
				return nil, err
			}
			events = append(events, Event{Call: &c})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrace, err)
	}
	// A call cut off by the end of the trace (the debugger was killed in
	// it) has no result: drop it rather than guess.
	out := events[:0]
	for _, e := range events {
		if e.Mark != nil || e.Call != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

type pendingCall struct {
	index, line int
	text        string
}

// isMarkSyscall reports whether a line holding a marker token is one of
// the marker system calls (chdir, or read of an RPC request, possibly as
// the resumed half of a split line), not some other use of the string.
func isMarkSyscall(rest string) bool {
	return strings.HasPrefix(rest, "chdir(") || strings.HasPrefix(rest, "read(") || strings.HasPrefix(rest, "<... read resumed>")
}

func parsePtrace(s string, line, tracer int) (Call, error) {
	m := ptraceRe.FindStringSubmatch(s)
	if m == nil {
		return Call{}, fmt.Errorf("%w: line %d: cannot read ptrace call %q (was strace run with -e raw=ptrace?)", ErrTrace, line, s)
	}
	var nums [4]uint64
	for i := range nums {
		v, err := parseNum(m[i+1])
		if err != nil {
			return Call{}, fmt.Errorf("%w: line %d: argument %d of %q: %w", ErrTrace, line, i+1, s, err)
		}
		nums[i] = v
	}
	ret, err := strconv.ParseInt(m[5], 0, 64)
	if err != nil {
		// PEEK requests in raw mode return the word read, which may not fit
		// an int64 as printed in hex.
		u, uerr := strconv.ParseUint(m[5], 0, 64)
		if uerr != nil {
			return Call{}, fmt.Errorf("%w: line %d: result of %q: %w", ErrTrace, line, s, err)
		}
		ret = int64(u)
	}
	return Call{Line: line, Tracer: tracer, Req: nums[0], Tid: int(nums[1]), Addr: nums[2], Data: nums[3], Ret: ret, Errno: m[6]}, nil
}

func parseNum(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "NULL" {
		return 0, nil
	}
	return strconv.ParseUint(s, 0, 64)
}
