package debuggers

import (
	"context"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// dlvDriver drives a headless Delve attached to the target through its
// JSON-RPC API (version 2), as Delve's own client does. It marks actions
// with a ListSources request whose filter is the marker: strace records
// the read(2) of the request, which comes before any ptrace call the
// request causes (the server reads it, then hands it on).
type dlvDriver struct {
	c      *child
	out    *lineReader
	client *rpc.Client
	bin    string
	ids    map[string]int
}

// Delve's API types, the fields this package uses.
type (
	dlvEvalScope struct {
		GoroutineID  int64
		Frame        int
		DeferredCall int
	}
	dlvCreateWatchpointIn struct {
		Scope dlvEvalScope
		Expr  string
		Type  int // api.WatchType: 1 read, 2 write
	}
	dlvBreakpoint struct {
		ID        int    `json:"id"`
		Name      string `json:"name"`
		WatchExpr string
		WatchType int
	}
	dlvClearBreakpointIn struct {
		Id   int
		Name string
	}
	dlvSetIn struct {
		Scope  dlvEvalScope
		Symbol string
		Value  string
	}
	dlvListSourcesIn struct{ Filter string }
	dlvCommand       struct {
		Name string `json:"name"`
	}
	dlvThread struct {
		ID         int            `json:"id"`
		Breakpoint *dlvBreakpoint `json:"breakPoint,omitempty"`
	}
	dlvState struct {
		Running       bool       `json:"Running"`
		CurrentThread *dlvThread `json:"currentThread,omitempty"`
		Exited        bool       `json:"exited"`
		ExitStatus    int        `json:"exitStatus"`
		Err           string     `json:"Err,omitempty"`
	}
	dlvCommandOut struct{ State dlvState }
)

// dlvWatchWrite is api.WatchWrite.
const dlvWatchWrite = 2

var dlvListenRe = regexp.MustCompile(`API server listening at: (\S+)`)

// startDelve starts the pinned Delve attached to target, headless, and
// returns once it listens. Delve attaches at start, so the attach is not
// in the trace; it writes no debug register at attach (checked: strace
// -f of `dlv attach` shows no POKEUSER before the first watchpoint).
func startDelve(ctx context.Context, target int) (*dlvDriver, error) {
	bin, err := DelveBinary(ctx)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "attach", strconv.Itoa(target), "--headless", "--api-version=2",
		"--accept-multiclient", "--listen=127.0.0.1:0")
	c, out, err := startReading(cmd, "dlv")
	if err != nil {
		return nil, err
	}
	d := &dlvDriver{c: c, out: out, bin: bin, ids: map[string]int{}}
	for {
		l, err := d.out.next(ctx)
		if err != nil {
			d.close()
			return nil, d.failed("starting", err)
		}
		if m := dlvListenRe.FindStringSubmatch(l); m != nil {
			var dialer net.Dialer
			conn, err := dialer.DialContext(ctx, "tcp", m[1])
			if err != nil {
				d.close()
				return nil, d.failed("connecting", err)
			}
			d.client = jsonrpc.NewClient(conn)
			break
		}
	}
	// Whatever Delve prints later must not block it on a full pipe.
	d.out.close()
	return d, nil
}

func (d *dlvDriver) name() string        { return Delve }
func (d *dlvDriver) pid() int            { return d.c.Pid() }
func (d *dlvDriver) markSyscall() string { return "read" }

func (d *dlvDriver) failed(what string, err error) error {
	return fmt.Errorf("%w: dlv %s: %w (stderr: %s)", ErrSession, what, err, d.c.stderrText())
}

// call makes one RPC, bounded by ctx.
func (d *dlvDriver) call(ctx context.Context, method string, args, reply any) error {
	call := d.client.Go("RPCServer."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
		if call.Error != nil {
			return d.failed(method, call.Error)
		}
		return nil
	case <-ctx.Done():
		return d.failed(method, ctx.Err())
	}
}

