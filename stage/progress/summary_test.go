package progress

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/logging"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTally sums the images that did not fail, counts those that did and
// the verification errors of the others, and prints them.
func TestTally(t *testing.T) {
	outcomes := []Outcome{
		{Image: "q/a:1", Layers: 2, Bytes: 2000, Moved: 1500, Digest: "sha256:aa", Verified: true},
		{Image: "q/b:1", Err: errors.New("fetch manifest: 404")},
		{Image: "q/c:1", Layers: 3, Bytes: 3000, Moved: 3000, Verified: true, VerifyErrors: []string{"layer missing"}},
	}
	s := Tally(outcomes)
	s.Elapsed = 1500 * time.Millisecond
	if got, want := s.String(), "Summary: 2/3 images, 5 layers, 4.9 KB, 1.5s, 1 failed, 1 verify errors"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var out bytes.Buffer
	p := &logging.Printer{Log: zerolog.Nop(), W: &out, Format: logging.Console}
	s.PrintProblems(p)
	want := "Failed images:\n  q/b:1: fetch manifest: 404\nVerification errors:\n  q/c:1: layer missing\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("PrintProblems (-want +got):\n%s", diff)
	}
}

// TestWriteDigests prints one digest, or IMAGE DIGEST lines for the
// images written, and the same into the digest file.
func TestWriteDigests(t *testing.T) {
	file := filepath.Join(t.TempDir(), "digests")
	var out bytes.Buffer
	err := WriteDigests(&out, file, "", []Outcome{
		{Image: "q/a:1", Digest: "sha256:aa"}, {Image: "q/b:1", Err: errors.New("x"), Digest: "sha256:bb"}, {Image: "q/c:1", Digest: "sha256:cc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "q/a:1 sha256:aa\nq/c:1 sha256:cc\n"
	b, _ := os.ReadFile(file)
	if out.String() != want || string(b) != want {
		t.Errorf("printed %q, file %q; want %q", out.String(), b, want)
	}
	out.Reset()
	if err := WriteDigests(&out, file, "sha256:dd", nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file)
	if out.String() != "sha256:dd\n" || string(b) != "sha256:dd" {
		t.Errorf("printed %q, file %q", out.String(), b)
	}
}

// TestStartStop draws the live line until stop, which clears it and
// leaves no goroutine behind (TestMain checks).
func TestStartStop(t *testing.T) {
	run := accounting.NewRun()
	im := run.Image("fixture/app:v1")
	im.Start()
	im.Expect(3 << 20)
	im.Add(1 << 20)
	run.SetTotal(1)
	var w lockedWriter
	line := &Line{W: &w}
	stop := Start(context.Background(), run, zerolog.Nop(), Options{Live: true, Line: line, Redraw: time.Millisecond})
	for !strings.Contains(w.String(), "fixture/app:v1") {
		time.Sleep(time.Millisecond)
	}
	stop()
	if s := w.String(); !strings.HasSuffix(s, "\r\033[K") {
		t.Errorf("live line not cleared at the end: %q", s)
	}
}

type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
