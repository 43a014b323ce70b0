package extract

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Options tune a Tree.
type Options struct {
	// SameOwner applies each entry's uid and gid (only root may). When false
	// the files belong to the user running the extraction.
	SameOwner bool
	// Overlay writes whiteouts as overlayfs expects to find them in a lower
	// directory instead of applying them: "DIR/.wh..wh..opq" sets the
	// extended attribute trusted.overlay.opaque=y on DIR, and "DIR/.wh.X"
	// makes DIR/X a character device 0:0, at any depth. It is meant for one
	// layer per tree (needs CAP_SYS_ADMIN for trusted.* and CAP_MKNOD).
	Overlay bool
}

// Tree is a target directory that layers are applied to, in order.
type Tree struct {
	dir  string
	root *os.Root
	opts Options
	// dirs holds the mode and time of every directory an entry declared,
	// applied at Close.
	dirs map[string]*tar.Header
	// layer counts the layers applied, for error messages.
	layer  int
	closed bool
	// skippedDevices counts the device nodes not created for want of the
	// privilege (see SkippedDevices).
	skippedDevices int
	// mknodat is unix.Mknodat when nil; tests refuse devices with it.
	mknodat func(dirfd int, name string, mode uint32, dev int) error
}

// SkippedDevices is the number of character and block devices the layers
// applied so far held and the tree could not create: making one needs
// CAP_MKNOD (root). Each layer that skips some logs a warning with its count.
func (t *Tree) SkippedDevices() int { return t.skippedDevices }

// New opens dir (creating it if needed) as the target of a merged tree.
func New(dir string, opts Options) (*Tree, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("create extraction target %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open extraction target %s: %w", dir, err)
	}
	return &Tree{dir: dir, root: root, opts: opts, dirs: map[string]*tar.Header{}}, nil
}

// Clean returns the tar entry name as a clean path relative to the tree's
// root ("." for the root itself), or an error wrapping ErrUnsafeEntry when it
// is absolute or climbs out of the tree.
func Clean(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("entry with an empty name: %w", ErrUnsafeEntry)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("entry %q has an absolute path: %w", name, ErrUnsafeEntry)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q climbs out with \"..\": %w", name, ErrUnsafeEntry)
	}
	return c, nil
}

// Apply reads one layer tar from r and applies it on top of the layers
// applied before. It stops at the first error; the tree is then partial.
func (t *Tree) Apply(ctx context.Context, r io.Reader) error {
	if t.closed {
		return errors.New("extract: Apply after Close")
	}
	t.layer++
	// created holds the paths this layer made, so that its own whiteouts
	// and opaque markers leave them alone.
	created := map[string]bool{}
	skipped := t.skippedDevices
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if n := t.skippedDevices - skipped; n > 0 {
				zerolog.Ctx(ctx).Warn().Int("layer", t.layer).Int("skipped", n).
					Msgf("Skipped %d device node(s) of layer %d: creating them needs root (CAP_MKNOD)", n, t.layer)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer %d tar: %w", t.layer, err)
		}
		if err := t.entry(ctx, tr, hdr, created); err != nil {
			return fmt.Errorf("layer %d: %w", t.layer, classify(err))
		}
	}
}

