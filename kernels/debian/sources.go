package debian

import (
	"bpbench/internal/support"
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoMirror is returned when the system's apt sources name no Debian
// archive that a kernel suite could be fetched from.
var ErrNoMirror = support.New("no Debian mirror in the system's apt sources")

// Source is one apt source entry, from either format.
type Source struct {
	Types      []string
	URI        string
	Suites     []string
	Components []string
	// SignedBy is a keyring path, or an inline ASCII-armoured key block
	// (deb822 allows both).
	SignedBy string
	// From is the file it was read from.
	From string
}

// ReadSources reads the apt sources under etc (normally /etc/apt):
// sources.list and sources.list.d/*.list in the one-line format, and
// sources.list.d/*.sources in the deb822 format, as apt itself does
// (other file names, such as *.disabled, are ignored; so are entries
// with Enabled: no).
func ReadSources(etc string) ([]Source, error) {
	var out []Source
	files := []string{filepath.Join(etc, "sources.list")}
	lists, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.list"))
	deb822, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.sources"))
	sort.Strings(lists)
	sort.Strings(deb822)
	files = append(files, lists...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("debian: %w", err)
		}
		ss, err := parseOneLine(string(b), f)
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
	}
	for _, f := range deb822 {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("debian: %w", err)
		}
		out = append(out, parseDeb822(string(b), f)...)
	}
	return out, nil
}

// parseOneLine parses "deb [opt=val ...] URI SUITE COMPONENT..." lines.
func parseOneLine(text, from string) ([]Source, error) {
	var out []Source
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		s := Source{From: from}
		typ, rest, _ := strings.Cut(line, " ")
		s.Types = []string{typ}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("debian: %s:%d: unterminated option list", from, n+1)
			}
			for _, opt := range strings.Fields(rest[1:end]) {
				if k, v, ok := strings.Cut(opt, "="); ok && strings.EqualFold(k, "signed-by") {
					s.SignedBy = v
				}
			}
			rest = strings.TrimSpace(rest[end+1:])
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		s.URI, s.Suites, s.Components = f[0], []string{f[1]}, f[2:]
		out = append(out, s)
	}
	return out, nil
}

// parseDeb822 parses stanzas of "Field: value" lines separated by blank
// lines; continuation lines start with white space (an inline
// Signed-By key block uses them, with "." for its empty lines).
func parseDeb822(text, from string) []Source {
	var out []Source
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) == 0 {
			return
		}
		if !strings.EqualFold(fields["enabled"], "no") {
			out = append(out, Source{
				Types:      strings.Fields(fields["types"]),
				URI:        firstField(fields["uris"]),
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
				SignedBy:   strings.TrimSpace(fields["signed-by"]),
				From:       from,
			})
		}
		fields = map[string]string{}
		last = ""
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				v := strings.TrimSpace(line)
				if v == "." {
					v = ""
				}
				fields[last] += "\n" + v
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// Mirror picks the source to fetch another suite from: the first binary
// ("deb") source with the main component whose suites include a plain
// release (a code name such as bookworm, not bookworm-security or
// bookworm-updates): a Debian archive, which serves every suite.
func Mirror(sources []Source) (Source, error) {
	for _, s := range sources {
		if !contains(s.Types, "deb") || !contains(s.Components, "main") || s.URI == "" {
			continue
		}
		for _, suite := range s.Suites {
			if !strings.ContainsAny(suite, "-/") {
				return s, nil
			}
		}
	}
	var seen []string
	for _, s := range sources {
		seen = append(seen, s.From+": "+s.URI+" "+strings.Join(s.Suites, ","))
	}
	return Source{}, fmt.Errorf("%w (want a deb source with a release suite and main; have %d: %s)", ErrNoMirror, len(sources), strings.Join(seen, "; "))
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// scanLines is bufio.Scanner over s, for callers that parse output.
func scanLines(s string) *bufio.Scanner { return bufio.NewScanner(strings.NewReader(s)) }
