// Package debuggers measures what real debuggers (GDB, Delve) make the
// kernel do when they manage hardware watchpoints, and what the project's
// register-writing policies (hwregs.WritePolicy) would have made it do
// instead.
//
// A session attaches a debugger to a target the package builds (a C program
// for GDB, a Go program for Delve) with T threads that keep writing eight
// global variables, and drives it through named actions (Actions): set a
// write watchpoint, continue to a hit, move it to another variable, fill
// the four registers, clear them. Every change action ends with the
// continue that applies it, because GDB programs the registers lazily, when
// it resumes the threads: only then does a change reach the kernel.
//
// What is counted and what is inferred:
//
//   - Counted: the debugger's own ptrace(2) requests, as strace records
//     them (ParseStrace), split into the actions by marker system calls the
//     debugger makes when it receives each action's first command (GDB: a
//     chdir into a path that cannot exist; Delve: the read of an RPC
//     request). Debug-register writes and reads are the PTRACE_POKEUSER
//     and PTRACE_PEEKUSER requests at offsetof(struct user, u_debugreg) +
//     8*i on amd64. Memory the debuggers read through /proc/PID/mem or
//     process_vm_readv is not a ptrace request and is not counted.
//   - Inferred: what the kernel made of each write (Kernel): a slot
//     reserved, a breakpoint modified in place, disabled but still held.
//     It follows arch/x86/kernel/ptrace.c as the conform package's facts
//     established on this kernel: writing DR0-DR3 reserves a slot even
//     while DR7 leaves it disabled, DR7 = 0 disables without releasing, and
//     a write to a held slot modifies it in place. No write releases a
//     slot: x86 frees a ptrace breakpoint only when its thread exits or
//     execs.
//   - Replayed: the per-thread sequence of register states the debugger
//     wrote is run through every registered write policy (Replay), which
//     says how many writes each policy would have made for the same
//     states.
//
// Wall time per action comes from a second session run without strace, so
// that tracing does not inflate it.
package debuggers