// attach waits until Delve, attached at start, answers with the target
// stopped.
func (d *dlvDriver) attach(ctx context.Context) error {
	var out struct{ State *dlvState }
	if err := d.call(ctx, "State", struct{ NonBlocking bool }{false}, &out); err != nil {
		return err
	}
	if out.State == nil || out.State.Exited {
		return fmt.Errorf("%w: dlv: the target is not there after attach", ErrSession)
	}
	return nil
}

func (d *dlvDriver) release(ctx context.Context, variable string) error {
	return d.call(ctx, "Set", dlvSetIn{Scope: dlvEvalScope{GoroutineID: -1}, Symbol: variable, Value: "1"}, &struct{}{})
}

func (d *dlvDriver) mark(ctx context.Context, m Mark) error {
	var out struct{ Sources []string }
	return d.call(ctx, "ListSources", dlvListSourcesIn{Filter: markPath(m)}, &out)
}

func (d *dlvDriver) watch(ctx context.Context, variable string) (string, error) {
	var bp dlvBreakpoint
	if err := d.call(ctx, "CreateWatchpoint", dlvCreateWatchpointIn{Scope: dlvEvalScope{GoroutineID: -1}, Expr: variable, Type: dlvWatchWrite}, &bp); err != nil {
		return "", err
	}
	if bp.ID == 0 || bp.WatchExpr == "" {
		return "", fmt.Errorf("%w: dlv CreateWatchpoint %s returned no watchpoint (%+v)", ErrSession, variable, bp)
	}
	id := strconv.Itoa(bp.ID)
	d.ids[id] = bp.ID
	return id, nil
}

func (d *dlvDriver) del(ctx context.Context, ids []string) error {
	for _, id := range ids {
		n, ok := d.ids[id]
		if !ok {
			return fmt.Errorf("%w: dlv: no watchpoint %s", ErrSession, id)
		}
		if err := d.call(ctx, "ClearBreakpoint", dlvClearBreakpointIn{Id: n}, &struct{}{}); err != nil {
			return err
		}
		delete(d.ids, id)
	}
	return nil
}

func (d *dlvDriver) cont(ctx context.Context) (string, error) {
	var out dlvCommandOut
	if err := d.call(ctx, "Command", dlvCommand{Name: "continue"}, &out); err != nil {
		return "", err
	}
	st := out.State
	switch {
	case st.Exited:
		return "", fmt.Errorf("%w: dlv: the target exited (status %d)", ErrSession, st.ExitStatus)
	case st.CurrentThread == nil || st.CurrentThread.Breakpoint == nil || st.CurrentThread.Breakpoint.WatchExpr == "":
		return "", fmt.Errorf("%w: dlv stopped for another reason than a watchpoint (%+v)", ErrSession, st)
	}
	return st.CurrentThread.Breakpoint.WatchExpr, nil
}

// contInterrupt continues, waits until running says the target runs, and
// halts it. The continue is in flight while the halt is sent: Delve serves
// requests on one connection concurrently, as its terminal's Ctrl-C does.
func (d *dlvDriver) contInterrupt(ctx context.Context, running func(context.Context) error) error {
	var out dlvCommandOut
	call := d.client.Go("RPCServer.Command", dlvCommand{Name: "continue"}, &out, make(chan *rpc.Call, 1))
	if err := running(ctx); err != nil {
		return err
	}
	var hout dlvCommandOut
	if err := d.call(ctx, "Command", dlvCommand{Name: "halt"}, &hout); err != nil {
		return err
	}
	select {
	case <-call.Done:
		if call.Error != nil {
			return d.failed("continue", call.Error)
		}
		return nil
	case <-ctx.Done():
		return d.failed("continue", ctx.Err())
	}
}

func (d *dlvDriver) version(ctx context.Context) string {
	// `dlv version` prints "Delve Debugger" and then "Version: 1.27.2".
	out, err := output(ctx, exec.CommandContext(ctx, d.bin, "version"))
	if err == nil {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version: "); ok {
				return "Delve " + v
			}
		}
	}
	return "Delve " + DelveVersion
}

func (d *dlvDriver) close() {
	if d.client != nil {
		d.client.Close()
	}
	d.out.close()
	d.c.kill()
}
