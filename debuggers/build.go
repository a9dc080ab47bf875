package debuggers

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The targets' sources; see targets/.
var (
	//go:embed targets/ctarget.c
	cTargetSource []byte
	//go:embed targets/gotarget/main.go
	goTargetSource []byte
)

// DelveVersion is the Delve release sessions use, built from source with
// the Go toolchain on PATH.
const DelveVersion = "v1.27.2"

// delvePackage is what `go install` builds.
const delvePackage = "github.com/go-delve/delve/cmd/dlv"

// CacheDir returns the directory built targets and Delve are kept in:
// bpbench/ under the user's cache directory ($XDG_CACHE_HOME, or
// ~/.cache).
func CacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no cache directory: %w", ErrSkip, err)
	}
	return filepath.Join(d, "bpbench"), nil
}

// Target is a built target program.
type Target struct {
	// Path is the executable; it takes the thread count as its argument.
	Path string
	// Vars are the eight watched variables as the debugger names them.
	Vars []string
	// Release is the variable the debugger sets to 1 to start the
	// writers.
	Release string
}

// CTarget returns the C target (for GDB), built with gcc into the cache
// the first time (keyed by its source and gcc's version).
func CTarget(ctx context.Context) (Target, error) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if cc, err = exec.LookPath("cc"); err != nil {
			return Target{}, fmt.Errorf("%w: no C compiler (gcc or cc) on PATH to build the GDB target", ErrSkip)
		}
	}
	ver, err := output(ctx, exec.CommandContext(ctx, cc, "--version"))
	if err != nil {
		return Target{}, fmt.Errorf("%w: %s --version: %w", ErrSkip, cc, err)
	}
	flags := []string{"-O0", "-g", "-pthread"}
	path, err := cached(ctx, "ctarget", []string{string(cTargetSource), ver, strings.Join(flags, " ")}, func(dir, out string) error {
		src := filepath.Join(dir, "ctarget.c")
		if err := os.WriteFile(src, cTargetSource, 0o644); err != nil {
			return err
		}
		args := append(append([]string{}, flags...), "-o", out, src)
		_, err := output(ctx, exec.CommandContext(ctx, cc, args...))
		return err
	})
	if err != nil {
		return Target{}, err
	}
	return Target{Path: path, Vars: varNames("watch"), Release: "release"}, nil
}

// GoTarget returns the Go target (for Delve), built with the go command
// on PATH into the cache the first time (keyed by its source and the Go
// version).
func GoTarget(ctx context.Context) (Target, error) {
	goCmd, err := goTool()
	if err != nil {
		return Target{}, err
	}
	ver, err := output(ctx, exec.CommandContext(ctx, goCmd, "version"))
	if err != nil {
		return Target{}, fmt.Errorf("%w: go version: %w", ErrSkip, err)
	}
	path, err := cached(ctx, "gotarget", []string{string(goTargetSource), ver}, func(dir, out string) error {
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gotarget\n\ngo 1.21\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), goTargetSource, 0o644); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = goEnv()
		_, err := output(ctx, cmd)
		return err
	})
	if err != nil {
		return Target{}, err
	}
	return Target{Path: path, Vars: varNames("main.Watch"), Release: "main.Release"}, nil
}

func varNames(prefix string) []string {
	v := make([]string, 8)
	for i := range v {
		v[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return v
}

// goTool returns the go command on PATH.
func goTool() (string, error) {
	g, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: no go command on PATH to build the Delve target and Delve", ErrSkip)
	}
	return g, nil
}

// goEnv is the environment of the go commands this package runs: outside
// any workspace, with no flags inherited that assume a module of the
// caller's (-mod=vendor...), and without cgo, which neither build needs.
func goEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
}

// cached returns the cache path of an artefact named name keyed by key,
// building it with build(dir, out) the first time: build writes out inside
// the scratch directory dir, and the result is renamed into place, so a
// concurrent builder or an interrupted build never leaves a partial file.
func cached(ctx context.Context, name string, key []string, build func(dir, out string) error) (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, k := range key {
		fmt.Fprintf(h, "%d:%s", len(k), k)
	}
	path := filepath.Join(root, "targets", name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("debuggers: cache: %w", err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), name+".build-")
	if err != nil {
		return "", fmt.Errorf("debuggers: cache: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, name)
	if err := build(dir, out); err != nil {
		return "", fmt.Errorf("debuggers: building %s: %w", name, err)
	}
	if err := os.Rename(out, path); err != nil {
		return "", fmt.Errorf("debuggers: cache: %w", err)
	}
	return path, nil
}

// DelveBinary returns the pinned Delve (DelveVersion), building it with
// `go install` into CacheDir()/dlv-VERSION/ the first time: about 20-45 s
// here, plus the download of its modules. It wraps ErrSkip when Delve
// cannot be had (no go command, no network to the module proxy, a failed
// build), with the reason.
func DelveBinary(ctx context.Context) (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "dlv-"+DelveVersion)
	path := filepath.Join(dir, "dlv")
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path, nil
	}
	goCmd, err := goTool()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("debuggers: cache: %w", err)
	}
	tmp, err := os.MkdirTemp(root, "dlv-"+DelveVersion+".build-")
	if err != nil {
		return "", fmt.Errorf("debuggers: cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bin")
	cmd := exec.CommandContext(ctx, goCmd, "install", delvePackage+"@"+DelveVersion)
	cmd.Dir = tmp
	cmd.Env = append(goEnv(), "GOBIN="+bin)
	if _, err := output(ctx, cmd); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: cannot build Delve %s with `go install %s@%s`: %w", ErrSkip, DelveVersion, delvePackage, DelveVersion, err)
	}
	// Another process may have put its build in place meanwhile: either
	// is the same version.
	if err := os.Rename(bin, dir); err != nil && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		return "", fmt.Errorf("debuggers: cache: %w", err)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("debuggers: cache: Delve not at %s after the build: %w", path, err)
	}
	return path, nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && strings.Contains(le.Err.Error(), "not empty")
}

// output runs cmd to its end and returns its standard output; an error
// carries the end of its standard error. The child is killed and reaped on
// every path (CommandContext, Wait).
func output(ctx context.Context, cmd *exec.Cmd) (string, error) {
	var stdout strings.Builder
	stderr := &limitedBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	c, err := startChild(cmd)
	if err != nil {
		return "", err
	}
	select {
	case <-c.waited:
	case <-ctx.Done():
		c.kill()
	}
	<-c.waited
	if c.err != nil {
		return stdout.String(), fmt.Errorf("%w (stderr: %s)", c.err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// toolVersion returns the first line of `tool --version`, or "" when it
// cannot be run.
func toolVersion(ctx context.Context, tool string, args ...string) string {
	if len(args) == 0 {
		args = []string{"--version"}
	}
	out, err := output(ctx, exec.CommandContext(ctx, tool, args...))
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(line)
}

// Needs says what debugger's sessions need that this machine lacks (nil
// when nothing), without building anything: GDB needs gdb, strace and gcc
// (for its C target); Delve needs strace and the go command (it is built
// from the module proxy into the cache on first use, and so is its Go
// target). The error wraps ErrSkip.
func Needs(debugger string) error {
	tools := map[string][]string{GDB: {"gdb", "strace", "gcc"}, Delve: {"strace", "go"}}[debugger]
	if debugger == RR {
		return RRUsable(context.Background())
	}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s sessions need %s, not found", ErrSkip, debugger, strings.Join(missing, ", "))
	}
	return nil
}
