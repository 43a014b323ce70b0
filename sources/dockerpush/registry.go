package dockerpush

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/tempname"
)

const (
	copyBuffer  = 1 << 20
	maxManifest = 4 << 20
)

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

// upload is a blob upload in progress. Its bytes go through a pipe to a
// goroutine that decompresses them into a file as they arrive.
type upload struct {
	id string

	mu sync.Mutex // serializes the writes of PATCH and PUT requests
	pw *io.PipeWriter
	pr *io.PipeReader
	h  hash.Hash // of the compressed bytes
	n  int64

	done chan struct{} // closed when the spooler has finished
	res  blob
	err  error
}

// Write feeds the upload's compressed bytes to the spooler.
func (u *upload) Write(p []byte) (int, error) {
	n, err := u.pw.Write(p)
	u.h.Write(p[:n])
	u.n += int64(n)
	return n, err
}

// registry is the push side of a Docker Registry V2 server, enough for a
// Docker engine's push: GET /v2/, HEAD blobs, POST/PATCH/PUT blob uploads
// (monolithic or chunked), PUT manifests. Safe for concurrent requests.
type registry struct {
	tempDir string
	inflate *inflate.Inflater // set before the first request
	log     zerolog.Logger
	spools  *pool.Pool // one spooler per upload

	mu       sync.Mutex
	closed   bool
	uploads  map[string]*upload
	blobs    map[digest.Digest]*blob
	arrived  []*blob // in the order their uploads finished
	taken    int     // arrived[:taken] belong to the caller of take
	manifest []byte
	failure  error // a push the registry refused for good (a manifest list)
	// assumed are blobs HEAD reports present though never received (the
	// layers the output has, by the .digests file), mapped to their
	// DiffIDs. Set before the server starts; read only.
	assumed map[digest.Digest]digest.Digest
	changed chan struct{} // capacity 1: something arrived
}

func newRegistry(tempDir string, log zerolog.Logger) *registry {
	return &registry{
		tempDir: tempDir,
		log:     log,
		spools:  pool.New(),
		uploads: map[string]*upload{},
		blobs:   map[digest.Digest]*blob{},
		changed: make(chan struct{}, 1),
	}
}

// signal tells the waiter of Changed that something arrived. It never blocks.
func (r *registry) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Changed is signalled after a blob or the manifest arrives.
func (r *registry) Changed() <-chan struct{} { return r.changed }

// Take returns the blobs that arrived since the last call, and the manifest
// and the refusal once there is one. The caller owns the files of the blobs
// it is given.
func (r *registry) Take() (blobs []*blob, manifest []byte, failure error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	blobs = r.arrived[r.taken:]
	r.taken = len(r.arrived)
	return blobs, r.manifest, r.failure
}

// Failure is the reason the registry refused the push for good, if any.
func (r *registry) Failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failure
}

// Close ends the uploads in progress, waits for their spoolers and removes
// their files, and the files of blobs nobody took. Requests after Close
// fail. It must come after the HTTP server stopped taking requests.
func (r *registry) Close() error {
	r.mu.Lock()
	r.closed = true
	ups := r.uploads
	r.uploads = map[string]*upload{}
	left := r.arrived[r.taken:]
	r.taken = len(r.arrived)
	r.mu.Unlock()
	for _, u := range ups {
		u.pr.CloseWithError(errClosed)
		u.pw.CloseWithError(errClosed)
	}
	r.spools.Wait()
	var errs []error
	for _, u := range ups {
		if u.err == nil {
			errs = append(errs, removeFile(u.res.Path))
		}
	}
	for _, b := range left {
		errs = append(errs, removeFile(b.Path))
	}
	return errors.Join(errs...)
}

var errClosed = errors.New("embedded registry closed")

