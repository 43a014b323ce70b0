package tarball

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/stage"
)

// copyBuffer is the buffer size for reading the archive.
const copyBuffer = 256 << 10

type compression int

const (
	none compression = iota
	gzipped
	zstded
)

func (c compression) String() string {
	switch c {
	case gzipped:
		return "gzip"
	case zstded:
		return "zstd"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniff tells a member's compression from its first bytes.
func (s *Source) sniff(m member) (compression, error) {
	var b [4]byte
	n, err := s.ra.ReadAt(b[:min(int64(len(b)), m.size)], m.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return none, fmt.Errorf("archive %s: read member %s: %w", s.path, m.name, err)
	}
	switch {
	case bytes.HasPrefix(b[:n], gzipMagic):
		return gzipped, nil
	case bytes.HasPrefix(b[:n], zstdMagic):
		return zstded, nil
	}
	return none, nil
}

// body makes the re-openable body of layer l. Unless the source is
// Unchecked, every reader it gives verifies the layer against its DiffID:
// the last Read returns ErrDiffID instead of io.EOF when the sha256 of the
// uncompressed tar is not the config's DiffID.
func (s *Source) body(l layer) stage.Body {
	b := &layerBody{s: s, l: l}
	if l.comp == none {
		return &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) {
			rc, err := b.openRaw()
			if err != nil {
				return nil, err
			}
			return b.verify(rc), nil
		}}
	}
	return b
}

// layerBody is a compressed layer's body: Open decompresses, and
// OpenCompressed gives the blob as stored (stage.Compressed).
type layerBody struct {
	s *Source
	l layer

	mu       sync.Mutex
	verified bool // a whole read matched the DiffID
}

func (b *layerBody) Release() error { return nil }

// verify wraps a reader of the uncompressed layer in a DiffID check.
func (b *layerBody) verify(rc io.ReadCloser) io.ReadCloser {
	if b.s.unchecked {
		return rc
	}
	return &verifier{rc: rc, h: sha256.New(), want: b.l.diffID, what: fmt.Sprintf("archive %s: layer %s", b.s.path, b.l.mpath), ok: b.setVerified}
}

func (b *layerBody) setVerified() {
	b.mu.Lock()
	b.verified = true
	b.mu.Unlock()
}

// ensureVerified reads the layer through its DiffID check once, for a
// consumer that copies the blob as stored and so never decompresses it.
func (b *layerBody) ensureVerified() error {
	b.mu.Lock()
	done := b.verified || b.s.unchecked
	b.mu.Unlock()
	if done {
		return nil
	}
	rc, err := b.Open()
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenCompressed returns the blob as it is stored in the archive, once the
// layer has been verified against its DiffID.
func (b *layerBody) OpenCompressed() (io.ReadCloser, string, error) {
	if err := b.ensureVerified(); err != nil {
		return nil, "", err
	}
	rc, err := b.openRaw()
	if err != nil {
		return nil, "", err
	}
	mt := v1.MediaTypeImageLayerGzip
	if b.l.comp == zstded {
		mt = v1.MediaTypeImageLayerZstd
	}
	return rc, mt, nil
}

// Open returns the decompressed layer tar.
func (b *layerBody) Open() (io.ReadCloser, error) {
	raw, err := b.openRaw()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(raw, copyBuffer)
	what := fmt.Sprintf("archive %s: member %s", b.s.path, b.l.m.name)
	switch b.l.comp {
	case gzipped:
		// Bodies are opened without a context: an igzip process ends
		// with Close, or with the run (Inflater.Close).
		zr, err := b.s.inflate.Gunzip(context.Background(), br, b.l.m.size)
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("%s: gzip: %w", what, err)
		}
		return b.verify(&decompressor{r: zr, what: what, close: func() error { zr.Close(); return raw.Close() }}), nil
	default:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("%s: zstd: %w", what, err)
		}
		return b.verify(&decompressor{r: zr, what: what, close: func() error { zr.Close(); return raw.Close() }}), nil
	}
}

// maxTrailing is how much of a layer a verifier reads on Close when its
// consumer stopped early (a tar reader stops at the end-of-archive blocks;
// the padding after them is at most a record).
const maxTrailing = 1 << 20

// verifier hashes what is read and, at the end, compares it with the
// DiffID. A consumer that stops reading early (a tar reader stops at the
// end-of-archive blocks) gets the check from Close, which reads the rest,
// up to maxTrailing.
type verifier struct {
	rc   io.ReadCloser
	h    hash.Hash
	want digest.Digest
	what string
	ok   func() // called when the whole layer matched

	end    bool  // the end was reached and matched
	err    error // the first error returned
	closed bool
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.end {
		return 0, io.EOF
	}
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	switch {
	case errors.Is(err, io.EOF):
		if got := digest.NewDigest(digest.SHA256, v.h); got != v.want {
			v.err = fmt.Errorf("%s: uncompressed content has sha256 %s, the config's DiffID is %s: %w", v.what, got, v.want, ErrDiffID)
			return n, v.err
		}
		v.end = true
		v.ok()
	case err != nil:
		v.err = err
	}
	return n, err
}

