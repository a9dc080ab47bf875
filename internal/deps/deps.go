// Package deps pins the project's chosen dependencies until code imports them; delete once all are used.
package deps
import (
 _ "go.uber.org/atomic"
 _ "github.com/loov/hrtime"
 _ "golang.org/x/sync/errgroup"
 _ "gonum.org/v1/plot"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/perf/benchfmt"
 _ "golang.org/x/perf/benchmath"
 _ "github.com/schollz/progressbar/v3"
)

