package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc"
	"github.com/sourcegraph/conc/pool"
)

// DefaultChunkSize is the most one PATCH streams. Chunks are streamed, not
// buffered: the size bounds how many requests a blob takes, not memory.
const DefaultChunkSize = 256 << 20

// MonolithicMax is the largest blob of known digest and size (a copied
// blob, a config) sent in one streamed PUT after the POST (two round trips
// where chunks take three). Nothing is buffered; a PUT that fails cannot be
// resumed at an offset, so the blob is sent again from its start in a new
// session, which bounds what a failure costs.
const MonolithicMax = 32 << 20

// Opener opens a blob's stream. PutBlob may call it again to resume an
// upload: the stream then starts over and what the registry has is skipped.
type Opener func(ctx context.Context) (io.ReadCloser, error)

// BlobPut says what PutBlob sends and how.
type BlobPut struct {
	// Digest and Size of the blob when known (a copied blob, a config);
	// "" and -1 for a stream made on the way (a layer compressed into the
	// upload), whose digest PutBlob computes.
	Digest digest.Digest
	Size   int64
	// Session is an upload session already open (a mount the registry
	// answered with a session, see MountBlob), or nil.
	Session *Upload
	// ChunkSize is the most bytes one PATCH streams (DefaultChunkSize when
	// 0 or less); a blob of known digest and size up to
	// min(MonolithicMax, ChunkSize) goes in one streamed PUT.
	ChunkSize int
	// Retries is how many times a failed chunk is resumed at the
	// registry's offset, or a failed PUT sent again (at least 1).
	Retries int
	// Check asks, for a blob of unknown digest that fits in Buf, whether
	// the registry has it (HEAD, now that its digest is known) before it
	// is sent.
	Check bool
	// Buf is the read-ahead buffer, lent by the caller for the call: a blob
	// that ends within it goes in one PUT. Nil means 1 MiB allocated.
	Buf []byte
}

// BlobPutResult is what PutBlob sent.
type BlobPutResult struct {
	Digest digest.Digest
	Size   int64
	// Existing is a blob that Check found in the registry: nothing was sent.
	Existing bool
}

// PutBlob uploads the blob open gives to repo, as regclient's BlobPut
// does, and returns its digest and size (the caller compares them with
// what it expected).
//
// A blob of known digest and size up to min(MonolithicMax, ChunkSize) goes
// in one streamed PUT ?digest= after the POST, its stream opened while the
// POST is answered; a PUT that fails is sent again from the start in a new
// session (the old one may hold part of the blob).
//
// Otherwise the first len(Buf) bytes are read ahead: a blob that ends there
// goes in one monolithic PUT ?digest= (after a HEAD when Check is set and
// there is no Session). A larger one streams in PATCH chunks of up to
// ChunkSize bytes, read straight from the stream into the request (nothing
// buffered), hashed on the way, then a closing PUT with the digest. A chunk
// that fails (after the transport's own retries) is resumed at the offset
// the registry reports: the stream is opened again and what the registry
// has is skipped (and hashed).
//
// When the blob's own stream fails (a source blob whose digest does not
// match, a compressor error), that error is returned, whatever the upload
// then ended with: the registry may answer the cut body first.
func (r *Registry) PutBlob(ctx context.Context, repo string, open Opener, p BlobPut) (BlobPutResult, error) {
	if p.ChunkSize <= 0 {
		p.ChunkSize = DefaultChunkSize
	}
	p.Retries = max(p.Retries, 1)
	if p.Buf == nil {
		p.Buf = make([]byte, min(p.ChunkSize, 1<<20))
	}
	if p.Digest != "" && p.Size >= 0 && p.Size <= int64(min(MonolithicMax, p.ChunkSize)) {
		return r.putWhole(ctx, repo, open, p)
	}
	if p.Digest == "" {
		p.Size = -1
	}
	return r.putChunked(ctx, repo, open, p)
}

// MountBlob asks the registry to mount blob d from repository from into
// repo (POST ?mount=&from=). mounted is true when it did; otherwise up is
// the session the registry opened instead, to upload into (BlobPut.Session).
func (r *Registry) MountBlob(ctx context.Context, repo string, d digest.Digest, from string) (mounted bool, up *Upload, err error) {
	up, mounted, err = r.startUpload(ctx, repo, d, from)
	return mounted, up, err
}

