package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	tarballsink "github.com/occystrap/occystrap/sinks/tarball"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() {
	outputs["tar"] = func(ctx context.Context, a *app, u uri.URI) (stage.Output, error) {
		if err := knownOptions(u); err != nil {
			return nil, err
		}
		if err := writableFile(u.Path); err != nil {
			return nil, fmt.Errorf("tar:// destination: %w", err)
		}
		return tarballsink.New(u.Path, tarballsink.Options{TempDir: a.g.TempDir})
	}
}

// writableFile checks, before anything is read, that a file can be written
// at path: not a directory, and in a directory that exists and that this
// process may write to.
func writableFile(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory; give the archive's file name", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory of %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	return nil
}
