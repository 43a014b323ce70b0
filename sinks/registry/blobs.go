package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// pushLayer makes sure the destination has one layer's blob.
func (s *Sink) pushLayer(ctx context.Context, it stage.Item, slots chan struct{}) (layerResult, error) {
	if it.Skipped() {
		if r, ok := s.cached(ctx, it.Name); ok {
			return r, nil
		}
		return layerResult{}, ErrSkippedLayer
	}
	if c, ok := it.Body.(stage.Compressed); ok {
		return s.pushCompressed(ctx, it, c, slots)
	}
	if r, ok := s.cached(ctx, it.Name); ok {
		return r, nil
	}
	// A layer this run already compressed (for another repository) has a
	// known blob: check it, and mount it rather than send it again.
	key := s.opts.Compression + " " + it.Name
	if it.DiffID != "" {
		key = s.opts.Compression + " " + it.DiffID.String()
	}
	var up *transport.Upload
	known, isKnown := s.opts.Pushed.layer(key)
	if isKnown {
		there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, known.Digest)
		if err != nil {
			return layerResult{}, err
		}
		if there {
			s.existing.Add(1)
			return layerResult{desc: known, cacheKey: it.Name}, nil
		}
	}
	done, err := acquire(ctx, slots)
	if err != nil {
		return layerResult{}, err
	}
	defer done()
	if isKnown {
		if from, ok := s.opts.Pushed.elsewhere(s.opts.Host, known.Digest, s.opts.Repo); ok {
			var mounted bool
			var err error
			if mounted, up, err = s.reg.MountBlob(ctx, s.opts.Repo, known.Digest, from); err != nil {
				return layerResult{}, err
			}
			if mounted {
				s.mounted.Add(1)
				s.opts.Pushed.Add(s.opts.Host, known.Digest, s.opts.Repo)
				return layerResult{desc: known, cacheKey: it.Name}, nil
			}
		}
	}
	desc, err := s.compressAndUpload(ctx, it, up)
	if err != nil {
		return layerResult{}, err
	}
	s.opts.Pushed.addLayer(key, desc)
	return layerResult{desc: desc, cacheKey: it.Name}, nil
}

// cached looks key up in the layer cache and confirms a hit with a HEAD.
func (s *Sink) cached(ctx context.Context, key string) (layerResult, bool) {
	if s.opts.Cache == nil {
		return layerResult{}, false
	}
	e, ok := s.opts.Cache.Lookup(key, s.opts.FiltersHash)
	if !ok || e.CompressedDigest.Validate() != nil {
		return layerResult{}, false
	}
	there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, e.CompressedDigest)
	if err != nil || !there {
		return layerResult{}, false
	}
	s.hits.Add(1)
	s.existing.Add(1)
	return layerResult{desc: v1.Descriptor{MediaType: e.MediaType, Digest: e.CompressedDigest, Size: e.CompressedSize}}, true
}