// putWhole sends a blob of known digest and size in one streamed PUT.
func (r *Registry) putWhole(ctx context.Context, repo string, open Opener, p BlobPut) (BlobPutResult, error) {
	up := p.Session
	for attempt := 0; ; attempt++ {
		var rc io.ReadCloser
		var opening *openingBody
		u := up
		if up != nil {
			// The session is open: the PUT starts while the stream
			// opens, and its body waits for the stream's first bytes.
			opening = startOpening(ctx, open)
			rc = opening
		} else {
			var err error
			if rc, u, err = r.openAndStart(ctx, repo, up, open); err != nil {
				return BlobPutResult{}, err
			}
		}
		h := &hashCount{h: sha256.New()}
		err := u.PutStream(ctx, p.Digest, io.TeeReader(rc, h), p.Size)
		rc.Close()
		if opening != nil && opening.failed() != nil {
			return BlobPutResult{}, opening.failed() // the stream did not open: not the upload's failure
		}
		if err == nil {
			return BlobPutResult{Digest: digest.NewDigest(digest.SHA256, h.h), Size: h.n}, nil
		}
		if ctx.Err() != nil || attempt >= p.Retries {
			return BlobPutResult{}, err
		}
		u.Resumed(ctx, 0)
		up = nil
	}
}

// openingBody is a blob's stream being opened in the background (by
// startOpening): reads wait until it is open. failed, once Close has
// returned, is why the open failed (nil when it did not, or when Close
// stopped it because the upload had ended without reading).
type openingBody struct {
	wg      conc.WaitGroup // the goroutine opening the stream; Close waits for it
	done    chan struct{}
	cancel  context.CancelFunc
	rc      io.ReadCloser
	err     error
	stopped bool
}

func (o *openingBody) failed() error {
	if o.stopped {
		return nil
	}
	return o.err
}

// startOpening opens the stream with open in a goroutine the body owns
// (Close waits for it).
func startOpening(ctx context.Context, open Opener) *openingBody {
	ctx, cancel := context.WithCancel(ctx)
	o := &openingBody{done: make(chan struct{}), cancel: cancel}
	o.wg.Go(func() {
		defer close(o.done)
		o.rc, o.err = open(ctx)
	})
	return o
}

func (o *openingBody) Read(p []byte) (int, error) {
	<-o.done
	if o.err != nil {
		return 0, o.err
	}
	return o.rc.Read(p)
}

// Close stops an open still under way, and closes the stream.
func (o *openingBody) Close() error {
	select {
	case <-o.done:
	default:
		o.stopped = true
		o.cancel() // the upload ended before reading: the stream is not needed
	}
	o.wg.Wait()
	defer o.cancel()
	if o.rc != nil {
		return o.rc.Close()
	}
	return nil
}

// openAndStart opens the blob's stream and, when up is nil, an upload
// session at the same time: the source's first bytes and the destination's
// session take one round trip, not two.
func (r *Registry) openAndStart(ctx context.Context, repo string, up *Upload, open Opener) (io.ReadCloser, *Upload, error) {
	if up != nil {
		rc, err := open(ctx)
		return rc, up, err
	}
	var rc io.ReadCloser
	p := pool.New().WithErrors()
	p.Go(func() error {
		var err error
		rc, err = open(ctx) // the caller's ctx: the stream outlives the pool
		return err
	})
	up, _, err := r.startUpload(ctx, repo, "", "")
	if perr := p.Wait(); perr != nil {
		return nil, nil, perr
	}
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return rc, up, nil
}

