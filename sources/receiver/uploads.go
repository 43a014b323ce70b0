package receiver

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/transport"
)

const copyBuffer = 1 << 20

// session is an upload in progress: its repository, the bytes received
// and their running sha256, and the ingest's Upload they went to.
type session struct {
	id   string
	name string

	mu sync.Mutex // serializes the requests of the upload
	up Upload     // nil once ended
	h  hash.Hash
	n  int64
	// last is when a request of the upload last ended (unix ns); busy
	// while one runs. An upload idle longer than Options.UploadIdle is
	// dropped.
	last atomic.Int64
	busy atomic.Int32
}

// end aborts the upload for why, unless it ended already; s.mu is held.
func (s *session) end(why error) error {
	if s.up == nil {
		return nil
	}
	up := s.up
	s.up = nil
	return up.Abort(why)
}

// ingestError is an Upload's failure (Write or Commit), as opposed to the
// client's body breaking off.
type ingestError struct{ err error }

func (e *ingestError) Error() string { return e.err.Error() }
func (e *ingestError) Unwrap() error { return e.err }

var errIdle = errors.New("blob upload left idle")

// start opens a new upload in repository name, and drops the uploads
// left idle longer than the idle bound (clients that gave up).
func (rc *Receiver) start(name string) (*session, error) {
	now := rc.now()
	var stale []*session
	rc.mu.Lock()
	if rc.closed {
		rc.mu.Unlock()
		return nil, ErrClosed
	}
	for k, o := range rc.uploads {
		if rc.opts.UploadIdle > 0 && o.busy.Load() == 0 && now.Sub(time.Unix(0, o.last.Load())) > rc.opts.UploadIdle {
			delete(rc.uploads, k)
			stale = append(stale, o)
		}
	}
	up, err := rc.opts.Ingest.Begin(name)
	if err != nil {
		rc.mu.Unlock()
		return nil, err
	}
	s := &session{id: newUUID(), name: name, up: up, h: sha256.New()}
	s.last.Store(now.UnixNano())
	rc.uploads[s.id] = s
	rc.mu.Unlock()
	for _, o := range stale {
		o.mu.Lock()
		_ = o.end(errIdle)
		o.mu.Unlock()
	}
	return s, nil
}

// lookup returns upload id of repository name, or nil.
func (rc *Receiver) lookup(name, id string) *session {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if s := rc.uploads[id]; s != nil && s.name == name {
		return s
	}
	return nil
}

// forget removes upload id from the table.
func (rc *Receiver) forget(id string) {
	rc.mu.Lock()
	delete(rc.uploads, id)
	rc.mu.Unlock()
}

// drop forgets upload s and aborts it for why.
func (rc *Receiver) drop(s *session, why error) {
	rc.forget(s.id)
	s.mu.Lock()
	_ = s.end(why)
	s.mu.Unlock()
}

// use marks s busy until the returned func is called, which records the
// time: an upload in use is never dropped as idle.
func (rc *Receiver) use(s *session) (done func()) {
	s.busy.Add(1)
	return func() {
		s.last.Store(rc.now().UnixNano())
		s.busy.Add(-1)
	}
}

// write appends body to upload s and returns the bytes it holds. With at
// >= 0 the chunk must start there (errRange otherwise, nothing appended).
// A failed read of body keeps the bytes before it with Options.KeepCut,
// and ends the upload otherwise; a failed Write of the ingest
// (ingestError) ends it.
func (rc *Receiver) write(s *session, at int64, body io.Reader) (int64, error) {
	defer rc.use(s)()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up == nil {
		return 0, errUploadUnknown // ended meanwhile
	}
	if at >= 0 && at != s.n {
		return s.n, errRange
	}
	buf := make([]byte, copyBuffer)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := s.up.Write(buf[:n]); err != nil {
				rc.forget(s.id)
				_ = s.end(err)
				return s.n, &ingestError{fmt.Errorf("blob upload %s: %w", s.id, err)}
			}
			s.h.Write(buf[:n])
			s.n += int64(n)
		}
		if rerr == io.EOF {
			return s.n, nil
		}
		if rerr != nil {
			err := fmt.Errorf("blob upload %s: %w", s.id, rerr)
			if !rc.opts.KeepCut {
				rc.forget(s.id)
				_ = s.end(err)
			}
			return s.n, err
		}
	}
}

