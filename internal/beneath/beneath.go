package beneath

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrSymlink is returned when a path goes through, or ends at, a
	// symbolic link.
	ErrSymlink = errors.New("path goes through a symbolic link")
	// ErrOutside is returned for a path that is absolute, empty or climbs
	// out of the directory with "..".
	ErrOutside = errors.New("path is not inside the directory")
)

// noOpenat2 is set when the kernel has no openat2 (before Linux 5.6); tests
// set it to run the O_NOFOLLOW walk.
var noOpenat2 atomic.Bool

// split checks rel and returns its cleaned form: "." for root itself.
func split(rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return "", fmt.Errorf("%q: %w", rel, ErrOutside)
	}
	c := path.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: %w", rel, ErrOutside)
	}
	return c, nil
}

// openRoot opens the directory root as the user gave it.
func openRoot(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	return fd, nil
}

// openDir opens the directory rel beneath the descriptor dirfd, following
// no symlink. rel is clean and inside.
func openDir(dirfd int, rel string) (int, error) {
	if rel == "." {
		return unix.Dup(dirfd)
	}
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EXDEV) {
			return -1, ErrOutside
		}
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	cur, err := unix.Dup(dirfd)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		next, err := openComponent(cur, c)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// openComponent opens the directory c in dirfd without following a
// symlink. O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR, which is
// told apart from a plain file here and returned as ELOOP.
func openComponent(dirfd int, c string) (int, error) {
	fd, err := unix.Openat(dirfd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, unix.ELOOP
		}
	}
	return fd, err
}

// pathErr wraps a system error for op on root/rel, adding ErrSymlink where
// the system's error says a symlink was met.
func pathErr(op, root, rel string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ELOOP) {
		err = fmt.Errorf("%w (%w)", ErrSymlink, err)
	}
	return &fs.PathError{Op: op, Path: path.Join(root, rel), Err: err}
}

// parent opens the parent directory of rel (clean, not ".") beneath root
// and returns it with rel's last component.
func parent(root, rel string) (int, string, error) {
	rfd, err := openRoot(root)
	if err != nil {
		return -1, "", err
	}
	defer unix.Close(rfd)
	fd, err := openDir(rfd, path.Dir(rel))
	if err != nil {
		return -1, "", err
	}
	return fd, path.Base(rel), nil
}

