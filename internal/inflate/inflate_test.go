package inflate

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// force returns the inflater of mode; isal needs igzip (CI installs it).
func force(t testing.TB, mode string) *Inflater {
	t.Helper()
	if mode == ModeISAL {
		testenv.Igzip(t)
	}
	z, err := New(context.Background(), mode)
	if err != nil {
		t.Fatal(err)
	}
	if z.Name() != mode {
		t.Fatalf("New(%s) runs %s", mode, z.Name())
	}
	t.Cleanup(func() {
		z.Close()
		if n := z.Live(); n != 0 {
			t.Errorf("%d igzip processes left", n)
		}
	})
	return z
}

// layerLike is a tar of about size bytes of text-like files (gzip ratio
// near a real layer's).
func layerLike(t testing.TB, size int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("usr lib python3 site packages nova api conductor config json yaml init def return self import from class none true false 0x1f 42 openstack kolla")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; buf.Len() < size; i++ {
		var body bytes.Buffer
		for body.Len() < 1+rng.IntN(64<<10) {
			body.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(8) == 0 {
				fmt.Fprintf(&body, "%x\n", rng.Uint64())
			} else {
				body.WriteByte(' ')
			}
		}
		hdr := &tar.Header{Name: fmt.Sprintf("usr/lib/f%05d", i), Mode: 0o644, Size: int64(body.Len()), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(body.Bytes())
	}
	tw.Close()
	return buf.Bytes()
}

func gzipOf(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// gunzip reads all of gz through z: the bytes it gave and its error.
func gunzip(ctx context.Context, z *Inflater, gz []byte) ([]byte, error) {
	rc, err := z.Gunzip(ctx, bytes.NewReader(gz), int64(len(gz)))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return out.Bytes(), err
}

func TestSameBytesAndErrors(t *testing.T) {
	raw := layerLike(t, 3<<20)
	small := layerLike(t, 40<<10)
	gz := gzipOf(t, raw)
	corrupt := bytes.Clone(gz)
	copy(corrupt[len(corrupt)/3:], []byte{0xff, 0x00, 0xff, 0x00, 0xff, 0x13})
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-6] ^= 0x55
	badSize := bytes.Clone(gz)
	badSize[len(badSize)-3] ^= 0x01
	// gzip(1) output: a header with a file name, as docker and tar write it.
	gzipCLI := func(p []byte) []byte {
		cmd := exec.Command("gzip", "-c", "-n")
		cmd.Stdin = bytes.NewReader(p)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name    string
		gz      []byte
		want    []byte // nil: must fail
		wantErr bool
	}{
		{name: "single member", gz: gz, want: raw},
		{name: "gzip(1)", gz: gzipCLI(small), want: small},
		{name: "empty content", gz: gzipOf(t, nil), want: []byte{}},
		{name: "multi-member", gz: gzipOf(t, small, raw, small), want: bytes.Join([][]byte{small, raw, small}, nil)},
		{name: "multi-member, empty last (eStargz footer)", gz: gzipOf(t, raw, nil), want: raw},
		{name: "multi-member, tiny members (BGZF-like)", gz: gzipOf(t, small[:100], small[100:5000], small[5000:], nil), want: small},
		{name: "truncated in the data", gz: gz[:len(gz)/2], wantErr: true},
		{name: "truncated in the trailer", gz: gz[:len(gz)-3], wantErr: true},
		{name: "truncated in the header", gz: gz[:5], wantErr: true},
		{name: "corrupt data", gz: corrupt, wantErr: true},
		{name: "wrong CRC", gz: badCRC, wantErr: true},
		{name: "wrong length", gz: badSize, wantErr: true},
		{name: "not gzip", gz: []byte("this is a plain tar, not gzip at all, long enough"), wantErr: true},
		{name: "empty input", gz: []byte{}, wantErr: true},
		{name: "garbage after the member", gz: append(bytes.Clone(gz), "garbage"...), wantErr: true},
		{name: "zero padding after the member", gz: append(bytes.Clone(gz), make([]byte, 512)...), wantErr: true},
		{name: "8 zero bytes after the member", gz: append(bytes.Clone(gz), make([]byte, 8)...), wantErr: true},
		{name: "2 MiB of garbage after the member", gz: append(bytes.Clone(gz), raw[:2<<20]...), wantErr: true},
		{name: "a second member cut short", gz: gzipOf(t, small, raw)[:len(gzipOf(t, small))+100], wantErr: true},
	}
	for _, mode := range []string{ModeGo, ModeISAL} {
		z := force(t, mode)
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				got, err := gunzip(context.Background(), z, c.gz)
				if c.wantErr {
					if err == nil {
						t.Fatalf("no error; %d bytes out", len(got))
					}
					if mode == ModeISAL && !errors.Is(err, ErrCorrupt) {
						t.Errorf("error %v does not wrap ErrCorrupt", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, c.want) {
					t.Fatalf("got %d bytes, want %d (differ)", len(got), len(c.want))
				}
			})
		}
	}
}