func (t *Tree) entry(ctx context.Context, tr *tar.Reader, hdr *tar.Header, created map[string]bool) error {
	name, err := Clean(hdr.Name)
	if err != nil {
		return err
	}
	base := path.Base(name)
	parent := path.Dir(name)

	switch {
	case base == opaqueMarker:
		if t.opts.Overlay {
			return t.markOpaque(parent, hdr.Name)
		}
		return t.opaque(parent, created, hdr.Name)
	case strings.HasPrefix(base, whiteoutPrefix):
		hidden := base[len(whiteoutPrefix):]
		if hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("whiteout %q names no entry of its directory: %w", hdr.Name, ErrUnsafeEntry)
		}
		target := path.Join(parent, hidden)
		if created[target] {
			return nil
		}
		if t.opts.Overlay {
			return t.markWhiteout(parent, hidden, hdr.Name, created)
		}
		if err := t.root.RemoveAll(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("apply whiteout %q: %w", hdr.Name, err)
		}
		t.forget(target)
		return nil
	}
	if name == "." {
		return nil // the root itself
	}
	if parent != "." {
		// A parent no entry declares gets 0777 less the umask, as
		// Python's tarfile makes it.
		if err := t.root.MkdirAll(parent, 0o777); err != nil {
			return fmt.Errorf("entry %q: create parent directory: %w", hdr.Name, err)
		}
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if fi, err := t.root.Lstat(name); err == nil && !fi.IsDir() {
			if err := t.root.Remove(name); err != nil {
				return fmt.Errorf("entry %q: replace %s with a directory: %w", hdr.Name, fi.Mode().Type(), err)
			}
		}
		if err := t.root.MkdirAll(name, 0o755); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		t.dirs[name] = hdr
	case tar.TypeReg, tar.TypeGNUSparse: // archive/tar reports old TypeRegA entries as TypeReg
		if err := t.clear(name, hdr.Name); err != nil {
			return err
		}
		f, err := t.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if isSparse(hdr) {
			_, err = copySparse(f, tr)
		} else {
			_, err = io.Copy(f, tr)
		}
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("entry %q: write: %w", hdr.Name, err)
		}
		err = t.metaFile(f, hdr)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("entry %q: write: %w", hdr.Name, cerr)
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := checkSymlink(name, hdr); err != nil {
			return err
		}
		if err := t.clear(name, hdr.Name); err != nil {
			return err
		}
		if err := t.root.Symlink(hdr.Linkname, name); err != nil {
			return fmt.Errorf("entry %q: symlink to %q: %w", hdr.Name, hdr.Linkname, err)
		}
		if t.opts.SameOwner {
			if err := t.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
				return fmt.Errorf("entry %q: chown: %w", hdr.Name, err)
			}
		}
	case tar.TypeLink:
		target, err := Clean(hdr.Linkname)
		if err != nil || target == "." {
			return fmt.Errorf("entry %q: hard link to %q outside the tree: %w", hdr.Name, hdr.Linkname, ErrUnsafeEntry)
		}
		if target == name {
			return nil
		}
		if err := t.clear(name, hdr.Name); err != nil {
			return err
		}
		if err := t.root.Link(target, name); err != nil {
			return fmt.Errorf("entry %q: hard link to %q: %w", hdr.Name, hdr.Linkname, err)
		}
		if err := t.linkMeta(name, hdr); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		made, err := t.mknod(name, hdr)
		if err != nil {
			return err
		}
		if !made {
			t.skippedDevices++
			zerolog.Ctx(ctx).Debug().Str("entry", hdr.Name).Msg("Skipping device node: creating it needs CAP_MKNOD")
			return nil
		}
	default:
		zerolog.Ctx(ctx).Debug().Str("entry", hdr.Name).Str("type", string(hdr.Typeflag)).Msg("Skipping tar entry of a type that is not extracted")
		return nil
	}
	// The entry and its parents are this layer's: its own opaque markers
	// keep them (and prune, below them, what earlier layers left).
	for p := name; p != "." && !created[p]; p = path.Dir(p) {
		created[p] = true
	}
	return nil
}

// classify marks an error of os.Root refusing a path that escapes it (for
// example a write through a symlink to "/") as ErrUnsafeEntry. The os package
// does not export that error, so it is recognised by its text.
func classify(err error) error {
	if errors.Is(err, ErrUnsafeEntry) {
		return err
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "path escapes from parent" {
			return fmt.Errorf("%w: %w", err, ErrUnsafeEntry)
		}
	}
	return err
}

