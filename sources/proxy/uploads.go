package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/transport"
)

// uploadHeaders describe upload id of name holding n bytes.
func uploadHeaders(w http.ResponseWriter, name, id string, n int64) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(n-1, 0)))
	w.Header().Set("Content-Length", "0")
}

// blobCreated answers 201 for blob d of name.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadDigest reads ?digest= of a closing PUT (or a single POST): only
// sha256, the proxy's own hash.
func uploadDigest(r *http.Request) (digest.Digest, error) {
	d, err := digest.Parse(r.URL.Query().Get("digest"))
	if err != nil {
		return "", fmt.Errorf("missing or invalid digest: %w", err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %s: only sha256 is supported", d)
	}
	return d, nil
}

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository
// mount (?mount=&from=) of a blob the proxy holds in from, a whole blob in
// one request (?digest=), or a new upload session.
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		if d, err := digest.Parse(m); err == nil && q.Get("from") != "" && s.store.mount(name, q.Get("from"), d) {
			blobCreated(w, name, d)
			return
		}
		// Otherwise an upload session, as the spec allows.
	}
	id, err := s.store.start(name)
	if err != nil {
		regError(w, http.StatusServiceUnavailable, "UNAVAILABLE", err.Error())
		return
	}
	if q.Get("digest") != "" {
		s.finishUpload(w, r, name, id, -1)
		return
	}
	uploadHeaders(w, name, id, 0)
	w.WriteHeader(http.StatusAccepted)
}

// contentRange reads a chunk's Content-Range ("START-END", inclusive) and
// checks it against Content-Length. No header gives -1: append.
func contentRange(r *http.Request) (start int64, status int, code string, err error) {
	cr := strings.TrimSpace(r.Header.Get("Content-Range"))
	if cr == "" {
		return -1, 0, "", nil
	}
	a, b, ok := strings.Cut(strings.TrimPrefix(cr, "bytes "), "-")
	b, _, _ = strings.Cut(b, "/")
	s, err1 := strconv.ParseInt(a, 10, 64)
	e, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || s < 0 {
		return 0, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", fmt.Errorf("invalid Content-Range %q", cr)
	}
	if e < s {
		return 0, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", fmt.Errorf("Content-Range %q ends before it starts", cr)
	}
	if r.ContentLength >= 0 && r.ContentLength != e-s+1 {
		return 0, http.StatusBadRequest, "SIZE_INVALID", fmt.Errorf("Content-Range %q for %d bytes", cr, r.ContentLength)
	}
	return s, 0, "", nil
}

// writeChunk appends r's body to upload id at the offset its
// Content-Range names; on failure it has answered.
func (s *Server) writeChunk(w http.ResponseWriter, r *http.Request, name, id string, at int64) (int64, bool) {
	n, err := s.store.write(name, id, at, r.Body)
	switch {
	case err == nil:
		return n, true
	case errors.Is(err, errUploadUnknown):
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
	case errors.Is(err, errRange):
		// Out of order, or a retry of a chunk received already: nothing
		// appended; Range says where to go on.
		uploadHeaders(w, name, id, n)
		w.Header().Del("Content-Length")
		regError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID",
			fmt.Sprintf("chunk must start at byte %d", n))
	case errors.Is(err, errStore):
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Blob upload failed")
		regError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
	default:
		// The client's body broke off: what arrived is kept, and the
		// upload status tells the client where to resume.
		zerolog.Ctx(r.Context()).Debug().Err(err).Int64("kept", n).Msg("Blob chunk cut")
		uploadHeaders(w, name, id, n)
		w.Header().Del("Content-Length")
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
	}
	return n, false
}

// patchUpload appends a chunk. With Content-Range it must start where the
// upload ends (416 otherwise, nothing appended); without, it is appended
// (a streamed upload).
func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	at, status, code, err := contentRange(r)
	if err != nil {
		regError(w, status, code, err.Error())
		return
	}
	n, ok := s.writeChunk(w, r, name, id, at)
	if !ok {
		return
	}
	uploadHeaders(w, name, id, n)
	w.WriteHeader(http.StatusAccepted)
}

// uploadStatus answers GET of an upload: 204 with the Range received.
func (s *Server) uploadStatus(w http.ResponseWriter, _ *http.Request, name, id string) {
	n, err := s.store.status(name, id)
	if err != nil {
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
		return
	}
	uploadHeaders(w, name, id, n)
	w.WriteHeader(http.StatusNoContent)
}

// cancelUpload answers DELETE of an upload: its file goes.
func (s *Server) cancelUpload(w http.ResponseWriter, _ *http.Request, name, id string) {
	if s.store.upload(name, id) == nil {
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
		return
	}
	s.store.drop(id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// putUpload closes an upload with its last chunk (possibly empty).
func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	if s.store.upload(name, id) == nil {
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
		return
	}
	at, status, code, err := contentRange(r)
	if err != nil {
		regError(w, status, code, err.Error())
		return
	}
	s.finishUpload(w, r, name, id, at)
}

// finishUpload appends r's body to upload id and closes it under
// ?digest=; the upload is gone afterwards unless the chunk was refused.
func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, name, id string, at int64) {
	want, err := uploadDigest(r)
	if err != nil {
		s.store.drop(id)
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	if _, ok := s.writeChunk(w, r, name, id, at); !ok {
		return
	}
	n, err := s.store.finish(name, id, want)
	if err != nil {
		if errors.Is(err, errMismatch) {
			regError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		} else {
			zerolog.Ctx(r.Context()).Error().Err(err).Msg("Blob upload failed")
			regError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		}
		return
	}
	zerolog.Ctx(r.Context()).Debug().Str("digest", want.String()).Int64("bytes", n).Msg("Blob received")
	blobCreated(w, name, want)
}

// serveBlob answers HEAD and GET of a blob: one the repository received
// here, else the downstream's.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) {
	if b := s.store.get(name, d); b != nil {
		f, err := os.Open(b.Path)
		if err == nil {
			defer f.Close()
			w.Header().Set("Docker-Content-Digest", d.String())
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Etag", `"`+d.String()+`"`)
			http.ServeContent(w, r, "", zeroTime, f) // HEAD and Range requests too
			return
		}
		// Deleted meanwhile: ask the downstream.
	}
	s.forward(w, r, "/v2/"+s.downRepo(name)+"/blobs/"+d.String(), name)
}

// deleteBlob forwards the DELETE to the downstream and forgets the
// repository's copy here: 202 when either held it, 405 when the
// downstream does not delete.
func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) {
	resp, err := s.downstream(r, http.MethodDelete, "/v2/"+s.downRepo(name)+"/blobs/"+d.String(), nil)
	if err != nil {
		regError(w, http.StatusBadGateway, "UNKNOWN", err.Error())
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent, http.StatusNotFound:
		local := s.store.unlink(name, d)
		if resp.StatusCode == http.StatusNotFound && !local {
			relay(w, r, resp, name, s.downRepo(name))
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	default:
		relay(w, r, resp, name, s.downRepo(name))
	}
}

// copyUpload sends blob b to the downstream repository unless it is there.
func (s *Server) copyUpload(r *http.Request, repo string, b *blob) error {
	ctx := r.Context()
	there, _, err := s.down.BlobExists(ctx, repo, b.Digest)
	if err != nil || there {
		return err
	}
	open := func(context.Context) (io.ReadCloser, error) { return os.Open(b.Path) }
	_, err = s.down.PutBlob(ctx, repo, open, transport.BlobPut{Digest: b.Digest, Size: b.Size})
	return err
}
