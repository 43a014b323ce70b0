package atomicfile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: several buffer rounds
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		src     func(t *testing.T) io.Reader
		want    int64
		wantErr bool
	}{
		{name: "stream", ctx: context.Background(), src: func(*testing.T) io.Reader { return bytes.NewReader(data) }, want: int64(len(data))},
		{name: "file", ctx: context.Background(), src: func(t *testing.T) io.Reader {
			p := filepath.Join(t.TempDir(), "src")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}, want: int64(len(data))},
		{name: "unknown size", ctx: context.Background(), src: func(*testing.T) io.Reader { return bytes.NewReader(data) }, want: -1},
		{name: "wrong size", ctx: context.Background(), src: func(*testing.T) io.Reader { return bytes.NewReader(data) }, want: 5, wantErr: true},
		{name: "cancelled", ctx: cancelled, src: func(*testing.T) io.Reader { return bytes.NewReader(data) }, want: -1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dest := filepath.Join(dir, "out")
			n, err := Write(tc.ctx, dest, tc.src(t), tc.want)
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), TempPrefix) {
					t.Errorf("temporary file left: %s", e.Name())
				}
			}
			if tc.wantErr {
				if err == nil {
					t.Fatal("Write succeeded, want an error")
				}
				if _, serr := os.Stat(dest); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("destination exists after a failed write (%v)", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dest)
			if err != nil || n != int64(len(data)) || !bytes.Equal(got, data) {
				t.Errorf("wrote %d bytes, file %d bytes, equal %v, err %v", n, len(got), bytes.Equal(got, data), err)
			}
			if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", fi.Mode())
			}
		})
	}
}

func TestLink(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "spool")
	if err := os.WriteFile(src, []byte("layer bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "out", "layer.tar")
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Link(name, src, 3); err == nil {
		t.Fatal("a size other than expected was not an error")
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("a failed link left %s (%v)", name, err)
	}
	n, linked, err := Link(name, src, 11)
	if err != nil || !linked || n != 11 {
		t.Fatalf("Link = %d, %v, %v", n, linked, err)
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(name)
	if !os.SameFile(a, b) {
		t.Error("not a hard link of the source")
	}
	if b.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", b.Mode().Perm())
	}
	// The spool is removed by its owner; the output keeps the data.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(name); err != nil || string(got) != "layer bytes" {
		t.Errorf("after removing the source: %q, %v", got, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "out", TempPrefix+"*"))
	if len(left) > 0 {
		t.Errorf("temporary names left: %v", left)
	}
}