// putChunked sends a blob read ahead into p.Buf, then in one PUT or in
// PATCH chunks, resuming a failed chunk at the registry's offset.
func (r *Registry) putChunked(ctx context.Context, repo string, open Opener, p BlobPut) (_ BlobPutResult, err error) {
	var srcErr sourceErr
	open = srcErr.wrap(open)
	defer func() {
		if err != nil {
			if cause := srcErr.get(); cause != nil {
				err = cause
			}
		}
	}()
	up, size, probe := p.Session, p.Size, p.Buf
	var rc io.ReadCloser
	if size > int64(len(probe)) {
		// Known to need a session: open it while the stream opens.
		rc, up, err = r.openAndStart(ctx, repo, up, open)
	} else {
		rc, err = open(ctx)
	}
	if err != nil {
		return BlobPutResult{}, err
	}
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()

	n, err := io.ReadFull(rc, probe)
	whole := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	if err != nil && !whole {
		return BlobPutResult{}, err
	}
	if whole {
		d := digest.FromBytes(probe[:n])
		if p.Check && up == nil {
			there, _, err := r.BlobExists(ctx, repo, d)
			if err != nil {
				return BlobPutResult{}, err
			}
			if there {
				return BlobPutResult{Digest: d, Size: int64(n), Existing: true}, nil
			}
		}
		if up == nil {
			if up, _, err = r.startUpload(ctx, repo, "", ""); err != nil {
				return BlobPutResult{}, err
			}
		}
		if err := up.Put(ctx, d, probe[:n]); err != nil {
			return BlobPutResult{}, err
		}
		return BlobPutResult{Digest: d, Size: int64(n)}, nil
	}
	if up == nil {
		if up, _, err = r.startUpload(ctx, repo, "", ""); err != nil {
			return BlobPutResult{}, err
		}
	}
	h := &hashCount{h: sha256.New()}
	h.Write(probe[:n])
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(probe[:n]), rc), 64<<10)
	chunk := int64(p.ChunkSize)
	resumes := 0
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return BlobPutResult{}, err
		}
		start := up.Offset()
		want := int64(-1)
		if size >= 0 {
			want = min(chunk, size-start)
		}
		// Bytes before the probe's end were hashed already.
		err := up.Patch(ctx, &hashFrom{r: io.LimitReader(br, chunk), h: h, pos: start, from: int64(n)}, want)
		if err == nil {
			continue
		}
		if ctx.Err() != nil || resumes >= p.Retries {
			return BlobPutResult{}, err
		}
		resumes++
		off, serr := up.Status(ctx)
		if serr != nil {
			return BlobPutResult{}, fmt.Errorf("%w (and the upload's status: %v)", err, serr)
		}
		rc.Close()
		if rc, err = open(ctx); err != nil {
			return BlobPutResult{}, err
		}
		h = &hashCount{h: sha256.New()}
		if _, err := io.CopyN(h, rc, off); err != nil {
			return BlobPutResult{}, fmt.Errorf("resume at %d: %w", off, err)
		}
		n = int(off) // everything before off is hashed
		br = bufio.NewReaderSize(rc, 64<<10)
		up.Resumed(ctx, off)
	}
	total := up.Offset()
	if h.n != total {
		return BlobPutResult{}, fmt.Errorf("registry has %d bytes of the blob, %d were read: %w", total, h.n, ErrSizeMismatch)
	}
	d := digest.NewDigest(digest.SHA256, h.h)
	if err := up.Put(ctx, d, nil); err != nil {
		return BlobPutResult{}, err
	}
	return BlobPutResult{Digest: d, Size: total}, nil
}

// sourceErr keeps the first error a blob's stream returned (other than EOF),
// across the reopenings of a resumed upload.
type sourceErr struct {
	mu  sync.Mutex
	err error
}

func (e *sourceErr) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *sourceErr) wrap(open Opener) Opener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &errTrackingReader{ReadCloser: rc, e: e}, nil
	}
}

type errTrackingReader struct {
	io.ReadCloser
	e *sourceErr
}

func (r *errTrackingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.e.mu.Lock()
		if r.e.err == nil {
			r.e.err = err
		}
		r.e.mu.Unlock()
	}
	return n, err
}

// hashCount hashes and counts.
type hashCount struct {
	h hash.Hash
	n int64
}

func (c *hashCount) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

// hashFrom hashes what is read through it once the stream position passes
// from (bytes before it were hashed when read ahead).
type hashFrom struct {
	r         io.Reader
	h         *hashCount
	pos, from int64
}

func (t *hashFrom) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		b := p[:n]
		if skip := t.from - t.pos; skip > 0 {
			b = b[min(skip, int64(n)):]
		}
		t.h.Write(b)
		t.pos += int64(n)
	}
	return n, err
}
