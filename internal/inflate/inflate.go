package inflate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Modes accepted by New (OCCYSTRAP_INFLATE).
const (
	ModeAuto = "auto" // ISA-L if igzip is on PATH and works, else Go
	ModeGo   = "go"   // always klauspost/compress
	ModeISAL = "isal" // always ISA-L; New fails without it
)

// NameISALCgo is Name's answer when ISA-L runs in process: a build with
// the isal tag (and cgo) links libisal and needs no igzip.
const NameISALCgo = "isal-cgo"

// AutoMinSize is the smallest compressed size that ModeAuto sends through
// igzip. Each igzip process costs a fixed few milliseconds of CPU (exec,
// dynamic linking, its buffers, the pipes); measured on the bench corpus,
// igzip's lower cost per byte pays for it from about 2 MiB of gzip (see
// docs/performance.md). Smaller layers, and streams of unknown size, are
// inflated in Go.
const AutoMinSize = 2 << 20

// Inflater is the run's gzip decompressor. The zero value and nil inflate
// with Go.
type Inflater struct {
	cgo     bool   // libisal in process (build tag isal); every size
	igzip   string // igzip's path; "" (and !cgo) inflates with Go
	minSize int64  // smallest known compressed size sent to igzip (-1: unknown sizes too)

	mu     sync.Mutex
	live   map[*igzipReader]struct{}
	closed bool
}

// New chooses the inflater for mode (ModeAuto when empty). A build with
// the isal tag runs ISA-L in process (libisal, linked) for auto and isal.
// Otherwise ISA-L is igzip, tried by decompressing a tiny stream, so a
// broken install is found here: ModeAuto then falls back to Go, ModeISAL
// fails with ErrUnavailable.
func New(ctx context.Context, mode string) (*Inflater, error) {
	switch mode {
	case "", ModeAuto, ModeISAL:
	case ModeGo:
		return &Inflater{}, nil
	default:
		return nil, fmt.Errorf("inflate %q: want go, isal or auto", mode)
	}
	if Linked {
		z := &Inflater{cgo: true}
		if err := probe(ctx, z); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return z, nil
	}
	return newIgzip(ctx, mode)
}

// newIgzip is New without libisal: igzip on PATH if it works.
func newIgzip(ctx context.Context, mode string) (*Inflater, error) {
	path, err := exec.LookPath("igzip")
	if err == nil {
		err = probe(ctx, &Inflater{igzip: path, minSize: -1})
	}
	if err != nil {
		if mode == ModeISAL {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return &Inflater{}, nil
	}
	z := &Inflater{igzip: path, minSize: -1}
	if mode != ModeISAL {
		z.minSize = AutoMinSize
	}
	return z, nil
}

// probe checks that z's ISA-L decompresses a small gzip stream.
func probe(ctx context.Context, z *Inflater) error {
	const want = "occystrap inflate probe\n"
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(want)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	rc, err := z.Gunzip(ctx, &buf, int64(buf.Len()))
	if err != nil {
		return err
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("probe %s: %w", z.Name(), err)
	}
	if string(got) != want {
		return fmt.Errorf("probe %s: decompressed %q", z.Name(), got)
	}
	return nil
}

// Describe says which inflater runs for which layers, for the log.
func (z *Inflater) Describe() string {
	switch {
	case !z.ISAL():
		return "go"
	case z.cgo:
		return "isal in process (libisal) for every gzip layer"
	case z.minSize < 0:
		return "isal for every gzip layer"
	}
	return fmt.Sprintf("isal for gzip layers of %d MiB and more, go for smaller ones and those of unknown size", z.minSize>>20)
}

// Name says which inflater runs: "isal-cgo" (libisal in process),
// "isal" (the igzip subprocess) or "go".
func (z *Inflater) Name() string {
	switch {
	case z != nil && z.cgo:
		return NameISALCgo
	case z.ISAL():
		return ModeISAL
	}
	return ModeGo
}

// ISAL reports whether gzip goes through ISA-L (in process or igzip).
func (z *Inflater) ISAL() bool { return z != nil && (z.cgo || z.igzip != "") }

// Path is igzip's path, or "" for Go.
func (z *Inflater) Path() string {
	if z == nil {
		return ""
	}
	return z.igzip
}

// Gunzip returns the decompressed content of the gzip stream r (one member
// or several) of size compressed bytes (-1 if unknown; under ModeAuto, small
// or unknown sizes go to Go). With Go, a bad header fails here; with ISA-L
// it fails at the first Read. The caller must Close the reader; reading to
// io.EOF means the whole stream was valid. An igzip process is killed when
// ctx ends, and Read then returns ctx's error; the in-process reader
// checks ctx each time it reads from r.
func (z *Inflater) Gunzip(ctx context.Context, r io.Reader, size int64) (io.ReadCloser, error) {
	if z != nil && z.cgo {
		return z.startCgo(ctx, r)
	}
	if !z.ISAL() || (z.minSize >= 0 && size < z.minSize) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr, nil
	}
	return z.startIgzip(ctx, r)
}

// Close kills every igzip process still running and waits for it (and its
// feeder). A reader still in use then fails with ErrClosed; its owner
// still closes it. Gunzip fails with ErrClosed afterwards.
func (z *Inflater) Close() error {
	if z == nil {
		return nil
	}
	z.mu.Lock()
	z.closed = true
	left := make([]*igzipReader, 0, len(z.live))
	for r := range z.live {
		left = append(left, r)
	}
	z.mu.Unlock()
	for _, r := range left {
		r.abort(ErrClosed)
		r.wait()
	}
	return nil
}

// track records r as live; it fails once z is closed.
func (z *Inflater) track(r *igzipReader) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.closed {
		return ErrClosed
	}
	if z.live == nil {
		z.live = map[*igzipReader]struct{}{}
	}
	z.live[r] = struct{}{}
	return nil
}

func (z *Inflater) untrack(r *igzipReader) {
	z.mu.Lock()
	delete(z.live, r)
	z.mu.Unlock()
}

// Live is the number of igzip processes not yet reaped (for tests).
func (z *Inflater) Live() int {
	if z == nil {
		return 0
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	return len(z.live)
}

// stderrTail keeps the first bytes igzip writes to stderr, for errors.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if room := 1024 - len(s.buf); room > 0 {
		s.buf = append(s.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (s *stderrTail) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(string(s.buf))
}
