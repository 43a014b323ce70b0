package extract

import (
	"fmt"
	"path"

	"golang.org/x/sys/unix"
)

// OpaqueXattr is the extended attribute overlayfs reads to hide, under a
// directory of an upper layer, what lower layers have there.
const OpaqueXattr = "trusted.overlay.opaque"

// markOpaque sets OpaqueXattr=y on dir (creating it if needed).
func (t *Tree) markOpaque(dir, entry string) error {
	if dir != "." {
		if err := t.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("opaque marker %q: create directory: %w", entry, err)
		}
	}
	f, err := t.root.Open(dir)
	if err != nil {
		return fmt.Errorf("opaque marker %q: %w", entry, err)
	}
	defer f.Close()
	if err := unix.Fsetxattr(int(f.Fd()), OpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("opaque marker %q: set %s on %s: %w", entry, OpaqueXattr, dir, err)
	}
	return nil
}

// markWhiteout makes dir/name a character device 0:0, overlayfs's whiteout,
// replacing what an earlier entry of the layer put there.
func (t *Tree) markWhiteout(dir, name, entry string, created map[string]bool) error {
	target := path.Join(dir, name)
	if dir != "." {
		if err := t.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("whiteout %q: create parent directory: %w", entry, err)
		}
	}
	if err := t.clear(target, entry); err != nil {
		return err
	}
	d, err := t.root.Open(dir)
	if err != nil {
		return fmt.Errorf("whiteout %q: %w", entry, err)
	}
	defer d.Close()
	// name is one path component (no "/", not "." or ".."), so mknodat
	// relative to the directory opened inside the root stays inside it.
	if err := unix.Mknodat(int(d.Fd()), name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %q: make device %s: %w", entry, target, err)
	}
	for p := target; p != "." && !created[p]; p = path.Dir(p) {
		created[p] = true
	}
	return nil
}