// pushCompressed copies the source's compressed blob as it is.
func (s *Sink) pushCompressed(ctx context.Context, it stage.Item, c stage.Compressed, slots chan struct{}) (layerResult, error) {
	var desc v1.Descriptor
	from := ""
	open := func(context.Context) (io.ReadCloser, error) {
		rc, _, err := c.OpenCompressed()
		return rc, err
	}
	if o, ok := it.Body.(BlobOrigin); ok {
		desc = o.CompressedDescriptor()
		if host, repo := o.Origin(); host == s.opts.Host && repo != s.opts.Repo {
			from = repo
		}
		open = o.OpenBlob
	} else {
		// Hash the blob first (a local read, in an upload slot), so that
		// a blob the destination has is not sent.
		done, err := acquire(ctx, slots)
		if err != nil {
			return layerResult{}, err
		}
		rc, mt, err := c.OpenCompressed()
		if err != nil {
			done()
			return layerResult{}, err
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		done()
		if err != nil {
			return layerResult{}, err
		}
		desc = v1.Descriptor{MediaType: mt, Digest: digest.NewDigest(digest.SHA256, h), Size: n}
	}
	got, err := s.ensureBlob(ctx, desc, open, from, slots)
	if err != nil {
		return layerResult{}, err
	}
	s.passthru.Add(1)
	return layerResult{desc: got, passthrough: true, cacheKey: it.Name}, nil
}

func bytesOpener(b []byte) transport.Opener {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// acquire takes an upload slot (none when slots is nil); done gives it back.
func acquire(ctx context.Context, slots chan struct{}) (done func(), err error) {
	if slots == nil {
		return func() {}, nil
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ensureBlob makes sure the destination has blob desc: HEAD, else a mount
// (from the source's repository on the same registry, or from a repository
// this run pushed it to), else an upload of what open gives.
//
// A blob the registry already holds in another repository is mounted at
// once, without the run-wide claim and without an upload slot: a mount
// moves no data, and many images of a bulk run mount the same base layers
// at the same moment, which the claim would put in single file, a round
// trip each. The claim is for what may have to be uploaded, so that two
// sinks never send the same blob.
func (s *Sink) ensureBlob(ctx context.Context, desc v1.Descriptor, open transport.Opener, from string, slots chan struct{}) (v1.Descriptor, error) {
	if s.opts.Pushed.in(s.opts.Host, desc.Digest, s.opts.Repo) {
		return s.had(desc), nil
	}
	if from == "" {
		from, _ = s.opts.Pushed.elsewhere(s.opts.Host, desc.Digest, s.opts.Repo)
	}
	var up *transport.Upload
	if from != "" {
		// A HEAD sent ahead that has answered is used; the mount answers
		// for a blob the repository has too, so none is waited for.
		if s.headAnswered(desc.Digest) {
			there, err := s.exists(ctx, desc.Digest)
			if err != nil {
				return desc, err
			}
			if there {
				return s.had(desc), nil
			}
		}
		there, u, err := s.mount(ctx, desc, from)
		if err != nil || there {
			return desc, err
		}
		up = u // the registry would not mount it: upload into this session
	}
	release, err := s.opts.Pushed.claim(ctx, s.opts.Host, desc.Digest)
	if err != nil {
		return desc, err
	}
	defer release()
	// A HEAD sent ahead may predate another sink of the run pushing the
	// blob to this repository while this one waited for its claim.
	if s.opts.Pushed.in(s.opts.Host, desc.Digest, s.opts.Repo) {
		return s.had(desc), nil
	}
	if up == nil {
		if from, _ = s.opts.Pushed.elsewhere(s.opts.Host, desc.Digest, s.opts.Repo); from == "" {
			there, err := s.exists(ctx, desc.Digest)
			if err != nil {
				return desc, err
			}
			if there {
				return s.had(desc), nil
			}
		}
	}
	done, err := acquire(ctx, slots)
	if err != nil {
		return desc, err
	}
	defer done()
	if up == nil && from != "" {
		// Pushed by another sink while this one waited for the claim.
		var there bool
		if there, up, err = s.mount(ctx, desc, from); err != nil || there {
			return desc, err
		}
	}
	r, err := s.put(ctx, open, transport.BlobPut{Digest: desc.Digest, Size: desc.Size, Session: up})
	if err != nil {
		return desc, err
	}
	if r.Digest != desc.Digest || r.Size != desc.Size {
		return desc, fmt.Errorf("sent %s (%d bytes), expected %s (%d bytes): %w", r.Digest, r.Size, desc.Digest, desc.Size, ErrDigestMismatch)
	}
	s.opts.Pushed.Add(s.opts.Host, desc.Digest, s.opts.Repo)
	return desc, nil
}

// mount mounts blob desc from repository from, unless the output mounted
// it ahead meanwhile (one at a time: see Pushed.claimIn): there is true
// when the repository has it now; otherwise up is the session the
// registry opened instead.
func (s *Sink) mount(ctx context.Context, desc v1.Descriptor, from string) (there bool, up *transport.Upload, err error) {
	release, err := s.opts.Pushed.claimIn(ctx, s.opts.Host, desc.Digest, s.opts.Repo)
	if err != nil {
		return false, nil, err
	}
	defer release()
	if s.opts.Pushed.in(s.opts.Host, desc.Digest, s.opts.Repo) {
		s.had(desc)
		return true, nil, nil
	}
	mounted, up, err := s.reg.MountBlob(ctx, s.opts.Repo, desc.Digest, from)
	if err != nil {
		return false, nil, err
	}
	if mounted {
		s.mounted.Add(1)
		s.opts.Pushed.Add(s.opts.Host, desc.Digest, s.opts.Repo)
	}
	return mounted, up, nil
}

// had counts blob desc as one the repository already has (or that its
// output copied or mounted for this image before it ran: those are its
// upload and its mount).
func (s *Sink) had(desc v1.Descriptor) v1.Descriptor {
	if s.putAhead != nil {
		if n, ok := s.putAhead(desc.Digest); ok {
			if n < 0 {
				s.mounted.Add(1)
			} else {
				s.uploaded.Add(1)
				s.bytesOut.Add(n)
			}
			return desc
		}
	}
	s.existing.Add(1)
	s.opts.Pushed.Add(s.opts.Host, desc.Digest, s.opts.Repo)
	return desc
}

// compressAndUpload compresses a layer in a pipe straight into the upload.
// up is a session a failed mount attempt opened, or nil. Each open runs the
// compression from the layer's start again; it is deterministic, so a
// resumed upload continues the same bytes.
func (s *Sink) compressAndUpload(ctx context.Context, it stage.Item, up *transport.Upload) (v1.Descriptor, error) {
	compressors := pool.New().WithErrors()
	open := func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := it.Body.Open()
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		compressors.Go(func() error {
			defer rc.Close()
			zw, err := compressor(s.opts.Compression, pw)
			if err != nil {
				pw.CloseWithError(err)
				return err
			}
			_, err = io.Copy(zw, &countingReader{r: rc, n: &s.bytesIn})
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
			pw.CloseWithError(err) // nil: the reader sees EOF
			if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, errStreamClosed) {
				return nil // the reader stopped early (a resume or a failure it reports)
			}
			return err
		})
		return &pipeReader{pr}, nil
	}
	r, err := s.put(ctx, open, transport.BlobPut{Size: -1, Session: up, Check: true})
	if perr := compressors.Wait(); err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	s.opts.Pushed.Add(s.opts.Host, r.Digest, s.opts.Repo)
	return v1.Descriptor{MediaType: layerMediaType(s.opts.Compression), Digest: r.Digest, Size: r.Size}, nil
}

// put uploads what open gives through the transport's upload engine
// (transport.Registry.PutBlob), lending it a read-ahead buffer of the
// sink's pool, and counts what it did.
func (s *Sink) put(ctx context.Context, open transport.Opener, p transport.BlobPut) (transport.BlobPutResult, error) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	p.ChunkSize, p.Retries, p.Buf = s.opts.ChunkSize, s.opts.Retries, *bp
	r, err := s.reg.PutBlob(ctx, s.opts.Repo, open, p)
	if err != nil {
		return r, err
	}
	if r.Existing {
		s.existing.Add(1)
	} else {
		s.uploaded.Add(1)
		s.bytesOut.Add(r.Size)
	}
	return r, nil
}

var errStreamClosed = errors.New("upload stream closed")

// pipeReader stops its writer when closed before the end.
type pipeReader struct{ *io.PipeReader }

func (p *pipeReader) Close() error { return p.CloseWithError(errStreamClosed) }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
