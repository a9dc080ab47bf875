// Package support decides whether an error means that this machine lacks
// what an operation needs (a permission, a kernel or hardware feature, a
// tool) rather than that the operation failed. It is the one decision
// behind every skip: bench's cases turn such errors into skips with the
// error as the reason, and the tests skip on them through
// internal/testenv.SkipIfUnsupported, so a case and its test never
// disagree about what this machine cannot do.
//
// Errors say "missing" by wrapping a sentinel made with New, as
// hwregs.ErrPermission, hwregs.ErrUnsupported, bench.ErrSkip and
// conform.ErrUnavailable do, or by being the errno the kernel returns for
// it.
package support

import (
	"errors"

	"golang.org/x/sys/unix"
)

// ErrMissing matches, through errors.Is, every sentinel made with New.
var ErrMissing = errors.New("missing on this machine")

// New returns a new sentinel error with the given text that also matches
// ErrMissing, so that Missing recognises every error wrapping it. Each
// sentinel is its own: errors.Is tells two of them apart.
func New(text string) error { return &sentinel{text} }

type sentinel struct{ text string }

func (e *sentinel) Error() string { return e.text }

// Is makes every sentinel match ErrMissing.
func (e *sentinel) Is(target error) bool { return target == ErrMissing }

// Missing reports whether err says this machine lacks a permission, a
// kernel or hardware feature or a tool: err wraps a sentinel made with
// New, or the errno a kernel answers with for them, EPERM or EACCES (not
// permitted: no root, no CAP_SYS_PTRACE or CAP_PERFMON, Yama,
// perf_event_paranoid) or ENOSYS (no such system call). Nil is not
// missing anything.
func Missing(err error) bool {
	return err != nil && (errors.Is(err, ErrMissing) ||
		errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSYS))
}
