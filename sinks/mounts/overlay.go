package mounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxOptions is the most bytes of mount options the kernel reads (one page,
// with its terminating NUL).
var maxOptions = os.Getpagesize() - 1

// overlayOptions are the two forms of the mount options, newest layer
// first: one lowerdir+= per layer (Linux 6.8 and later), and the single
// colon-separated lowerdir= every kernel takes.
func overlayOptions(lower []string, upper, work string) (plus, single string) {
	tail := ",upperdir=" + upper + ",workdir=" + work
	var b strings.Builder
	for i, l := range lower {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("lowerdir+=" + l)
	}
	return b.String() + tail, "lowerdir=" + strings.Join(lower, ":") + tail
}

// mountOverlay mounts the overlay of lower (newest first) with upper and
// work on target, trying the lowerdir+= form first and then lowerdir=. It
// returns the options that worked.
func mountOverlay(lower []string, upper, work, target string) (string, error) {
	return mountOverlayWith(func(opts string) error {
		return unix.Mount("overlay", target, "overlay", 0, opts)
	}, lower, upper, work, target)
}

// mountOverlayWith is mountOverlay with the mount call given.
func mountOverlayWith(mount func(opts string) error, lower []string, upper, work, target string) (string, error) {
	if len(lower) == 0 {
		return "", errors.New("overlay mount: an image with no layers cannot be mounted")
	}
	for _, p := range append(append([]string{}, lower...), upper, work) {
		if strings.ContainsAny(p, ",:\\") {
			return "", fmt.Errorf("overlay mount: %q: %w (it holds ',', ':' or '\\')", p, ErrBadPath)
		}
	}
	plus, single := overlayOptions(lower, upper, work)
	var errs []error
	for _, opts := range []string{plus, single} {
		if len(opts) > maxOptions {
			errs = append(errs, fmt.Errorf("options are %d bytes, more than the kernel's %d", len(opts), maxOptions))
			continue
		}
		err := mount(opts)
		if err == nil {
			return opts, nil
		}
		errs = append(errs, fmt.Errorf("mount -t overlay overlay -o %s %s: %w", opts, target, err))
	}
	return "", fmt.Errorf("overlay mount of %d layers on %s failed: %w", len(lower), target, errors.Join(errs...))
}

// unmount takes the overlay on target down.
func unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// isMountPoint reports whether dir is a mount point: it is on another device
// than its parent, or is the same directory as its parent (the root).
func isMountPoint(dir string) (bool, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(filepath.Dir(dir))
	if err != nil {
		return false, err
	}
	a, b := fi.Sys().(*syscall.Stat_t), pi.Sys().(*syscall.Stat_t)
	return a.Dev != b.Dev || a.Ino == b.Ino, nil
}
