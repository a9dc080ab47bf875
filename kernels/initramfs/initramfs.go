// Package initramfs builds the root file system a test kernel boots into:
// a newc cpio archive (the format the kernel unpacks, see
// Documentation/driver-api/early-userspace/buffer-format.rst), gzip
// compressed, written with u-root's pkg/cpio. Programs are added with
// their ELF interpreter and every shared library they need, found as the
// dynamic loader would find them, so a dynamically linked tool (perf)
// runs inside the guest as it does on the host.
package initramfs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// ErrExists is returned when a path is added twice with different
// contents.
var ErrExists = errors.New("initramfs: path already in the archive")

// Builder collects the records of one archive. The zero value is not
// ready: use New.
type Builder struct {
	recs  []cpio.Record
	index map[string]int // name -> position in recs
	ino   uint64
	// closers are the host files whose contents are streamed at write
	// time.
	closers []io.Closer
}

// New returns a builder holding what every early userspace needs before
// it can open anything: the directories init mounts over (/proc, /sys,
// /dev, /tmp, /run) and /dev/console, which the kernel opens as init's
// standard streams before init runs (with no console node, init starts
// with no stdin, stdout or stderr).
func New() *Builder {
	b := &Builder{index: map[string]int{}}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root"} {
		b.Dir(d, 0o755)
	}
	b.add(cpio.CharDev("dev/console", 0o600, 5, 1))
	return b
}

// clean turns an absolute or relative path into the archive's form
// ("usr/bin/perf").
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// add appends rec after its parent directories; a second record for the
// same name must be identical in kind (a directory twice is fine).
func (b *Builder) add(rec cpio.Record) error {
	rec.Name = clean(rec.Name)
	if rec.Name == "" {
		return fmt.Errorf("initramfs: empty path")
	}
	if i, ok := b.index[rec.Name]; ok {
		if b.recs[i].Mode&cpio.S_IFMT == cpio.S_IFDIR && rec.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrExists, rec.Name)
	}
	// The kernel creates no missing parents: every directory on the way
	// needs its own record, before the entry.
	if dir := path.Dir(rec.Name); dir != "." {
		if i, ok := b.index[dir]; ok {
			if b.recs[i].Mode&cpio.S_IFMT != cpio.S_IFDIR {
				return fmt.Errorf("initramfs: %s: parent %s is not a directory", rec.Name, dir)
			}
		} else if err := b.add(cpio.Directory(dir, 0o755)); err != nil {
			return err
		}
	}
	b.ino++
	rec.Ino = b.ino
	rec.NLink = 1
	if rec.Mode&cpio.S_IFMT == cpio.S_IFDIR {
		rec.NLink = 2
	}
	b.index[rec.Name] = len(b.recs)
	b.recs = append(b.recs, rec)
	return nil
}

// Dir adds a directory.
func (b *Builder) Dir(name string, perm os.FileMode) error {
	return b.add(cpio.Directory(name, uint64(perm.Perm())))
}

// File adds a regular file with the given contents.
func (b *Builder) File(name string, data []byte, perm os.FileMode) error {
	return b.add(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | uint64(perm.Perm())}))
}

// Symlink adds a symbolic link name -> target.
func (b *Builder) Symlink(name, target string) error {
	return b.add(cpio.Symlink(name, target))
}

// HostFile adds the host file src (symbolic links followed) as name,
// streaming its contents when the archive is written.
func (b *Builder) HostFile(name, src string, perm os.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("initramfs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("initramfs: %s is not a regular file", src)
	}
	rec := cpio.Record{ReaderAt: readerAt{f}, Info: cpio.Info{Name: name, Mode: cpio.S_IFREG | uint64(perm.Perm()), FileSize: uint64(fi.Size())}}
	if err := b.add(rec); err != nil {
		f.Close()
		return err
	}
	b.closers = append(b.closers, f)
	return nil
}

// Has reports whether name is in the archive.
func (b *Builder) Has(name string) bool {
	_, ok := b.index[clean(name)]
	return ok
}

// Names returns every path in the archive, sorted.
func (b *Builder) Names() []string {
	out := make([]string, 0, len(b.recs))
	for _, r := range b.recs {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

// WriteTo writes the gzip-compressed archive to w. Compression is the
// fastest level: the archive is built for every run and unpacked once,
// under emulation, where a smaller stream saves little.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	rw := cpio.Newc.Writer(zw)
	for _, r := range b.recs {
		// WriteRecord reads a streamed file through its ReaderAt from
		// offset 0, so the archive can be written more than once.
		if err := rw.WriteRecord(r); err != nil {
			return cw.n, fmt.Errorf("initramfs: writing %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, fmt.Errorf("initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return cw.n, fmt.Errorf("initramfs: %w", err)
	}
	return cw.n, nil
}

// Close releases the host files the archive streams from.
func (b *Builder) Close() error {
	var first error
	for _, c := range b.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	b.closers = nil
	return first
}

// readerAt hides the file's Close from cpio's writer, which closes a
// record's reader after copying it; the builder closes its files itself,
// so an archive can be written more than once.
type readerAt struct{ r io.ReaderAt }

func (r readerAt) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Entry is one record read back from an archive.
type Entry struct {
	Name string
	// Mode is the file type and permission bits as Go reports them.
	Mode os.FileMode
	// Data is a regular file's contents or a symlink's target.
	Data []byte
	// Rmajor and Rminor are a device node's numbers.
	Rmajor, Rminor uint64
}

// Read parses a gzip-compressed newc archive (what WriteTo writes) and
// returns its entries in order, without the trailer.
func Read(r io.Reader) ([]Entry, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	rr := cpio.EOFReader{RecordReader: cpio.Newc.Reader(strings.NewReader(string(raw)))}
	recs, err := cpio.ReadAllRecords(rr)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	out := make([]Entry, 0, len(recs))
	for _, rec := range recs {
		e := Entry{Name: rec.Name, Mode: goMode(rec.Mode), Rmajor: rec.Rmajor, Rminor: rec.Rminor}
		if rec.ReaderAt != nil && rec.FileSize > 0 {
			e.Data = make([]byte, rec.FileSize)
			if _, err := rec.ReadAt(e.Data, 0); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("initramfs: reading %s: %w", rec.Name, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// goMode converts a cpio (Linux st_mode) mode to an os.FileMode.
func goMode(m uint64) os.FileMode {
	perm := os.FileMode(m & 0o777)
	switch m & cpio.S_IFMT {
	case cpio.S_IFDIR:
		return perm | os.ModeDir
	case cpio.S_IFLNK:
		return perm | os.ModeSymlink
	case cpio.S_IFCHR:
		return perm | os.ModeDevice | os.ModeCharDevice
	case cpio.S_IFBLK:
		return perm | os.ModeDevice
	}
	return perm
}
