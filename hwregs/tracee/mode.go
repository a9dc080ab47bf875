package tracee

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"bpbench/internal/child"
)

// Mode is the tracee's child mode (see Env).
const Mode = "tracee"

// ThreadsEnvVar is the number of worker threads the tracee starts.
const ThreadsEnvVar = "BPBENCH_TRACEE"

// SpareEnvVar, when set, is the number of extra workers the tracee can
// start later on the tracer's request (Spawn): their memory is reserved at
// start-up so that the addresses in Hello stay valid, and GOMAXPROCS leaves
// room for them, since changing it later would stop the world while the
// tracer holds workers stopped.
const SpareEnvVar = "BPBENCH_TRACEE_SPARE"

// Env returns the environment additions that start a tracee with the given
// number of worker threads: the child mode and its parameters. GOMAXPROCS
// leaves room for every worker to run at once, as threads of a real
// multi-threaded target would.
func Env(threads int) []string { return EnvSpare(threads, 0) }

// EnvSpare is Env for a tracee that can start spare more workers later.
func EnvSpare(threads, spare int) []string {
	return []string{
		child.Env(Mode),
		ThreadsEnvVar + "=" + strconv.Itoa(threads),
		SpareEnvVar + "=" + strconv.Itoa(spare),
		"GODEBUG=asyncpreemptoff=1",
		"GOGC=off",
		"GOMAXPROCS=" + strconv.Itoa(threads+spare+2),
	}
}

func init() { child.Add(Mode, runMode) }

// runMode is the tracee's child mode: it reads its parameters from the
// environment, serves the tracer and returns the exit status.
func runMode() int {
	// The workers must not run on the thread-group leader; child.Main,
	// called first thing in main, keeps this goroutine on it.
	if unix.Gettid() != os.Getpid() {
		fmt.Fprintln(os.Stderr, "tracee: not on the main thread (child.Main must be called first thing in main or TestMain)")
		return 2
	}
	v := os.Getenv(ThreadsEnvVar)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxThreads {
		fmt.Fprintf(os.Stderr, "tracee: %s=%q: want a thread count in [1,%d]\n", ThreadsEnvVar, v, MaxThreads)
		return 2
	}
	spare := 0
	if v, ok := os.LookupEnv(SpareEnvVar); ok {
		spare, err = strconv.Atoi(v)
		if err != nil || spare < 0 || spare > MaxThreads-n {
			fmt.Fprintf(os.Stderr, "tracee: %s=%q: want a spare thread count in [0,%d]\n", SpareEnvVar, v, MaxThreads-n)
			return 2
		}
	}
	if err := serve(n, spare); err != nil {
		fmt.Fprintln(os.Stderr, "tracee:", err)
		return 1
	}
	return 0
}