// The one case the isal inflater cannot check: several members whose last
// is larger than its ring. It refuses rather than guess, and says what to do.
func TestISALRefusesUncheckableLastMember(t *testing.T) {
	z := force(t, ModeISAL)
	raw := layerLike(t, 1<<20)
	_, err := gunzip(context.Background(), z, gzipOf(t, raw[:1000], raw))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "OCCYSTRAP_INFLATE=go") {
		t.Fatalf("err = %v", err)
	}
	if _, err := gunzip(context.Background(), force(t, ModeGo), gzipOf(t, raw[:1000], raw)); err != nil {
		t.Fatalf("go: %v", err)
	}
}

// errReader fails after giving its bytes.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, e.err
	}
	return n, err
}

func TestSourceErrorWins(t *testing.T) {
	gz := gzipOf(t, layerLike(t, 1<<20))
	boom := errors.New("digest mismatch at the end of the blob")
	for _, mode := range []string{ModeGo, ModeISAL} {
		t.Run(mode, func(t *testing.T) {
			z := force(t, mode)
			rc, err := z.Gunzip(context.Background(), &errReader{r: bytes.NewReader(gz), err: boom}, -1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the source's", err)
			}
		})
	}
}

// blockingReader gives its bytes, then blocks until ctx ends.
type blockingReader struct {
	ctx context.Context
	r   io.Reader
}

func (b *blockingReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

// alive reports whether pid is a process (not yet reaped: a zombie counts).
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestCancelKillsIgzip(t *testing.T) {
	z := force(t, ModeISAL)
	gz := gzipOf(t, layerLike(t, 1<<20))
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := z.Gunzip(ctx, &blockingReader{ctx: ctx, r: bytes.NewReader(gz[:len(gz)/2])}, -1)
	if err != nil {
		t.Fatal(err)
	}
	pid := rc.(*igzipReader).cmd.Process.Pid
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, rc); done <- err }()
	time.Sleep(20 * time.Millisecond) // let igzip take its input (not asserted)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	rc.Close()
	if alive(pid) {
		t.Fatalf("igzip %d still exists after cancel and Close", pid)
	}
	if _, err := z.Gunzip(ctx, bytes.NewReader(gz), int64(len(gz))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Gunzip on a done context: %v", err)
	}
}

