package atomicfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/occystrap/occystrap/internal/umask"
)

// TempPrefix starts the name of every temporary file this package makes.
const TempPrefix = ".occystrap-tmp-"

// chunk is how much is copied between two checks of the context when the
// source is a file (the kernel copies it without passing through user space).
const chunk = 8 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Link puts the finished file src at name atomically, as a hard link (the
// two names share the data; src may then be removed). It reports linked
// false, and does nothing, when the two are on different filesystems or the
// filesystem has no hard links: the caller then copies. A size other than
// want (when want is not negative) is an error.
func Link(name, src string, want int64) (n int64, linked bool, err error) {
	fi, err := os.Stat(src)
	if err != nil {
		return 0, false, fmt.Errorf("link %s: %w", name, err)
	}
	if want >= 0 && fi.Size() != want {
		return fi.Size(), false, fmt.Errorf("link %s: %s has %d bytes, expected %d", name, src, fi.Size(), want)
	}
	tmp := filepath.Join(filepath.Dir(name), fmt.Sprintf("%s%s-link-%d", TempPrefix, filepath.Base(name), linkSeq.Add(1)))
	if err := os.Link(src, tmp); err != nil {
		if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENOTSUP) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("link %s: %w", name, err)
	}
	if err := os.Chmod(tmp, umask.File()); err != nil {
		_ = os.Remove(tmp)
		return 0, false, fmt.Errorf("link %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
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

// Write copies r to name atomically, with the mode a new file gets (0666
// less the umask), and returns the bytes
// written. When want is not negative, a copy of another length is an error
// and nothing is renamed into place. On any error the temporary file is
// removed.
func Write(ctx context.Context, name string, r io.Reader, want int64) (n int64, err error) {
	f, err := os.CreateTemp(filepath.Dir(name), TempPrefix+filepath.Base(name)+"-*")
	if err != nil {
		return 0, fmt.Errorf("create temporary file for %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
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
	if err = os.Rename(tmp, name); err != nil {
		return n, fmt.Errorf("rename %s into place: %w", name, err)
	}
	return n, nil
}

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
