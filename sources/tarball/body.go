package tarball

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
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

// body makes the re-openable body of layer l.
func (s *Source) body(l layer) stage.Body {
	b := &layerBody{s: s, l: l}
	if l.comp == none {
		return &stage.OpenerBody{OpenFunc: b.openRaw}
	}
	return b
}

// layerBody is a compressed layer's body: Open decompresses, and
// OpenCompressed gives the blob as stored (stage.Compressed).
type layerBody struct {
	s *Source
	l layer
}

func (b *layerBody) Release() error { return nil }

// OpenCompressed returns the blob as it is stored in the archive.
func (b *layerBody) OpenCompressed() (io.ReadCloser, string, error) {
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
		return &decompressor{r: zr, what: what, close: func() error { zr.Close(); return raw.Close() }}, nil
	default:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("%s: zstd: %w", what, err)
		}
		return &decompressor{r: zr, what: what, close: func() error { zr.Close(); return raw.Close() }}, nil
	}
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
	f, err := os.Open(b.s.path)
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