// Lstat returns the file info of root/rel, without following a symlink:
// for a symlink in the last place it describes the link, one in a parent is
// an error wrapping ErrSymlink.
func Lstat(root, rel string) (fs.FileInfo, error) {
	rel, err := split(rel)
	if err != nil {
		return nil, err
	}
	if rel == "." {
		return os.Stat(root)
	}
	dfd, base, err := parent(root, rel)
	if err != nil {
		return nil, pathErr("lstat", root, rel, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, pathErr("lstat", root, rel, err)
	}
	return statInfo(base, &st), nil
}

// Open opens root/rel for reading; a symlink anywhere in rel is an error
// wrapping ErrSymlink.
func Open(root, rel string) (*os.File, error) {
	return OpenFile(root, rel, os.O_RDONLY, 0)
}

// ReadFile reads root/rel without following any symlink.
func ReadFile(root, rel string) ([]byte, error) {
	f, err := Open(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenFile opens root/rel with flag (os.O_* flags) and, when it creates the
// file, perm. A symlink anywhere in rel is an error wrapping ErrSymlink.
func OpenFile(root, rel string, flag int, perm os.FileMode) (*os.File, error) {
	rel, err := split(rel)
	if err != nil {
		return nil, err
	}
	if rel == "." {
		return nil, pathErr("open", root, rel, unix.EISDIR)
	}
	dfd, base, err := parent(root, rel)
	if err != nil {
		return nil, pathErr("open", root, rel, err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, pathErr("open", root, rel, err)
	}
	return os.NewFile(uintptr(fd), path.Join(root, rel)), nil
}

// MkdirAll creates root/rel and every missing parent with mode perm (before
// the umask). An existing component that is not a directory, or is a
// symlink, is an error.
func MkdirAll(root, rel string, perm os.FileMode) error {
	rel, err := split(rel)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil
	}
	rfd, err := openRoot(root)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	cur, err := unix.Dup(rfd)
	if err != nil {
		return err
	}
	done := ""
	for _, c := range strings.Split(rel, "/") {
		done = path.Join(done, c)
		if err := unix.Mkdirat(cur, c, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(cur)
			return pathErr("mkdir", root, done, err)
		}
		next, err := openComponent(cur, c)
		unix.Close(cur)
		if err != nil {
			return pathErr("mkdir", root, done, err)
		}
		cur = next
	}
	unix.Close(cur)
	return nil
}

// Mkdir creates the directory root/rel (its parent must exist).
func Mkdir(root, rel string, perm os.FileMode) error {
	rel, err := split(rel)
	if err != nil {
		return err
	}
	dfd, base, err := parent(root, rel)
	if err != nil {
		return pathErr("mkdir", root, rel, err)
	}
	defer unix.Close(dfd)
	return pathErr("mkdir", root, rel, unix.Mkdirat(dfd, base, uint32(perm.Perm())))
}

// tempName is prefix, a random part and, if the pattern has one, the part
// after "*".
func tempName(pattern string) string {
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	return prefix + strconv.FormatUint(rand.Uint64()&(1<<40-1), 36) + suffix
}

// CreateTemp creates a new file in the directory root/dir (as
// os.CreateTemp names it: pattern's last "*" replaced by a random string),
// open for reading and writing with mode 0600, and returns it with its path
// relative to root.
func CreateTemp(root, dir, pattern string) (*os.File, string, error) {
	if strings.Contains(pattern, "/") {
		return nil, "", fmt.Errorf("temporary file pattern %q: %w", pattern, ErrOutside)
	}
	for range 10000 {
		rel := path.Join(dir, tempName(pattern))
		f, err := OpenFile(root, rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, rel, err
	}
	return nil, "", fmt.Errorf("create temporary file in %s: %w", path.Join(root, dir), fs.ErrExist)
}

// MkdirTemp creates a new directory in root/dir, as os.MkdirTemp names it,
// with mode 0700, and returns its path relative to root.
func MkdirTemp(root, dir, pattern string) (string, error) {
	if strings.Contains(pattern, "/") {
		return "", fmt.Errorf("temporary directory pattern %q: %w", pattern, ErrOutside)
	}
	for range 10000 {
		rel := path.Join(dir, tempName(pattern))
		err := Mkdir(root, rel, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return rel, nil
	}
	return "", fmt.Errorf("create temporary directory in %s: %w", path.Join(root, dir), fs.ErrExist)
}

// Rename renames root/from to root/to. Neither path's parents may be
// symlinks; a symlink at to is replaced, never followed.
func Rename(root, from, to string) error {
	from, err := split(from)
	if err != nil {
		return err
	}
	to, err = split(to)
	if err != nil {
		return err
	}
	ffd, fbase, err := parent(root, from)
	if err != nil {
		return pathErr("rename", root, from, err)
	}
	defer unix.Close(ffd)
	tfd, tbase, err := parent(root, to)
	if err != nil {
		return pathErr("rename", root, to, err)
	}
	defer unix.Close(tfd)
	if err := unix.Renameat(ffd, fbase, tfd, tbase); err != nil {
		return &os.LinkError{Op: "rename", Old: path.Join(root, from), New: path.Join(root, to), Err: err}
	}
	return nil
}

// Link makes root/rel a hard link of the file src (a path outside root, as
// the system resolves it; a symlink in its last place is not followed).
func Link(src, root, rel string) error {
	rel, err := split(rel)
	if err != nil {
		return err
	}
	dfd, base, err := parent(root, rel)
	if err != nil {
		return pathErr("link", root, rel, err)
	}
	defer unix.Close(dfd)
	if err := unix.Linkat(unix.AT_FDCWD, src, dfd, base, 0); err != nil {
		return &os.LinkError{Op: "link", Old: src, New: path.Join(root, rel), Err: err}
	}
	return nil
}

// Chmod sets the mode of root/rel (never through a symlink).
func Chmod(root, rel string, mode os.FileMode) error {
	rel, err := split(rel)
	if err != nil {
		return err
	}
	rfd, err := openRoot(root)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	fd, err := openDir(rfd, rel)
	if errors.Is(err, unix.ENOTDIR) {
		f, ferr := OpenFile(root, rel, os.O_RDONLY, 0)
		if ferr != nil {
			return ferr
		}
		defer f.Close()
		return f.Chmod(mode)
	}
	if err != nil {
		return pathErr("chmod", root, rel, err)
	}
	defer unix.Close(fd)
	return pathErr("chmod", root, rel, unix.Fchmod(fd, uint32(mode.Perm())))
}

// Remove removes the file or empty directory root/rel; a symlink there is
// removed itself.
func Remove(root, rel string) error {
	rel, err := split(rel)
	if err != nil {
		return err
	}
	dfd, base, err := parent(root, rel)
	if err != nil {
		return pathErr("remove", root, rel, err)
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, base, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR)
	}
	return pathErr("remove", root, rel, err)
}

// RemoveAll removes root/rel and everything under it, never following a
// symlink: a symlink is removed itself. A missing rel is not an error; one
// whose parents go through a symlink is.
func RemoveAll(root, rel string) error {
	rel, err := split(rel)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("remove all of %s: %w", root, ErrOutside)
	}
	dfd, base, err := parent(root, rel)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return pathErr("remove", root, rel, err)
	}
	defer unix.Close(dfd)
	return pathErr("remove", root, rel, removeAt(dfd, base))
}

func removeAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := openComponent(dfd, name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	for {
		names, rerr := d.Readdirnames(256)
		for _, n := range names {
			if err := removeAt(fd, n); err != nil {
				d.Close()
				return err
			}
		}
		if rerr != nil || len(names) == 0 {
			break
		}
	}
	d.Close()
	err = unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// fileStat is an fs.FileInfo made from a stat record.
type fileStat struct {
	name string
	st   unix.Stat_t
}

func statInfo(name string, st *unix.Stat_t) fs.FileInfo { return &fileStat{name: name, st: *st} }

func (f *fileStat) Name() string { return f.name }
func (f *fileStat) Size() int64  { return f.st.Size }
func (f *fileStat) Mode() fs.FileMode {
	m := fs.FileMode(f.st.Mode & 0o777)
	switch f.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if f.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if f.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if f.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
func (f *fileStat) ModTime() time.Time { return time.Unix(f.st.Mtim.Unix()) }
func (f *fileStat) IsDir() bool        { return f.Mode().IsDir() }
func (f *fileStat) Sys() any           { return &f.st }
