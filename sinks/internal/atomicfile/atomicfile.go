package atomicfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/internal/umask"
)

// TempPrefix starts the name of every temporary file this package makes.
const TempPrefix = tempname.OutputPrefix

// chunk is how much is copied between two checks of the context when the
// source is a file (the kernel copies it without passing through user space).
const chunk = 8 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Link puts the finished file src at name atomically, as a hard link (the
// two names share the data; src may then be removed). It reports linked
// false, and does nothing, when the two are on different filesystems or the
// filesystem has no hard links: the caller then copies. A size other than
// want (when want is not negative) is an error. name's directory is taken
// as it is; see LinkAt.
func Link(name, src string, want int64) (n int64, linked bool, err error) {
	return LinkAt(filepath.Dir(name), filepath.Base(name), src, want)
}

// LinkAt is Link for root/rel, rel resolved beneath root without following
// any symlink (package internal/beneath).
func LinkAt(root, rel, src string, want int64) (n int64, linked bool, err error) {
	name := filepath.Join(root, rel)
	fi, err := os.Stat(src)
	if err != nil {
		return 0, false, fmt.Errorf("link %s: %w", name, err)
	}
	if want >= 0 && fi.Size() != want {
		return fi.Size(), false, fmt.Errorf("link %s: %s has %d bytes, expected %d", name, src, fi.Size(), want)
	}
	tmp := path.Join(path.Dir(rel), fmt.Sprintf("%s-link-%d", TempName(path.Base(rel)), linkSeq.Add(1)))
	if err := beneath.Link(src, root, tmp); err != nil {
		if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENOTSUP) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("link %s: %w", name, err)
	}
	if err := beneath.Chmod(root, tmp, umask.File()); err != nil {
		_ = beneath.Remove(root, tmp)
		return 0, false, fmt.Errorf("link %s: %w", name, err)
	}
	if err := beneath.Rename(root, tmp, rel); err != nil {
		_ = beneath.Remove(root, tmp)
		return 0, false, fmt.Errorf("rename %s into place: %w", name, err)
	}
	return fi.Size(), true, nil
}

var linkSeq atomic.Int64

// WriteFile writes data to name atomically with the mode a new file gets
// (0666 less the umask).
func WriteFile(name string, data []byte) error {
	_, err := Write(context.Background(), name, bytes.NewReader(data), int64(len(data)))
	return err
}

// WriteFileAt is WriteFile for root/rel (see WriteAt).
func WriteFileAt(root, rel string, data []byte) error {
	_, err := WriteAt(context.Background(), root, rel, bytes.NewReader(data), int64(len(data)))
	return err
}

// Write copies r to name atomically, with the mode a new file gets (0666
// less the umask), and returns the bytes
// written. When want is not negative, a copy of another length is an error
// and nothing is renamed into place. On any error the temporary file is
// removed. name's directory is taken as it is; see WriteAt.
func Write(ctx context.Context, name string, r io.Reader, want int64) (n int64, err error) {
	return WriteAt(ctx, filepath.Dir(name), filepath.Base(name), r, want)
}

// WriteAt is Write for root/rel: the temporary file is created, and renamed
// to rel, beneath root without following any symlink (package
// internal/beneath), so a symlink an earlier image left in the output never
// redirects the write. A symlink at rel itself is replaced.
func WriteAt(ctx context.Context, root, rel string, r io.Reader, want int64) (n int64, err error) {
	name := filepath.Join(root, rel)
	f, tmp, err := beneath.CreateTemp(root, path.Dir(rel), TempName(path.Base(rel))+"-*")
	if err != nil {
		return 0, fmt.Errorf("create temporary file for %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = beneath.Remove(root, tmp)
		}
	}()
	n, err = Copy(ctx, f, r)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", name, err)
	}
	if want >= 0 && n != want {
		return n, fmt.Errorf("write %s: got %d bytes, expected %d", name, n, want)
	}
	if err = f.Chmod(umask.File()); err != nil {
		return n, fmt.Errorf("write %s: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return n, fmt.Errorf("write %s: %w", name, err)
	}
	if err = beneath.Rename(root, tmp, rel); err != nil {
		return n, fmt.Errorf("rename %s into place: %w", name, err)
	}
	return n, nil
}

// TempName is the start of the name of a temporary file or directory made
// for the final name base: TempPrefix, this process's owner tag, "-" and
// base. The tag lets a later run tell a temporary that a killed run left
// (its process is gone) from one a live run is writing (package
// internal/tempname).
func TempName(base string) string { return tempname.Output(base) }

// Copy copies r to f, checking ctx between chunks. When r is a file, the
// kernel copies it (copy_file_range); otherwise a 1 MiB buffer is used.
func Copy(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	if src, ok := r.(*os.File); ok {
		var total int64
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			n, err := io.CopyN(f, src, chunk)
			total += n
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
		}
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	// Hide f's ReadFrom so that the pooled buffer is used.
	w := struct{ io.Writer }{f}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.CopyBuffer(w, io.LimitReader(r, chunk), *bp)
		total += n
		if err != nil || n < chunk {
			return total, err
		}
	}
}
