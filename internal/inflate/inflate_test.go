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
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// kinds are the inflaters this build can run: go, the igzip subprocess
// (CI installs igzip), and libisal in process in a build with the isal
// tag (CI runs these tests with and without it).
func kinds() []string {
	k := []string{ModeGo, ModeISAL}
	if Linked {
		k = append(k, NameISALCgo)
	}
	return k
}

// force returns the inflater of kind (a name of kinds), for every layer
// size.
func force(t testing.TB, kind string) *Inflater {
	t.Helper()
	var z *Inflater
	switch kind {
	case ModeGo:
		z = &Inflater{}
	case ModeISAL:
		z = &Inflater{igzip: testenv.Igzip(t), minSize: -1}
	case NameISALCgo:
		var err error
		if z, err = New(context.Background(), ModeISAL); err != nil {
			t.Fatal(err)
		}
	}
	if z.Name() != kind {
		t.Fatalf("force(%s) runs %s", kind, z.Name())
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
	for _, mode := range kinds() {
		z := force(t, mode)
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				got, err := gunzip(context.Background(), z, c.gz)
				if c.wantErr {
					if err == nil {
						t.Fatalf("no error; %d bytes out", len(got))
					}
					t.Log(err)
					if mode != ModeGo && !errors.Is(err, ErrCorrupt) {
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

// The one case the igzip subprocess cannot check: several members whose
// last is larger than its ring. It refuses rather than guess, and says what
// to do. Go and libisal in process check every member and accept it.
func TestISALRefusesUncheckableLastMember(t *testing.T) {
	raw := layerLike(t, 1<<20)
	gz := gzipOf(t, raw[:1000], raw)
	_, err := gunzip(context.Background(), force(t, ModeISAL), gz)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "OCCYSTRAP_INFLATE=go") {
		t.Fatalf("err = %v", err)
	}
	for _, kind := range kinds() {
		if kind == ModeISAL {
			continue
		}
		got, err := gunzip(context.Background(), force(t, kind), gz)
		if err != nil || !bytes.Equal(got, append(raw[:1000:1000], raw...)) {
			t.Fatalf("%s: %d bytes, %v", kind, len(got), err)
		}
	}
}

// Every way of reading gives the same bytes: io.Copy (WriteTo), small and
// large Reads (iotest.TestReader tries several sizes and checks Read's
// contract).
func TestReadShapes(t *testing.T) {
	small := layerLike(t, 100<<10)
	raw := layerLike(t, 3<<20)
	gz := gzipOf(t, small, raw, nil)
	want := append(bytes.Clone(small), raw...)
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			z := force(t, kind)
			rc, err := z.Gunzip(context.Background(), bytes.NewReader(gz), int64(len(gz)))
			if err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(rc, want); err != nil {
				t.Error(err)
			}
			rc.Close()
			for _, size := range []int{1000, 32 << 10, 200 << 10, 4 << 20} {
				rc, err := z.Gunzip(context.Background(), iotest.HalfReader(bytes.NewReader(gz)), -1)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				buf := make([]byte, size)
				for {
					n, err := rc.Read(buf)
					out.Write(buf[:n])
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("Read(%d): %v", size, err)
					}
				}
				if err := rc.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("Read(%d): %d bytes, want %d (differ)", size, out.Len(), len(want))
				}
			}
		})
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
	for _, mode := range kinds() {
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
	auto, err := newIgzip(context.Background(), ModeAuto)
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
	testenv.Igzip(t)
	isal := ModeISAL
	if Linked {
		isal = NameISALCgo
	}
	for _, c := range []struct{ mode, want string }{{"", isal}, {ModeAuto, isal}, {ModeISAL, isal}, {ModeGo, ModeGo}} {
		z, err := New(context.Background(), c.mode)
		if err != nil || z.Name() != c.want {
			t.Errorf("New(%q) = %v, %v; want %s", c.mode, z.Name(), err, c.want)
		}
	}
	if _, err := New(context.Background(), "pigz"); err == nil {
		t.Error("New(pigz) accepted")
	}
	var nilZ *Inflater
	if got, err := gunzip(context.Background(), nilZ, gzipOf(t, []byte("x"))); err != nil || string(got) != "x" {
		t.Errorf("nil inflater: %q, %v", got, err)
	}
	// The subprocess's choice (New's without libisal) follows igzip.
	for _, c := range []struct{ mode, want string }{{ModeAuto, ModeISAL}, {ModeISAL, ModeISAL}} {
		z, err := newIgzip(context.Background(), c.mode)
		if err != nil || z.Name() != c.want {
			t.Errorf("newIgzip(%q) = %v, %v; want %s", c.mode, z.Name(), err, c.want)
		}
	}
	// Without igzip on PATH: auto is Go (today's behaviour), isal fails;
	// with libisal linked, New needs no igzip.
	t.Setenv("PATH", t.TempDir())
	if z, err := newIgzip(context.Background(), ModeAuto); err != nil || z.ISAL() {
		t.Errorf("auto without igzip: %v, %v", z.Name(), err)
	}
	if _, err := newIgzip(context.Background(), ModeISAL); !errors.Is(err, ErrUnavailable) {
		t.Errorf("isal without igzip: %v", err)
	}
	if z, err := New(context.Background(), ModeAuto); err != nil || z.Name() != map[bool]string{true: NameISALCgo, false: ModeGo}[Linked] {
		t.Errorf("New(auto) without igzip: %v, %v", z.Name(), err)
	}
	// A broken igzip: auto falls back, isal fails.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "igzip"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if z, err := newIgzip(context.Background(), ModeAuto); err != nil || z.ISAL() {
		t.Errorf("auto with a broken igzip: %v, %v", z.Name(), err)
	}
	if _, err := newIgzip(context.Background(), ModeISAL); !errors.Is(err, ErrUnavailable) {
		t.Errorf("isal with a broken igzip: %v", err)
	}
}

// Every inflater ends a read with the context's error when the context
// ends while the source blocks, and ISA-L's refuse a done context.
func TestCancelEndsRead(t *testing.T) {
	gz := gzipOf(t, layerLike(t, 1<<20))
	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			z := force(t, kind)
			ctx, cancel := context.WithCancel(context.Background())
			rc, err := z.Gunzip(ctx, &blockingReader{ctx: ctx, r: bytes.NewReader(gz[:len(gz)/2])}, -1)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := io.Copy(io.Discard, rc); done <- err }()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			rc.Close()
			if kind == ModeGo {
				return
			}
			if _, err := z.Gunzip(ctx, bytes.NewReader(gz), int64(len(gz))); !errors.Is(err, context.Canceled) {
				t.Fatalf("Gunzip on a done context: %v", err)
			}
		})
	}
}

// Closing the Inflater ends the run: Gunzip fails afterwards, and an
// in-process reader in use fails at its next refill.
func TestInflaterCloseInProcess(t *testing.T) {
	if !Linked {
		// Without libisal, TestCloseEarlyAndInflaterClose covers igzip.
		return
	}
	z := force(t, NameISALCgo)
	gz := gzipOf(t, layerLike(t, 4<<20))
	rc, err := z.Gunzip(context.Background(), iotest.HalfReader(bytes.NewReader(gz)), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	z.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Inflater.Close: %v", err)
	}
	if err := rc.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
	if _, err := z.Gunzip(context.Background(), bytes.NewReader(gz), int64(len(gz))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Gunzip after Close: %v", err)
	}
}
