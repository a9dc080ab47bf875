package bench

// Metric units: the keys of Result.Metrics (and Batches) that the report,
// the plots and compare read. A unit says per what ("/op", "/s",
// "/switch"); "-ns/pNN" is a percentile of a duration.
const (
	UnitNsPerOp = "ns/op"

	// Slot losses in the race experiments.
	MetricSteals          = "steals/op"           // slots lost per change
	MetricStealsLo        = "steals-lo/op"        // low end of its Wilson interval
	MetricStealsHi        = "steals-hi/op"        // high end
	MetricStealsPredicted = "steals-predicted/op" // what the window and achieved rate predict
	MetricRateAchieved    = "rate-achieved/s"     // competitor attempts per second, as achieved
	MetricCompAttempts    = "competitor-attempts/s"
	MetricCompWins        = "competitor-wins/op"
	MetricChanges         = "changes"
	MetricMoved           = "moved/op"
	MetricWindowP50       = "window-ns/p50" // release to successful reserve
	MetricWindowP99       = "window-ns/p99"
	MetricUnarmedP50      = "unarmed-ns/p50" // breakpoint not armed
	MetricUnarmedP99      = "unarmed-ns/p99"
	MetricSpurious        = "spurious-refusals"

	// Latency percentiles net of the sampler, and the sampler itself.
	MetricP50          = "p50-ns"
	MetricP50OverRef   = "p50/ref" // kernel-tasks: a sub-sample's p50 over its reference's
	MetricP99          = "p99-ns"
	MetricSamplerNs    = "sampler-ns"
	MetricSamplerShare = "sampler-share"

	// Update and its raw-syscall floor.
	MetricXFloor    = "x-floor"
	MetricXFloorP50 = "x-floor-p50"
	MetricFloorNs   = "floor-ns/op"

	// Throughput (scaling) and register writes.
	MetricOpsPerSec = "ops/s"
	MetricWrites    = "writes/op"

	// Real-kernel timings in microseconds per operation, and their ratios.
	MetricUsecs        = "usecs/op"
	MetricB0Usecs      = "b0-usecs/op"
	MetricPerfUsecs    = "perf-usecs/op"
	MetricPerfB0Usecs  = "perf-b0-usecs/op"
	MetricGoUsecs      = "go-usecs/op"
	MetricSlowdown     = "slowdown"
	MetricPerfSlowdown = "perf-slowdown"
	MetricGoPerPerf    = "go/perf"
	// MetricTaskNs is a model Tasks case's task reservation cost, which
	// the cross-kernel verdicts set beside kernel-tasks.
	MetricTaskNs = "task-ns/op"

	// Context switches per thread created by a kernel thread case, of the
	// Go twin's workload and of perf bench's process: voluntary (a thread
	// blocked, and another had to wake it) and involuntary (preempted).
	MetricCswPerThread       = "csw/thread"
	MetricIvcswPerThread     = "ivcsw/thread"
	MetricPerfCswPerThread   = "perf-csw/thread"
	MetricPerfIvcswPerThread = "perf-ivcsw/thread"

	// The switch experiment's perf bench anchor: `perf bench sched pipe`
	// with -T (two threads of one process) beside its default (two
	// processes), and the Go ping-pong's round trip over each.
	MetricThreadsUsecs          = "threads-usecs/op"
	MetricGoPerPerfBench        = "go/perfbench"
	MetricGoPerPerfBenchThreads = "go/perfbench-T"
	MetricProcessesPerThreads   = "processes/threads"

	// Context switches (model).
	MetricWritesPerSwitch     = "writes/switch"
	MetricExceptionsPerSwitch = "exceptions/switch"
	MetricLost                = "lost/op"
	MetricMisdelivered        = "misdelivered/op"

	// Multi-threaded apply and the blind window.
	MetricNsPerChangeThread     = "ns/change-thread"
	MetricWritesPerChangeThread = "writes/change-thread"
	MetricWritesPerCycle        = "writes/cycle"
	MetricBlindP50              = "blind-ns/p50"
	MetricBlindP99              = "blind-ns/p99"
	MetricMissed                = "missed/op"
	MetricTraps                 = "traps/op"
)

// Parameter keys: the key=value elements of case names, and the keys of
// Result.Params that readers select cases by.
const (
	ParamBackend     = "backend"
	ParamStrategy    = "strategy"
	ParamOp          = "op"
	ParamMode        = "mode"
	ParamPlace       = "place"
	ParamRate        = "rate"
	ParamCompetitors = "competitors"
	ParamMix         = "mix"
	ParamGoroutines  = "goroutines"
	ParamSched       = "sched"
	ParamCPUs        = "cpus"
	ParamTasks       = "tasks"
	ParamThreads     = "threads"
	ParamPolicy      = "policy"
	ParamBreakpoints = "breakpoints"
	ParamTarget      = "target"      // kernel-tasks: what the measured breakpoint binds to
	ParamHeld        = "held"        // kernel-tasks: task breakpoints held by other threads
	ParamParallelism = "parallelism" // perf bench breakpoint thread -p
	ParamRepeat      = "repeat"      // perf bench -r: batches a run
	// ParamFigures says what a case's figures measure (not a selector).
	ParamFigures = "figures"
)