// finish ends upload s: its content must have digest want; the ingest
// then commits it. The upload is gone either way.
func (rc *Receiver) finish(s *session, want digest.Digest) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc.forget(s.id)
	if s.up == nil {
		return 0, errUploadUnknown // ended meanwhile
	}
	up := s.up
	s.up = nil
	if got := digest.NewDigest(digest.SHA256, s.h); got != want {
		err := fmt.Errorf("blob upload %s: got %s, want %s: %w", s.id, got, want, errMismatch)
		_ = up.Abort(err)
		return 0, err
	}
	if err := up.Commit(want, s.n); err != nil {
		return 0, &ingestError{fmt.Errorf("blob upload %s: %w", s.id, err)}
	}
	return s.n, nil
}

// routeUpload routes a request under /v2/NAME/blobs/uploads/.
func (rc *Receiver) routeUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	switch {
	case r.Method == http.MethodPost && id == "":
		rc.startUpload(w, r, name)
	case id == "":
		Allow(w, r, http.MethodPost)
	case r.Method == http.MethodPatch:
		rc.patchUpload(w, r, name, id)
	case r.Method == http.MethodPut:
		rc.putUpload(w, r, name, id)
	case r.Method == http.MethodGet:
		rc.uploadStatus(w, name, id)
	case r.Method == http.MethodDelete:
		rc.cancelUpload(w, name, id)
	default:
		Allow(w, r, http.MethodPatch, http.MethodPut, http.MethodGet, http.MethodDelete)
	}
}

// refuse answers an ingest's failure: its own storage 500, a close 503,
// anything else a refusal of the content.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrClosed):
		WriteError(w, http.StatusServiceUnavailable, transport.CodeUnavailable, err.Error())
	case errors.Is(err, ErrStorage):
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Blob upload failed")
		WriteError(w, http.StatusInternalServerError, transport.CodeUnknown, err.Error())
	default:
		zerolog.Ctx(r.Context()).Debug().Err(err).Msg("Blob upload refused")
		WriteError(w, http.StatusBadRequest, transport.CodeBlobUploadInvalid, err.Error())
	}
}

// startUpload answers POST /v2/NAME/blobs/uploads/: a cross-repository
// mount (?mount=&from=) of a blob the ingest holds in from, a whole blob
// in one request (?digest=), or a new upload session.
func (rc *Receiver) startUpload(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		if d, err := digest.Parse(m); err == nil && q.Get("from") != "" && rc.opts.Ingest.Mount(name, q.Get("from"), d) {
			blobCreated(w, name, d)
			return
		}
		// Otherwise an upload session, as the spec allows.
	}
	s, err := rc.start(name)
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrStorage, err)
		}
		refuse(w, r, err)
		return
	}
	if q.Get("digest") != "" {
		rc.finishUpload(w, r, s, -1)
		return
	}
	uploadHeaders(w, name, s.id, 0)
	w.WriteHeader(http.StatusAccepted)
}

