package tarfmt

import (
	"archive/tar"
	"context"
	"io"
	"os"
)

// Check reads the tar in r to its end, every member's content included, and
// returns the first error archive/tar reports, unwrapped so that callers can
// quote it; ctx is checked before each member. It is how outputs verify that
// a layer they wrote is a whole tar.
func Check(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return err
		}
	}
}

// CheckFile is Check on the file at name.
func CheckFile(ctx context.Context, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return Check(ctx, f)
}
