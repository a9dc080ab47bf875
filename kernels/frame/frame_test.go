package frame

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func encode(t *testing.T, frames ...Frame) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, f := range frames {
		if err := Write(&b, f.Name, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// TestRoundTrip sends frames through what a tty and a console do to them
// (CR before every LF, kernel lines between and before frames) and gets
// every payload back byte for byte.
func TestRoundTrip(t *testing.T) {
	in := []Frame{{"results.json.gz", payload(100_000)}, {"empty", nil}, {"note", []byte("hello\n")}}
	var b bytes.Buffer
	b.WriteString("[    0.000000] Linux version 6.1.0\npartial line without newline")
	b.Write(encode(t, in[0]))
	b.WriteString("[    1.234567] random: crng init done\n")
	b.Write(encode(t, in[1], in[2]))
	crlf := bytes.ReplaceAll(b.Bytes(), []byte("\n"), []byte("\r\n"))
	got, err := Read(bytes.NewReader(crlf))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %d frames, want %d", len(got), len(in))
	}
	for i := range in {
		if got[i].Name != in[i].Name || !bytes.Equal(got[i].Data, in[i].Data) {
			t.Errorf("frame %d: got %s (%d bytes), want %s (%d bytes)", i, got[i].Name, len(got[i].Data), in[i].Name, len(in[i].Data))
		}
	}
	if d, ok := Find(got, "note"); !ok || string(d) != "hello\n" {
		t.Errorf("Find(note) = %q, %v", d, ok)
	}
}

// TestCorruptionDetected changes one payload character (still valid
// base64), drops a payload line, and lies about the length: each is
// ErrCorrupt, never a wrong payload.
func TestCorruptionDetected(t *testing.T) {
	good := encode(t, Frame{"r", payload(5000)})
	lines := strings.Split(string(good), "\n")
	// lines[0] is empty, lines[1] the header, lines[2..] base64.
	flip := append([]string(nil), lines...)
	c := []byte(flip[5])
	if c[10] == 'A' {
		c[10] = 'B'
	} else {
		c[10] = 'A'
	}
	flip[5] = string(c)
	dropped := append(append([]string(nil), lines[:6]...), lines[7:]...)
	badLen := append([]string(nil), lines...)
	badLen[1] = strings.Replace(badLen[1], "len=5000", "len=5001", 1)
	notB64 := append([]string(nil), lines...)
	notB64[3] = "!!!!" + notB64[3][4:]
	for name, ls := range map[string][]string{"flipped char": flip, "dropped line": dropped, "wrong length": badLen, "not base64": notB64} {
		frames, err := Read(strings.NewReader(strings.Join(ls, "\n")))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
		if len(frames) != 0 {
			t.Errorf("%s: returned %d frames from a damaged stream", name, len(frames))
		}
	}
}

// TestTruncationDetected cuts the stream inside the payload and just
// before the end line, and starts a new frame inside an old one: each is
// ErrTruncated, and a complete frame before the cut is still returned.
func TestTruncationDetected(t *testing.T) {
	first := encode(t, Frame{"a", payload(300)})
	second := encode(t, Frame{"b", payload(4000)})
	whole := append(append([]byte(nil), first...), second...)
	endAt := bytes.LastIndex(whole, []byte(endTag))
	cases := map[string][]byte{
		"mid payload":    whole[:len(first)+len(second)/2],
		"before the end": whole[:endAt],
		"restarted":      append(append([]byte(nil), whole[:len(first)+len(second)/2]...), second...),
	}
	for name, b := range cases {
		frames, err := Read(bytes.NewReader(b))
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: err = %v, want ErrTruncated", name, err)
		}
		if len(frames) != 1 || frames[0].Name != "a" {
			t.Errorf("%s: got %d frames before the damage, want frame a", name, len(frames))
		}
	}
}

func TestBadName(t *testing.T) {
	for _, n := range []string{"", "Results", "a b", strings.Repeat("x", 65)} {
		if err := Write(&bytes.Buffer{}, n, nil); err == nil {
			t.Errorf("Write(%q) accepted a bad name", n)
		}
	}
}

// TestConsoleLinesInsideFrame is the one-UART path (arm64's virt board):
// the results share the console with the kernel, so a kernel message may
// land between two payload lines, which the reader skips, or inside one,
// which damages it: the reader says so rather than return wrong bytes.
func TestConsoleLinesInsideFrame(t *testing.T) {
	data := payload(5000)
	enc := string(encode(t, Frame{"results.json.gz", data}))
	lines := strings.Split(enc, "\n")
	// Between payload lines 3 and 4 (header at 1, after the leading
	// newline), as the console carries it: CR LF.
	between := strings.Join(append(append(append([]string{}, lines[:5]...), "[   12.345678] random: crng init done"), lines[5:]...), "\n")
	between = strings.ReplaceAll(between, "\n", "\r\n")
	got, err := Read(strings.NewReader(between))
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, data) {
		t.Fatalf("a kernel line between payload lines: %v, %d frames", err, len(got))
	}
	// Inside payload line 4: the line is not base64 any more.
	spliced := append([]string{}, lines...)
	spliced[5] = spliced[5][:30] + "[   12.3] hvc: x" + spliced[5][30:]
	_, err = Read(strings.NewReader(strings.Join(spliced, "\n")))
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("a kernel message spliced into a payload line: err = %v, want ErrCorrupt", err)
	}
}
