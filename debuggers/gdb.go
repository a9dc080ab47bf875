package debuggers

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// gdbDriver drives GDB through its machine interface (MI 3) on a pipe, in
// all-stop mode with asynchronous execution, so that a running target can
// be interrupted. It marks actions with -environment-cd into a path under
// /proc that cannot exist: GDB calls chdir(2) with it, which strace
// records in order with GDB's ptrace calls (its main thread makes both).
type gdbDriver struct {
	c      *child
	in     io.WriteCloser
	out    *lineReader
	token  int
	target int
	// stops holds *stopped records read while waiting for a command's
	// result.
	stops []string
}

// gdbBinary returns the gdb on PATH.
func gdbBinary() (string, error) {
	bin, err := exec.LookPath("gdb")
	if err != nil {
		return "", fmt.Errorf("%w: gdb is not installed (apt-get install gdb)", ErrSkip)
	}
	return bin, nil
}

// startGDB starts GDB, not yet attached to target, with the settings the
// driver needs and then extra.
func startGDB(ctx context.Context, target int, extra []string) (*gdbDriver, error) {
	bin, err := gdbBinary()
	if err != nil {
		return nil, err
	}
	// debuginfod would ask on the terminal and reach for the network.
	cmd := exec.Command(bin, "-q", "-nx", "-iex", "set debuginfod enabled off", "--interpreter=mi3")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("debuggers: gdb: %w", err)
	}
	c, out, err := startReading(cmd, "gdb")
	if err != nil {
		return nil, err
	}
	d := &gdbDriver{c: c, in: in, out: out, target: target}
	for {
		l, err := d.out.next(ctx)
		if err != nil {
			d.close()
			return nil, d.failed("starting", err)
		}
		if strings.HasPrefix(l, "(gdb)") {
			break
		}
	}
	for _, set := range append([]string{"mi-async on", "pagination off", "confirm off", "width 0"}, extra...) {
		if _, err := d.send(ctx, "-gdb-set "+set); err != nil {
			d.close()
			return nil, err
		}
	}
	return d, nil
}

func (d *gdbDriver) name() string { return GDB }
func (d *gdbDriver) pid() int     { return d.c.Pid() }
func (d *gdbDriver) markSyscall() string {
	return "chdir"
}

func (d *gdbDriver) failed(what string, err error) error {
	return fmt.Errorf("%w: gdb %s: %w (stderr: %s)", ErrSession, what, err, d.c.stderrText())
}

// send runs one MI command and returns its result record without the
// token ("done,...", "running"); an ^error record is an error.
func (d *gdbDriver) send(ctx context.Context, cmd string) (string, error) {
	d.token++
	tok := strconv.Itoa(d.token)
	if _, err := io.WriteString(d.in, tok+cmd+"\n"); err != nil {
		return "", d.failed(cmd, err)
	}
	for {
		l, err := d.out.next(ctx)
		if err != nil {
			return "", d.failed(cmd, err)
		}
		if strings.HasPrefix(l, "*stopped") {
			d.stops = append(d.stops, l)
			continue
		}
		rest, ok := strings.CutPrefix(l, tok+"^")
		if !ok {
			continue
		}
		if msg, isErr := strings.CutPrefix(rest, "error,"); isErr {
			return rest, fmt.Errorf("%w: gdb %s: %s", ErrSession, cmd, msg)
		}
		return rest, nil
	}
}

// waitStopped returns the next *stopped record.
func (d *gdbDriver) waitStopped(ctx context.Context) (string, error) {
	if len(d.stops) > 0 {
		l := d.stops[0]
		d.stops = d.stops[1:]
		return l, nil
	}
	for {
		l, err := d.out.next(ctx)
		if err != nil {
			return "", d.failed("waiting for the target to stop", err)
		}
		if strings.HasPrefix(l, "*stopped") {
			return l, nil
		}
	}
}

func (d *gdbDriver) attach(ctx context.Context) error {
	if _, err := d.send(ctx, "-target-attach "+strconv.Itoa(d.target)); err != nil {
		return err
	}
	_, err := d.waitStopped(ctx)
	return err
}

func (d *gdbDriver) release(ctx context.Context, variable string) error {
	_, err := d.send(ctx, "-data-evaluate-expression "+variable+"=1")
	return err
}

// mark makes GDB chdir into a path that cannot exist; the command fails
// with ENOENT, which is expected.
func (d *gdbDriver) mark(ctx context.Context, m Mark) error {
	_, err := d.send(ctx, "-environment-cd /proc/"+markPath(m))
	if err != nil && !strings.Contains(err.Error(), "No such file") {
		return err
	}
	return nil
}

var (
	gdbNumberRe = regexp.MustCompile(`number="(\d+)"`)
	gdbTypeRe   = regexp.MustCompile(`bkpt=\{number="\d+",type="([^"]*)"`)
	gdbReasonRe = regexp.MustCompile(`reason="([^"]*)"`)
	gdbExpRe    = regexp.MustCompile(`wpt=\{number="\d+",exp="([^"]*)"`)
)

// watch sets a write watchpoint on variable and checks that GDB made it a
// hardware one (it falls back to single-stepping otherwise).
func (d *gdbDriver) watch(ctx context.Context, variable string) (string, error) {
	res, err := d.send(ctx, "-break-watch "+variable)
	if err != nil {
		return "", err
	}
	m := gdbNumberRe.FindStringSubmatch(res)
	if m == nil {
		return "", fmt.Errorf("%w: gdb -break-watch %s: no watchpoint number in %q", ErrSession, variable, res)
	}
	info, err := d.send(ctx, "-break-info "+m[1])
	if err != nil {
		return "", err
	}
	if t := gdbTypeRe.FindStringSubmatch(info); t == nil || t[1] != "hw watchpoint" {
		return "", fmt.Errorf("%w: gdb set watchpoint %s on %s as %q, not a hardware watchpoint", ErrSession, m[1], variable, info)
	}
	return m[1], nil
}

func (d *gdbDriver) del(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := d.send(ctx, "-break-delete "+strings.Join(ids, " "))
	return err
}

// cont continues to the next stop, which must be a watchpoint's, and
// returns the watched expression.
func (d *gdbDriver) cont(ctx context.Context) (string, error) {
	if _, err := d.send(ctx, "-exec-continue"); err != nil {
		return "", err
	}
	st, err := d.waitStopped(ctx)
	if err != nil {
		return "", err
	}
	if r := gdbReasonRe.FindStringSubmatch(st); r == nil || r[1] != "watchpoint-trigger" {
		return "", fmt.Errorf("%w: gdb stopped for another reason than a watchpoint: %.300s", ErrSession, st)
	}
	if m := gdbExpRe.FindStringSubmatch(st); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("%w: gdb reported a watchpoint trigger without its expression: %.300s", ErrSession, st)
}

// contInterrupt continues, waits until running says the target runs, and
// interrupts it.
func (d *gdbDriver) contInterrupt(ctx context.Context, running func(context.Context) error) error {
	if _, err := d.send(ctx, "-exec-continue"); err != nil {
		return err
	}
	if err := running(ctx); err != nil {
		return err
	}
	if _, err := d.send(ctx, "-exec-interrupt"); err != nil {
		return err
	}
	_, err := d.waitStopped(ctx)
	return err
}

func (d *gdbDriver) version(ctx context.Context) string {
	bin, err := gdbBinary()
	if err != nil {
		return ""
	}
	return toolVersion(ctx, bin)
}

func (d *gdbDriver) close() {
	d.out.close()
	d.in.Close()
	d.c.kill()
}