func TestCloseEarlyAndInflaterClose(t *testing.T) {
	z := force(t, ModeISAL)
	gz := gzipOf(t, layerLike(t, 4<<20))
	// Closed after one read: killed, reaped, no error.
	rc, err := z.Gunzip(context.Background(), bytes.NewReader(gz), int64(len(gz)))
	if err != nil {
		t.Fatal(err)
	}
	pid := rc.(*igzipReader).cmd.Process.Pid
	rc.Read(make([]byte, 100))
	if err := rc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if alive(pid) {
		t.Fatalf("igzip %d left after Close", pid)
	}
	// Left open: the run's end (Inflater.Close) kills and reaps it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err = z.Gunzip(ctx, &blockingReader{ctx: ctx, r: bytes.NewReader(gz[:1000])}, -1)
	if err != nil {
		t.Fatal(err)
	}
	pid = rc.(*igzipReader).cmd.Process.Pid
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, rc); done <- err }()
	time.Sleep(20 * time.Millisecond) // let the reader block (not asserted)
	cancel()                          // unblocks the source, as the run's end does
	z.Close()
	if err := <-done; err == nil {
		t.Fatal("read of a killed stream ended without error")
	}
	if alive(pid) {
		t.Fatalf("igzip %d left after Inflater.Close", pid)
	}
	if z.Live() != 0 {
		t.Fatalf("%d live after Close", z.Live())
	}
	if _, err := z.Gunzip(context.Background(), bytes.NewReader(gz), int64(len(gz))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Gunzip after Close: %v", err)
	}
}

// Under auto, only layers of known size from AutoMinSize up go to igzip.
func TestAutoBySize(t *testing.T) {
	testenv.Igzip(t)
	z := force(t, ModeISAL)
	auto, err := New(context.Background(), ModeAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer auto.Close()
	gz := gzipOf(t, []byte("small"))
	for _, c := range []struct {
		z     *Inflater
		size  int64
		igzip bool
	}{{auto, 1000, false}, {auto, -1, false}, {auto, AutoMinSize - 1, false}, {auto, AutoMinSize, true}, {z, 10, true}, {z, -1, true}} {
		rc, err := c.z.Gunzip(context.Background(), bytes.NewReader(gz), c.size)
		if err != nil {
			t.Fatal(err)
		}
		if _, is := rc.(*igzipReader); is != c.igzip {
			t.Errorf("size %d (%s): igzip %v, want %v", c.size, c.z.Describe(), is, c.igzip)
		}
		if b, err := io.ReadAll(rc); err != nil || string(b) != "small" {
			t.Errorf("size %d: %q, %v", c.size, b, err)
		}
		rc.Close()
	}
}

func TestNew(t *testing.T) {
	igzip := testenv.Igzip(t)
	for _, c := range []struct{ mode, want string }{{"", ModeISAL}, {ModeAuto, ModeISAL}, {ModeISAL, ModeISAL}, {ModeGo, ModeGo}} {
		z, err := New(context.Background(), c.mode)
		if err != nil || z.Name() != c.want {
			t.Errorf("New(%q) = %v, %v; want %s", c.mode, z.Name(), err, c.want)
		}
	}
	if _, err := New(context.Background(), "pigz"); err == nil {
		t.Error("New(pigz) accepted")
	}
	// Without igzip on PATH: auto is Go (today's behaviour), isal fails.
	t.Setenv("PATH", t.TempDir())
	if z, err := New(context.Background(), ModeAuto); err != nil || z.ISAL() {
		t.Errorf("auto without igzip: %v, %v", z.Name(), err)
	}
	if _, err := New(context.Background(), ModeISAL); !errors.Is(err, ErrUnavailable) {
		t.Errorf("isal without igzip: %v", err)
	}
	// A broken igzip: auto falls back, isal fails.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "igzip"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if z, err := New(context.Background(), ModeAuto); err != nil || z.ISAL() {
		t.Errorf("auto with a broken igzip: %v, %v", z.Name(), err)
	}
	if _, err := New(context.Background(), ModeISAL); !errors.Is(err, ErrUnavailable) {
		t.Errorf("isal with a broken igzip: %v", err)
	}
	_ = igzip
	var nilZ *Inflater
	if got, err := gunzip(context.Background(), nilZ, gzipOf(t, []byte("x"))); err != nil || string(got) != "x" {
		t.Errorf("nil inflater: %q, %v", got, err)
	}
}