// checkSymlink refuses a relative symlink target that climbs above the root.
func checkSymlink(name string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return fmt.Errorf("entry %q: symlink with an empty target: %w", hdr.Name, ErrUnsafeEntry)
	}
	if strings.HasPrefix(hdr.Linkname, "/") {
		return nil
	}
	resolved := path.Join(path.Dir(name), hdr.Linkname)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("entry %q: symlink to %q points outside the tree: %w", hdr.Name, hdr.Linkname, ErrUnsafeEntry)
	}
	return nil
}

// clear removes whatever an earlier layer left at name, so that a new entry
// never writes through an old symlink or into a file an old hard link shares.
func (t *Tree) clear(name, entry string) error {
	fi, err := t.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", entry, err)
	}
	if fi.IsDir() {
		err = t.root.RemoveAll(name)
		t.forget(name)
	} else {
		err = t.root.Remove(name)
	}
	if err != nil {
		return fmt.Errorf("entry %q: replace existing %s: %w", entry, fi.Mode().Type(), err)
	}
	return nil
}

// meta sets a regular file's mode, owner and time.
func (t *Tree) meta(name string, hdr *tar.Header) error {
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if t.opts.SameOwner {
		if err := t.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("entry %q: chown: %w", hdr.Name, err)
		}
	}
	if err := t.root.Chmod(name, mode); err != nil {
		return fmt.Errorf("entry %q: chmod: %w", hdr.Name, err)
	}
	if err := t.chtimes(name, hdr.ModTime); err != nil {
		return fmt.Errorf("entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

// opaque removes everything under dir that earlier layers left there.
func (t *Tree) opaque(dir string, created map[string]bool, entry string) error {
	fi, err := t.root.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply opaque marker %q: %w", entry, err)
	}
	if !fi.IsDir() {
		return nil
	}
	return t.prune(dir, created, entry)
}

func (t *Tree) prune(dir string, created map[string]bool, entry string) error {
	f, err := t.root.Open(dir)
	if err != nil {
		return fmt.Errorf("apply opaque marker %q: %w", entry, err)
	}
	children, err := f.ReadDir(-1)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("apply opaque marker %q: list %s: %w", entry, dir, err)
	}
	for _, c := range children {
		p := path.Join(dir, c.Name())
		if !created[p] {
			if err := t.root.RemoveAll(p); err != nil {
				return fmt.Errorf("apply opaque marker %q: remove %s: %w", entry, p, err)
			}
			t.forget(p)
			continue
		}
		if c.IsDir() {
			if err := t.prune(p, created, entry); err != nil {
				return err
			}
		}
	}
	return nil
}

// forget drops the recorded directories at and under p, which was removed.
func (t *Tree) forget(p string) {
	for n := range t.dirs {
		if n == p || strings.HasPrefix(n, p+"/") {
			delete(t.dirs, n)
		}
	}
}

// Close sets the directories' modes, owners and times, deepest first, and
// closes the target. It is safe to call more than once.
func (t *Tree) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	defer t.root.Close()
	names := make([]string, 0, len(t.dirs))
	for n := range t.dirs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	var first error
	for _, n := range names {
		hdr := t.dirs[n]
		if fi, err := t.root.Lstat(n); err != nil || !fi.IsDir() {
			continue // removed or replaced since
		}
		if t.opts.SameOwner {
			if err := t.root.Lchown(n, hdr.Uid, hdr.Gid); err != nil && first == nil {
				first = fmt.Errorf("directory %q: chown: %w", hdr.Name, err)
			}
		}
		mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if err := t.root.Chmod(n, mode); err != nil && first == nil {
			first = fmt.Errorf("directory %q: chmod: %w", hdr.Name, err)
		}
		mt := hdr.ModTime
		if mt.IsZero() {
			mt = time.Unix(0, 0)
		}
		if err := t.chtimes(n, mt); err != nil && first == nil {
			first = fmt.Errorf("directory %q: set times: %w", hdr.Name, err)
		}
	}
	return first
}

// Dir is the target directory.
func (t *Tree) Dir() string { return t.dir }
