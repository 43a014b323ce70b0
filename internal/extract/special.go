package extract

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mknod makes a character or block device or a FIFO for hdr at name,
// replacing what an earlier layer left there, and sets its owner, mode and
// time. It reports made false, and no error, for a device the process may
// not create (no CAP_MKNOD: not root, or root in a user namespace): the
// caller counts those. A FIFO needs no privilege and is always made.
func (t *Tree) mknod(name string, hdr *tar.Header) (made bool, err error) {
	var kind uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	default:
		kind = unix.S_IFIFO
	}
	if err := t.clear(name, hdr.Name); err != nil {
		return false, err
	}
	d, err := t.root.Open(path.Dir(name))
	if err != nil {
		return false, fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	defer d.Close()
	dev := 0
	if kind != unix.S_IFIFO {
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	}
	// The base name is one path component, so mknodat relative to the
	// directory opened inside the root stays inside it.
	mknodat := t.mknodat
	if mknodat == nil {
		mknodat = unix.Mknodat
	}
	err = mknodat(int(d.Fd()), path.Base(name), kind|0o600, dev)
	if kind != unix.S_IFIFO && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("entry %q: make %s: %w", hdr.Name, typeName(hdr.Typeflag), err)
	}
	return true, t.meta(name, hdr)
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	}
	return "fifo"
}

// chtimes sets name's access and modification times to mt without following
// a symlink. os.Root.Chtimes goes through time.UnixNano, which overflows
// outside the years 1678 to 2262 (an mtime of 10000000000, in 2286, came out
// as 1901); a timespec built from seconds and nanoseconds keeps any time the
// filesystem can hold.
func (t *Tree) chtimes(name string, mt time.Time) error {
	d, err := t.root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	ts := timespec(mt)
	return unix.UtimesNanoAt(int(d.Fd()), path.Base(name), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// metaFile sets the owner, mode and time of the regular file f, written for
// hdr, through its descriptor (no path lookups).
func (t *Tree) metaFile(f *os.File, hdr *tar.Header) error {
	if t.opts.SameOwner {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("entry %q: chown: %w", hdr.Name, err)
		}
	}
	if err := f.Chmod(hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
		return fmt.Errorf("entry %q: chmod: %w", hdr.Name, err)
	}
	if err := futimens(f, hdr.ModTime); err != nil {
		return fmt.Errorf("entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

// futimens sets f's access and modification times to mt: utimensat with a
// NULL path, as the C library's futimens (x/sys has no wrapper for it).
func futimens(f *os.File, mt time.Time) error {
	ts := [2]unix.Timespec{timespec(mt), timespec(mt)}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	runtime.KeepAlive(f)
	if errno != 0 {
		return errno
	}
	return nil
}

// timespec is t as seconds and nanoseconds since 1970, with no 64-bit
// nanosecond count in between.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// linkMeta gives the inode a hard link entry shares the entry's owner, mode
// and time, as the original occystrap (Python's tarfile) and moby's archive
// package do: the last entry naming an inode decides its metadata. A hard
// link to a symlink gets only the owner (a mode or time would go to the
// symlink's target).
func (t *Tree) linkMeta(name string, hdr *tar.Header) error {
	fi, err := t.root.Lstat(name)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if t.opts.SameOwner {
			if err := t.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
				return fmt.Errorf("entry %q: chown: %w", hdr.Name, err)
			}
		}
		return nil
	}
	return t.meta(name, hdr)
}

// isSparse reports whether hdr is a GNU sparse member, old style (type 'S')
// or PAX (GNU.sparse.* records).
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// holeBlock is the granularity at which zeros become holes: a filesystem
// allocates whole blocks, and 4 KiB is the usual block size.
const holeBlock = 4096

var (
	zeroBlock [holeBlock]byte
	sparseBuf = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
)

// copySparse writes r to f leaving every all-zero 4 KiB block of the file
// unwritten, so that a sparse member's holes stay holes, and sets the file's
// size to what r gave (a trailing hole included). archive/tar gives a
// sparse member's holes as zeros; which blocks were holes in the archive and
// which were written zeros cannot be told apart, and both read the same.
func copySparse(f *os.File, r io.Reader) (int64, error) {
	bp := sparseBuf.Get().(*[]byte)
	defer sparseBuf.Put(bp)
	buf := *bp
	var off int64
	for {
		n, rerr := fill(r, buf)
		for i := 0; i < n; {
			j := min(i+holeBlock, n)
			if bytes.Equal(buf[i:j], zeroBlock[:j-i]) {
				i = j
				continue
			}
			// Coalesce the run of data blocks into one write.
			k := j
			for k < n {
				e := min(k+holeBlock, n)
				if bytes.Equal(buf[k:e], zeroBlock[:e-k]) {
					break
				}
				k = e
			}
			if _, err := f.WriteAt(buf[i:k], off+int64(i)); err != nil {
				return off + int64(i), err
			}
			i = k
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	if err := f.Truncate(off); err != nil {
		return off, err
	}
	return off, nil
}

// fill reads into buf until it is full or r fails; io.EOF is r's clean end
// (unlike io.ReadFull, which cannot tell it from a truncated archive).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
