package dockerpush

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/sources/receiver"
	"github.com/occystrap/occystrap/transport"
)

const maxManifest = 4 << 20

// registry is what a Docker engine pushes to: the shared push side
// (sources/receiver) with this package's ingest, which decompresses and
// hashes each upload as it streams in, and a manifest PUT. Safe for
// concurrent requests.
type registry struct {
	tempDir string
	inflate *inflate.Inflater // set before the first request
	log     zerolog.Logger
	recv    *receiver.Receiver
	spools  *pool.Pool // one spooler per upload

	mu       sync.Mutex
	closed   bool
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
	r := &registry{
		tempDir: tempDir,
		log:     log,
		spools:  pool.New(),
		blobs:   map[digest.Digest]*blob{},
		changed: make(chan struct{}, 1),
	}
	r.recv = receiver.New(receiver.Options{Ingest: r, Manifest: r.serveManifest})
	return r
}

// ServeHTTP answers a registry request, logging to the registry's logger.
func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.recv.ServeHTTP(w, req.WithContext(r.log.WithContext(req.Context())))
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

// Close ends the uploads in progress (the receiver waits for the requests
// in flight, then aborts them: their spoolers end and their files go),
// and removes the files of blobs nobody took. Requests after Close fail.
func (r *registry) Close() error {
	rerr := r.recv.Close()
	r.mu.Lock()
	r.closed = true
	left := r.arrived[r.taken:]
	r.taken = len(r.arrived)
	r.mu.Unlock()
	r.spools.Wait()
	errs := []error{rerr}
	for _, b := range left {
		errs = append(errs, removeFile(b.Path))
	}
	return errors.Join(errs...)
}

// upload is a blob upload in progress. Its bytes go through a pipe to a
// spooler goroutine that decompresses them into a file as they arrive.
type upload struct {
	r  *registry
	pr *io.PipeReader
	pw *io.PipeWriter

	done chan struct{} // closed when the spooler has finished
	res  blob
	err  error
}

// Begin starts an upload and its spooler (receiver.Ingest).
func (r *registry) Begin(string) (receiver.Upload, error) {
	pr, pw := io.Pipe()
	u := &upload{r: r, pr: pr, pw: pw, done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, receiver.ErrClosed
	}
	// Started under the lock so that Close, which takes the lock first,
	// waits for it.
	r.spools.Go(u.spool)
	return u, nil
}

// spool reads the upload's compressed bytes from its pipe and writes the
// uncompressed content into a file of the temp dir (spoolBlob).
func (u *upload) spool() {
	defer close(u.done)
	res, err := spoolBlob(u.pr, u.r.tempDir, u.r.inflate)
	if err != nil {
		u.err = err
		u.pr.CloseWithError(err) // writers learn why
		return
	}
	u.res = res
}

// Write feeds the upload's compressed bytes to the spooler; its failure
// (a blob that does not decompress) is the spooler's.
func (u *upload) Write(p []byte) (int, error) { return u.pw.Write(p) }

// Abort ends the spooler and removes its file.
func (u *upload) Abort(why error) error {
	u.pw.CloseWithError(why)
	<-u.done
	if u.err == nil {
		return removeFile(u.res.Path)
	}
	return nil
}

// Commit waits for the spooler and keeps the blob for Take (a digest
// pushed twice keeps its first copy).
func (u *upload) Commit(d digest.Digest, size int64) error {
	r := u.r
	u.pw.Close()
	<-u.done
	if u.err != nil {
		return u.err
	}
	b := u.res
	b.Digest, b.Size = d, size
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		_ = removeFile(b.Path)
		return receiver.ErrClosed
	case r.blobs[d] != nil:
		// Pushed twice: the first copy stands.
		_ = removeFile(b.Path)
	default:
		r.blobs[d] = &b
		r.arrived = append(r.arrived, &b)
	}
	r.mu.Unlock()
	r.signal()
	r.log.Debug().Str("digest", d.String()).Int64("bytes", size).Str("compression", b.Comp).
		Str("diff_id", b.DiffID.String()).Msg("Blob spooled")
	return nil
}

// Blob answers HEAD of a blob received, or assumed present (receiver.Ingest).
// The content is not kept as pushed, so GET is not served.
func (r *registry) Blob(_ string, d digest.Digest) (receiver.Blob, bool) {
	r.mu.Lock()
	b := r.blobs[d]
	r.mu.Unlock()
	if b != nil {
		return receiver.Blob{Size: b.Size}, true
	}
	if _, ok := r.assumed[d]; ok {
		// Its size is not known (the .digests file has none): the engine
		// then lists it with size 0 in the manifest, which only this
		// source reads.
		return receiver.Blob{Size: 0}, true
	}
	return receiver.Blob{}, false
}

// Mount offers no cross-repository mount: a mount request starts a plain
// upload (receiver.Ingest).
func (r *registry) Mount(string, string, digest.Digest) bool { return false }

// serveManifest answers PUT of the manifest; anything else is unknown.
func (r *registry) serveManifest(w http.ResponseWriter, req *http.Request, _, _ string) {
	if req.Method != http.MethodPut {
		receiver.WriteError(w, http.StatusNotFound, transport.CodeManifestUnknown, "manifest unknown")
		return
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		receiver.WriteError(w, http.StatusBadRequest, transport.CodeManifestInvalid, err.Error())
		return
	}
	if len(b) > maxManifest {
		receiver.WriteError(w, http.StatusBadRequest, transport.CodeManifestInvalid, "manifest too large")
		return
	}
	var probe struct {
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		receiver.WriteError(w, http.StatusBadRequest, transport.CodeManifestInvalid, err.Error())
		return
	}
	if probe.Manifests != nil {
		r.mu.Lock()
		r.failure = ErrManifestList
		r.mu.Unlock()
		r.signal()
		receiver.WriteError(w, http.StatusBadRequest, transport.CodeManifestInvalid, ErrManifestList.Error())
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
