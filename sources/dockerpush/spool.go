package dockerpush

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/tempname"
)

const copyBuffer = 1 << 20

// Compression of a received blob, as its first bytes show.
const (
	compNone = "none"
	compGzip = "gzip"
	compZstd = "zstd"
)

// blob is a blob received completely: its compressed digest was checked,
// and its uncompressed content is in a file of the temp dir.
type blob struct {
	Digest digest.Digest // as pushed (compressed)
	Size   int64         // bytes pushed
	DiffID digest.Digest // sha256 of the uncompressed content
	USize  int64         // uncompressed bytes
	Comp   string        // compNone, compGzip or compZstd
	Path   string        // the uncompressed content
}

// spoolBlob decompresses src into a file of tempDir. It has no context: the
// upload's pipe, closed with an error when the upload is aborted, ends it.
func spoolBlob(src io.Reader, tempDir string, z *inflate.Inflater) (blob, error) {
	br := bufio.NewReaderSize(src, copyBuffer)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return blob{}, err
	}
	var (
		rd   io.Reader = br
		comp           = compNone
	)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		comp = compGzip
		zr, err := z.Gunzip(context.Background(), br, -1) // size unknown: the engine streams it
		if err != nil {
			return blob{}, fmt.Errorf("gzip blob: %w", err)
		}
		defer zr.Close()
		rd = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		comp = compZstd
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return blob{}, fmt.Errorf("zstd blob: %w", err)
		}
		defer zr.Close()
		rd = zr
	}
	f, err := tempname.Create(tempDir, "dockerpush", ".tar")
	if err != nil {
		return blob{}, fmt.Errorf("spool blob: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), rd, make([]byte, copyBuffer))
	if err == nil && comp != compNone {
		// Whatever follows the compressed stream must be nothing.
		var extra int64
		extra, err = io.Copy(io.Discard, br)
		if err == nil && extra > 0 {
			err = fmt.Errorf("%d bytes after the end of the %s stream", extra, comp)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return blob{}, fmt.Errorf("spool %s blob: %w", comp, err)
	}
	return blob{DiffID: digest.NewDigest(digest.SHA256, h), USize: n, Comp: comp, Path: f.Name()}, nil
}

func removeFile(p string) error {
	if p == "" {
		return nil
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
