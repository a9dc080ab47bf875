package debian

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// privateApt runs apt-get and apt-cache against one suite with every
// piece of state under a directory of its own. APT_CONFIG points at a
// configuration file written there, read before anything else; it sets
// Dir::Etc::Parts to an empty directory, so the system's apt.conf.d is
// not read: its hooks (APT::Update::Post-Invoke and the like: cache
// cleaners, appstream refreshes) would act on the system's state. What
// the system configures for the network (proxies) and for trusting its
// mirror (Check-Valid-Until) is carried over.
type privateApt struct {
	dir string
	env []string
}

// carried are the system apt settings that concern reaching and
// trusting the mirror, copied into the private configuration.
var carried = []string{
	"Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::ftp::Proxy",
	"Acquire::Check-Valid-Until", "Acquire::Check-Date", "Acquire::ForceIPv4", "Acquire::ForceIPv6",
}

func newPrivateApt(ctx context.Context, dir string, mirror Source, suite, arch string) (*privateApt, error) {
	a := &privateApt{dir: dir}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("debian: %w", err)
		}
	}
	signed := mirror.SignedBy
	if strings.Contains(signed, "BEGIN PGP") {
		// An inline key (deb822) goes into a keyring file of our own.
		p := filepath.Join(dir, "etc", "signed-by.asc")
		if err := os.WriteFile(p, []byte(strings.TrimSpace(signed)+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("debian: %w", err)
		}
		signed = p
	}
	opts := "arch=" + arch
	if signed != "" {
		opts += " signed-by=" + signed
	}
	list := fmt.Sprintf("deb [%s] %s %s main\n", opts, mirror.URI, suite)
	if err := os.WriteFile(filepath.Join(dir, "etc", "sources.list"), []byte(list), 0o644); err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	var conf strings.Builder
	q := func(k, v string) { fmt.Fprintf(&conf, "%s %q;\n", k, v) }
	q("Dir::Etc::Parts", filepath.Join(dir, "etc", "apt.conf.d"))
	q("Dir::Etc::Main", "/dev/null")
	q("Dir::Etc::SourceList", filepath.Join(dir, "etc", "sources.list"))
	q("Dir::Etc::SourceParts", filepath.Join(dir, "etc", "sources.list.d"))
	q("Dir::Etc::Preferences", "/dev/null")
	q("Dir::Etc::PreferencesParts", filepath.Join(dir, "etc", "preferences.d"))
	q("Dir::State::Lists", filepath.Join(dir, "lists"))
	q("Dir::State::status", "/dev/null")
	q("Dir::Cache", filepath.Join(dir, "cache"))
	q("APT::Architecture", arch)
	q("APT::Architectures", arch)
	q("Acquire::Languages", "none")
	// The system's settings, read with its own configuration.
	for _, k := range carried {
		if v := systemConfig(ctx, k); v != "" {
			q(k, v)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "apt.conf"), []byte(conf.String()), 0o644); err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	a.env = append(os.Environ(), "APT_CONFIG="+filepath.Join(dir, "etc", "apt.conf"), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	return a, nil
}

// systemConfig reads one value of the system's apt configuration.
func systemConfig(ctx context.Context, key string) string {
	cmd := exec.CommandContext(ctx, "apt-config", "shell", "V", key)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := startLocked(cmd); err != nil {
		return ""
	}
	if cmd.Wait() != nil {
		return ""
	}
	// Output is V='value' (or nothing when unset).
	s := strings.TrimSpace(out.String())
	s = strings.TrimPrefix(s, "V=")
	return strings.Trim(s, "'")
}

// run runs an apt tool in the private state directory and returns its
// standard output; a failure carries the end of its output.
func (a *privateApt) run(ctx context.Context, tool string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = a.dir
	cmd.Env = a.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := startLocked(cmd); err != nil {
		return "", fmt.Errorf("debian: %s: %w", tool, err)
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("debian: %s %s: %w: %s", tool, strings.Join(args, " "), err, tail(errb.String()+out.String(), 6))
	}
	return out.String(), nil
}

// tail returns the last n lines of s, joined with " | ".
func tail(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}