// WriteTo copies through Read (so that everything is hashed) with a large
// buffer.
func (v *verifier) WriteTo(w io.Writer) (int64, error) {
	return io.CopyBuffer(onlyWriter{w}, onlyReader{v}, make([]byte, copyBuffer))
}

// Close checks a layer not read to its end, then closes the reader. A
// second Close does nothing.
func (v *verifier) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	var err error
	if !v.end && v.err == nil {
		n, _ := io.Copy(io.Discard, io.LimitReader(onlyReader{v}, maxTrailing+1))
		switch {
		case v.err != nil:
			err = v.err
		case !v.end && n > maxTrailing:
			err = fmt.Errorf("%s: closed more than %d bytes before its end: not verified against its DiffID", v.what, maxTrailing)
		}
	} else if errors.Is(v.err, ErrDiffID) {
		err = v.err
	}
	if cerr := v.rc.Close(); err == nil {
		err = cerr
	}
	return err
}

// decompressor names the member in its read errors.
type decompressor struct {
	r     io.Reader
	what  string
	close func() error
}

func (d *decompressor) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: decompress: %w", d.what, err)
	}
	return n, err
}

// WriteTo lets io.Copy use the decompressor's own buffers.
func (d *decompressor) WriteTo(w io.Writer) (int64, error) {
	n, err := io.CopyBuffer(onlyWriter{w}, onlyReader{d.r}, make([]byte, copyBuffer))
	if err != nil {
		err = fmt.Errorf("%s: decompress: %w", d.what, err)
	}
	return n, err
}

func (d *decompressor) Close() error { return d.close() }

// onlyReader and onlyWriter hide ReaderFrom and WriterTo, so that
// io.CopyBuffer uses the large buffer given (io.Discard's ReadFrom, for
// one, reads 8 KiB at a time).
type (
	onlyReader struct{ io.Reader }
	onlyWriter struct{ io.Writer }
)

// openRaw returns the member's bytes as stored. With a path, it opens a new
// descriptor so that concurrent readers do not share the kernel's readahead
// state and a copy into a file can use copy_file_range.
func (b *layerBody) openRaw() (io.ReadCloser, error) {
	m := b.l.m
	if !b.s.reopen {
		return io.NopCloser(io.NewSectionReader(b.s.ra, m.off, m.size)), nil
	}
	f, err := os.Open(b.s.file)
	if err != nil {
		return nil, fmt.Errorf("archive %s: open member %s: %w", b.s.path, m.name, err)
	}
	if _, err := f.Seek(m.off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("archive %s: open member %s: %w", b.s.path, m.name, err)
	}
	return &section{f: f, lr: io.LimitedReader{R: f, N: m.size}, what: fmt.Sprintf("archive %s: member %s", b.s.path, m.name)}, nil
}

// section reads one member from its own descriptor on the archive.
type section struct {
	f    *os.File
	lr   io.LimitedReader
	what string
}

func (s *section) Read(p []byte) (int, error) {
	n, err := s.lr.Read(p)
	return n, s.wrap(s.short(err))
}

// short turns an early end of file (the archive shrank since Open) into
// ErrTruncated.
func (s *section) short(err error) error {
	if s.lr.N > 0 && (err == nil || errors.Is(err, io.EOF)) {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%w: %d bytes missing: %w", ErrTruncated, s.lr.N, io.ErrUnexpectedEOF)
	}
	return err
}

// WriteTo copies the rest of the member to w: with copy_file_range or
// sendfile when w is a file, else through a large buffer.
func (s *section) WriteTo(w io.Writer) (int64, error) {
	if f, ok := w.(*os.File); ok {
		n, err := f.ReadFrom(&s.lr)
		return n, s.wrap(s.atEnd(err))
	}
	n, err := io.CopyBuffer(onlyWriter{w}, onlyReader{&s.lr}, make([]byte, copyBuffer))
	return n, s.wrap(s.atEnd(err))
}

// atEnd checks, after a copy without error, that the whole member came.
func (s *section) atEnd(err error) error {
	if err == nil && s.lr.N > 0 {
		return s.short(io.EOF)
	}
	return err
}

func (s *section) wrap(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return fmt.Errorf("%s: %w", s.what, err)
}

func (s *section) Close() error { return s.f.Close() }