// writeChunk appends r's body to upload s at the offset its Content-Range
// names; on failure it has answered.
func (rc *Receiver) writeChunk(w http.ResponseWriter, r *http.Request, s *session, at int64) (int64, bool) {
	n, err := rc.write(s, at, r.Body)
	var ie *ingestError
	switch {
	case err == nil:
		return n, true
	case errors.Is(err, errUploadUnknown):
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
	case errors.Is(err, errRange):
		// Out of order, or a retry of a chunk received already: nothing
		// appended; Range says where to go on.
		uploadHeaders(w, s.name, s.id, n)
		w.Header().Del("Content-Length")
		WriteError(w, http.StatusRequestedRangeNotSatisfiable, transport.CodeBlobUploadInvalid,
			fmt.Sprintf("chunk must start at byte %d", n))
	case errors.As(err, &ie):
		refuse(w, r, err)
	case rc.opts.KeepCut:
		// The client's body broke off: what arrived is kept, and the
		// upload status tells the client where to resume.
		zerolog.Ctx(r.Context()).Debug().Err(err).Int64("kept", n).Msg("Blob chunk cut")
		uploadHeaders(w, s.name, s.id, n)
		w.Header().Del("Content-Length")
		WriteError(w, http.StatusBadRequest, transport.CodeBlobUploadInvalid, err.Error())
	default:
		zerolog.Ctx(r.Context()).Debug().Err(err).Msg("Blob upload cut")
		WriteError(w, http.StatusBadRequest, transport.CodeBlobUploadInvalid, err.Error())
	}
	return n, false
}

// patchUpload appends a chunk. With Content-Range it must start where the
// upload ends (416 otherwise, nothing appended); without, it is appended
// (a streamed upload).
func (rc *Receiver) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	s := rc.lookup(name, id)
	if s == nil {
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
		return
	}
	at, status, code, err := contentRange(r)
	if err != nil {
		WriteError(w, status, code, err.Error())
		return
	}
	n, ok := rc.writeChunk(w, r, s, at)
	if !ok {
		return
	}
	uploadHeaders(w, name, id, n)
	w.WriteHeader(http.StatusAccepted)
}

// uploadStatus answers GET of an upload: 204 with the Range received.
func (rc *Receiver) uploadStatus(w http.ResponseWriter, name, id string) {
	s := rc.lookup(name, id)
	if s == nil {
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
		return
	}
	s.mu.Lock()
	n, ended := s.n, s.up == nil
	s.mu.Unlock()
	if ended {
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
		return
	}
	uploadHeaders(w, name, id, n)
	w.WriteHeader(http.StatusNoContent)
}

// cancelUpload answers DELETE of an upload: the ingest drops it.
func (rc *Receiver) cancelUpload(w http.ResponseWriter, name, id string) {
	s := rc.lookup(name, id)
	if s == nil {
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
		return
	}
	rc.drop(s, errors.New("blob upload cancelled"))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// putUpload closes an upload with its last chunk (possibly empty).
func (rc *Receiver) putUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	s := rc.lookup(name, id)
	if s == nil {
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
		return
	}
	at, status, code, err := contentRange(r)
	if err != nil {
		WriteError(w, status, code, err.Error())
		return
	}
	rc.finishUpload(w, r, s, at)
}

// finishUpload appends r's body to upload s and closes it under ?digest=;
// the upload is gone afterwards unless the chunk was refused.
func (rc *Receiver) finishUpload(w http.ResponseWriter, r *http.Request, s *session, at int64) {
	want, err := uploadDigest(r)
	if err != nil {
		rc.drop(s, err)
		WriteError(w, http.StatusBadRequest, transport.CodeDigestInvalid, err.Error())
		return
	}
	if _, ok := rc.writeChunk(w, r, s, at); !ok {
		return
	}
	n, err := rc.finish(s, want)
	switch {
	case errors.Is(err, errUploadUnknown):
		WriteError(w, http.StatusNotFound, transport.CodeBlobUploadUnknown, "blob upload unknown")
		return
	case errors.Is(err, errMismatch):
		zerolog.Ctx(r.Context()).Debug().Err(err).Msg("Blob digest mismatch")
		WriteError(w, http.StatusBadRequest, transport.CodeDigestInvalid, err.Error())
		return
	case err != nil:
		refuse(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Debug().Str("digest", want.String()).Int64("bytes", n).Msg("Blob received")
	blobCreated(w, s.name, want)
}