func removeFile(p string) error {
	if p == "" {
		return nil
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// ServeHTTP routes a registry request.
func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := req.URL.Path
	r.log.Debug().Str("method", req.Method).Str("path", p).Msg("Registry request")
	switch {
	case p == "/v2/" || p == "/v2":
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "{}")
	case !strings.HasPrefix(p, "/v2/"):
		w.WriteHeader(http.StatusNotFound)
	case strings.Contains(p, "/blobs/uploads"):
		repo, id, _ := strings.Cut(p, "/blobs/uploads")
		id = strings.Trim(id, "/")
		switch {
		case req.Method == http.MethodPost && id == "":
			r.startUpload(w, repo)
		case req.Method == http.MethodPatch && id != "":
			r.patchUpload(w, req, repo, id)
		case req.Method == http.MethodPut && id != "":
			r.putUpload(w, req, id)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	case strings.Contains(p, "/blobs/"):
		_, d, _ := strings.Cut(p, "/blobs/")
		if req.Method != http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		r.mu.Lock()
		b := r.blobs[digest.Digest(d)]
		r.mu.Unlock()
		if b == nil {
			if _, ok := r.assumed[digest.Digest(d)]; ok {
				// Its size is not known (the .digests file has none): the
				// engine then lists it with size 0 in the manifest, which
				// only this source reads.
				w.Header().Set("Docker-Content-Digest", d)
				w.Header().Set("Content-Length", "0")
				w.WriteHeader(http.StatusOK)
				return
			}
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Docker-Content-Digest", b.Digest.String())
		w.Header().Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.WriteHeader(http.StatusOK)
	case strings.Contains(p, "/manifests/") && req.Method == http.MethodPut:
		r.putManifest(w, req)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// regError answers with a registry error body.
func regError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (r *registry) startUpload(w http.ResponseWriter, repo string) {
	pr, pw := io.Pipe()
	u := &upload{id: newUUID(), pr: pr, pw: pw, h: sha256.New(), done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		regError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "registry closed")
		return
	}
	r.uploads[u.id] = u
	// Started under the lock so that Close, which takes the lock first,
	// waits for it.
	r.spools.Go(func() { r.spool(u) })
	r.mu.Unlock()
	w.Header().Set("Location", repo+"/blobs/uploads/"+u.id)
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Range", "0-0")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (r *registry) upload(id string) *upload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uploads[id]
}

// drop forgets upload u, ends its spooler and removes its file.
func (r *registry) drop(u *upload, why error) {
	r.mu.Lock()
	delete(r.uploads, u.id)
	r.mu.Unlock()
	u.pw.CloseWithError(why)
	<-u.done
	if u.err == nil {
		_ = removeFile(u.res.Path)
	}
}

func (r *registry) patchUpload(w http.ResponseWriter, req *http.Request, repo, id string) {
	u := r.upload(id)
	if u == nil {
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
		return
	}
	u.mu.Lock()
	_, err := io.CopyBuffer(u, req.Body, make([]byte, copyBuffer))
	n := u.n
	u.mu.Unlock()
	if err != nil {
		r.log.Debug().Err(err).Str("upload", id).Msg("Blob upload failed")
		r.drop(u, err)
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	w.Header().Set("Location", repo+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(n-1, 0)))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (r *registry) putUpload(w http.ResponseWriter, req *http.Request, id string) {
	u := r.upload(id)
	if u == nil {
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
		return
	}
	want, err := digest.Parse(req.URL.Query().Get("digest"))
	if err != nil {
		r.drop(u, fmt.Errorf("blob upload %s: digest %q: %w", id, req.URL.Query().Get("digest"), err))
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", "missing or invalid digest")
		return
	}
	u.mu.Lock()
	_, err = io.CopyBuffer(u, req.Body, make([]byte, copyBuffer))
	got := digest.NewDigest(digest.SHA256, u.h)
	size := u.n
	u.mu.Unlock()
	if err != nil {
		r.drop(u, err)
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	if got != want {
		r.log.Error().Str("want", want.String()).Str("got", got.String()).Msg("Blob digest mismatch")
		r.drop(u, fmt.Errorf("blob upload %s: %w", id, errMismatch))
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("digest mismatch: got %s", got))
		return
	}
	u.pw.Close()
	<-u.done
	r.mu.Lock()
	delete(r.uploads, id)
	r.mu.Unlock()
	if u.err != nil {
		r.log.Debug().Err(u.err).Str("digest", want.String()).Msg("Blob spool failed")
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", u.err.Error())
		return
	}
	b := u.res
	b.Digest, b.Size = want, size
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		_ = removeFile(b.Path)
		regError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "registry closed")
		return
	case r.blobs[want] != nil:
		// Pushed twice: the first copy stands.
		_ = removeFile(b.Path)
	default:
		r.blobs[want] = &b
		r.arrived = append(r.arrived, &b)
	}
	r.mu.Unlock()
	r.signal()
	r.log.Debug().Str("digest", want.String()).Int64("bytes", size).Str("compression", b.Comp).
		Str("diff_id", b.DiffID.String()).Msg("Blob received")
	w.Header().Set("Docker-Content-Digest", want.String())
	w.Header().Set("Location", "/v2/_/blobs/"+want.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

var errMismatch = errors.New("digest mismatch")

func (r *registry) putManifest(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
		return
	}
	if len(b) > maxManifest {
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest too large")
		return
	}
	var probe struct {
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
		return
	}
	if probe.Manifests != nil {
		r.mu.Lock()
		r.failure = ErrManifestList
		r.mu.Unlock()
		r.signal()
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", ErrManifestList.Error())
		return
	}
	d := digest.FromBytes(b)
	r.mu.Lock()
	r.manifest = b
	r.mu.Unlock()
	r.signal()
	r.log.Debug().Int("bytes", len(b)).Str("digest", d.String()).Msg("Manifest received")
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Location", strings.TrimSuffix(req.URL.Path, "/"))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// spool reads upload u's compressed bytes from its pipe, recognises gzip
// and zstd by their magic bytes, and writes the uncompressed content into a
// file of the temp dir while hashing it. Anything else is kept as it is.
func (r *registry) spool(u *upload) {
	defer close(u.done)
	res, err := spoolBlob(u.pr, r.tempDir, r.inflate)
	if err != nil {
		u.err = err
		u.pr.CloseWithError(err) // writers learn why
		return
	}
	u.res = res
}

// spoolBlob decompresses src into a file of tempDir. It has no context: the
// upload's pipe, closed with an error when the registry closes, ends it.
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
