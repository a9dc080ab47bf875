// Package frame carries named byte payloads over a serial line and proves
// on arrival that each came back whole: a frame is a header line with the
// payload's length and SHA-256, the payload in base64 lines, and an end
// line. Text framing survives what a tty does to bytes (CR inserted before
// LF, a console's own lines around it), so the same frames can travel on a
// dedicated port (ttyS1 on x86) or, where a board has only one UART, on
// the console between the kernel's messages.
package frame

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Errors a reader returns, wrapped with the frame's name and what was
// wrong.
var (
	// ErrCorrupt is a frame whose payload does not match its header:
	// wrong length, wrong SHA-256, or a line that is not base64.
	ErrCorrupt = errors.New("frame corrupt")
	// ErrTruncated is a frame whose end never arrived.
	ErrTruncated = errors.New("frame truncated")
)

const (
	beginTag = "BPBENCH-FRAME"
	endTag   = "BPBENCH-FRAME-END"
	// lineLen is the base64 characters per line: short lines keep a
	// lost byte's damage to one line and stay under any tty line limit.
	lineLen = 76
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	headerRE = regexp.MustCompile(`^` + beginTag + ` name=([^ ]+) len=([0-9]+) sha256=([0-9a-f]{64})$`)
)

// Frame is one payload and its name.
type Frame struct {
	Name string
	Data []byte
}

// Write writes data as one frame named name. The name is lower-case
// letters, digits, '.', '_' and '-', at most 64 characters.
func Write(w io.Writer, name string, data []byte) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("frame: bad name %q (want %s)", name, nameRE)
	}
	sum := sha256.Sum256(data)
	var b bytes.Buffer
	// The leading newline ends whatever partial line the port carried
	// before, so the header always starts a line.
	fmt.Fprintf(&b, "\n%s name=%s len=%d sha256=%s\n", beginTag, name, len(data), hex.EncodeToString(sum[:]))
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(lineLen, len(enc))
		b.WriteString(enc[:n])
		b.WriteByte('\n')
		enc = enc[n:]
	}
	b.WriteString(endTag + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// Read returns every frame in r, in order, each verified against its
// header. Lines outside frames are ignored (a console's own output); a
// frame that is damaged or cut off is an error wrapping ErrCorrupt or
// ErrTruncated, returned with the frames read before it.
func Read(r io.Reader) ([]Frame, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var (
		frames []Frame
		in     bool
		name   string
		want   int
		sum    string
		body   strings.Builder
		lineNo int
	)
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if !in {
			// A header may follow other text on the same line when the
			// port carried a partial line: look for the tag anywhere.
			i := strings.Index(line, beginTag+" ")
			if i < 0 {
				continue
			}
			m := headerRE.FindStringSubmatch(line[i:])
			if m == nil {
				return frames, fmt.Errorf("%w: line %d: malformed header %q", ErrCorrupt, lineNo, line[i:])
			}
			n, err := strconv.Atoi(m[2])
			if err != nil {
				return frames, fmt.Errorf("%w: line %d: length %q: %v", ErrCorrupt, lineNo, m[2], err)
			}
			in, name, want, sum = true, m[1], n, m[3]
			body.Reset()
			continue
		}
		if line == endTag {
			data, err := base64.StdEncoding.DecodeString(body.String())
			if err != nil {
				return frames, fmt.Errorf("%w: %s: payload is not base64: %v", ErrCorrupt, name, err)
			}
			if len(data) != want {
				return frames, fmt.Errorf("%w: %s: %d bytes, header says %d", ErrCorrupt, name, len(data), want)
			}
			got := sha256.Sum256(data)
			if hex.EncodeToString(got[:]) != sum {
				return frames, fmt.Errorf("%w: %s: SHA-256 %x, header says %s", ErrCorrupt, name, got, sum)
			}
			frames = append(frames, Frame{Name: name, Data: data})
			in = false
			continue
		}
		if strings.HasPrefix(line, beginTag+" ") {
			return frames, fmt.Errorf("%w: %s: a new frame began at line %d before its end", ErrTruncated, name, lineNo)
		}
		if !isBase64(line) {
			// A whole line of the console's own (a kernel message
			// printed between two payload lines) is not base64; one
			// spliced into a payload line leaves that line short, which
			// the length and SHA-256 catch.
			continue
		}
		body.WriteString(line)
	}
	if err := sc.Err(); err != nil {
		return frames, fmt.Errorf("frame: reading: %w", err)
	}
	if in {
		return frames, fmt.Errorf("%w: %s: %d of %d bytes' worth of base64 before the stream ended", ErrTruncated, name, base64.StdEncoding.DecodedLen(body.Len()), want)
	}
	return frames, nil
}

// isBase64 reports whether line holds only characters of the standard
// base64 alphabet.
func isBase64(line string) bool {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// Find returns the data of the frame named name, or false.
func Find(frames []Frame, name string) ([]byte, bool) {
	for _, f := range frames {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}
