package receiver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/transport"
)

// Ingest is where a Receiver's uploads go and what it holds: each user
// plugs in its own (decompress and hash into a pipeline; keep the blob as
// sent and forward it). Its methods are called concurrently.
type Ingest interface {
	// Begin opens the destination of a new upload to repository name. It
	// is called under the Receiver's lock: it must not block.
	Begin(name string) (Upload, error)
	// Blob finds blob d as repository name holds it.
	Blob(name string, d digest.Digest) (Blob, bool)
	// Mount makes blob d, held by repository from, held by name too;
	// false when from does not hold it (the receiver then starts an
	// upload, as the spec allows).
	Mount(name, from string, d digest.Digest) bool
}

// Upload is the destination of one upload. The Receiver calls it from one
// request at a time, and calls exactly one of Commit and Abort, once.
type Upload interface {
	// Write takes the upload's next bytes. An error ends the upload (the
	// receiver then calls Abort): one wrapping ErrStorage is the ingest's
	// own failure, any other refuses the content.
	io.Writer
	// Commit ends the upload: its size bytes were checked to hash to d.
	// The ingest holds the blob afterwards. On an error it has removed
	// what it held; ErrClosed answers 503, ErrStorage 500, anything else
	// refuses the content (400 BLOB_UPLOAD_INVALID).
	Commit(d digest.Digest, size int64) error
	// Abort ends the upload without a blob, for why, and removes what it
	// held.
	Abort(why error) error
}

// Blob is a blob an Ingest holds.
type Blob struct {
	// Size is its size as pushed (HEAD's Content-Length).
	Size int64
	// Open reads it as pushed, for GET (and HEAD); nil when the ingest
	// does not keep the content (then GET is the BlobMissing hook's).
	Open func() (io.ReadSeekCloser, error)
}

// Options configure a Receiver.
type Options struct {
	// Ingest takes the uploads (required).
	Ingest Ingest
	// Manifest answers every request for manifest ref (a tag or a digest,
	// checked) of repository name; nil: 404 MANIFEST_UNKNOWN.
	Manifest func(w http.ResponseWriter, r *http.Request, name, ref string)
	// BlobMissing answers GET and HEAD of a blob the ingest does not hold
	// (or cannot open); nil: 404 BLOB_UNKNOWN.
	BlobMissing func(w http.ResponseWriter, r *http.Request, name string, d digest.Digest)
	// DeleteBlob answers DELETE of a blob; nil: 405.
	DeleteBlob func(w http.ResponseWriter, r *http.Request, name string, d digest.Digest)
	// UploadIdle is how long an unfinished upload may sit unused before
	// the next new upload drops it (a client that gave up); 0: never.
	UploadIdle time.Duration
	// KeepCut keeps the bytes of a chunk whose body broke off: the upload
	// goes on from its status's Range. Without it the upload ends.
	KeepCut bool
}

// Receiver is the push side of a registry. See the package documentation.
type Receiver struct {
	opts Options
	now  func() time.Time // the clock (tests set it)

	mu      sync.Mutex
	closed  bool
	active  sync.WaitGroup // requests in ServeHTTP
	uploads map[string]*session
}

// New makes a Receiver of opts.
func New(opts Options) *Receiver {
	if opts.Ingest == nil {
		panic("receiver: no Ingest")
	}
	return &Receiver{opts: opts, now: time.Now, uploads: map[string]*session{}}
}

// Close refuses new requests, waits for those in progress, and aborts the
// uploads left. It returns the errors of those aborts.
func (rc *Receiver) Close() error {
	rc.mu.Lock()
	rc.closed = true
	rc.mu.Unlock()
	rc.active.Wait()
	rc.mu.Lock()
	ups := rc.uploads
	rc.uploads = map[string]*session{}
	rc.mu.Unlock()
	var errs []error
	for _, s := range ups {
		s.mu.Lock()
		if err := s.end(ErrClosed); err != nil {
			errs = append(errs, err)
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// enter counts a request in, unless the receiver is closed.
func (rc *Receiver) enter() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed {
		return false
	}
	rc.active.Add(1)
	return true
}

// NamePattern is a repository name, as the distribution spec defines it.
const NamePattern = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*`

// The API's paths, and tags.
var (
	manifestsRE = regexp.MustCompile(`^/v2/(` + NamePattern + `)/manifests/([^/]+)$`)
	uploadsRE   = regexp.MustCompile(`^/v2/(` + NamePattern + `)/blobs/uploads/?([^/]*)$`)
	blobsRE     = regexp.MustCompile(`^/v2/(` + NamePattern + `)/blobs/([^/]+)$`)
	tagRE       = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ServeHTTP routes a registry request.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if !rc.enter() {
		WriteError(w, http.StatusServiceUnavailable, transport.CodeUnavailable, ErrClosed.Error())
		return
	}
	defer rc.active.Done()
	p := r.URL.Path
	zerolog.Ctx(r.Context()).Debug().Str("method", r.Method).Str("path", p).Msg("Registry request")
	var m []string
	match := func(re *regexp.Regexp) bool { m = re.FindStringSubmatch(p); return m != nil }
	switch {
	case p == "/v2/" || p == "/v2":
		if !Allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
	case match(uploadsRE):
		rc.routeUpload(w, r, m[1], m[2])
	case match(blobsRE):
		d, err := digest.Parse(m[2])
		if err != nil {
			WriteError(w, http.StatusBadRequest, transport.CodeDigestInvalid, fmt.Sprintf("invalid digest %q", m[2]))
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			rc.serveBlob(w, r, m[1], d)
		case http.MethodDelete:
			if rc.opts.DeleteBlob != nil {
				rc.opts.DeleteBlob(w, r, m[1], d)
				return
			}
			Allow(w, r, http.MethodGet, http.MethodHead)
		default:
			methods := []string{http.MethodGet, http.MethodHead}
			if rc.opts.DeleteBlob != nil {
				methods = append(methods, http.MethodDelete)
			}
			Allow(w, r, methods...)
		}
	case match(manifestsRE):
		name, ref := m[1], m[2]
		if strings.Contains(ref, ":") {
			if _, err := digest.Parse(ref); err != nil {
				WriteError(w, http.StatusBadRequest, transport.CodeDigestInvalid, fmt.Sprintf("invalid digest %q", ref))
				return
			}
		} else if !tagRE.MatchString(ref) {
			if r.Method == http.MethodPut {
				WriteError(w, http.StatusBadRequest, transport.CodeTagInvalid, fmt.Sprintf("invalid tag %q", ref))
			} else {
				WriteError(w, http.StatusNotFound, transport.CodeManifestUnknown, fmt.Sprintf("manifest unknown: invalid tag %q", ref))
			}
			return
		}
		if rc.opts.Manifest == nil {
			WriteError(w, http.StatusNotFound, transport.CodeManifestUnknown, "manifest unknown")
			return
		}
		rc.opts.Manifest(w, r, name, ref)
	case strings.HasPrefix(p, "/v2/"):
		WriteError(w, http.StatusNotFound, transport.CodeNameInvalid, "not a registry API path, or an invalid repository name")
	default:
		WriteError(w, http.StatusNotFound, transport.CodeUnsupported, "not a registry API path")
	}
}

// zeroTime: blobs have no modification time to offer.
var zeroTime time.Time

// serveBlob answers HEAD and GET of a blob the ingest holds, else the
// BlobMissing hook.
func (rc *Receiver) serveBlob(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) {
	if b, ok := rc.opts.Ingest.Blob(name, d); ok {
		switch {
		case b.Open != nil:
			f, err := b.Open()
			if err == nil {
				defer f.Close()
				w.Header().Set("Docker-Content-Digest", d.String())
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Etag", `"`+d.String()+`"`)
				http.ServeContent(w, r, "", zeroTime, f) // HEAD and Range requests too
				return
			}
			// Removed meanwhile: as if not held.
		case r.Method == http.MethodHead:
			w.Header().Set("Docker-Content-Digest", d.String())
			w.Header().Set("Content-Length", fmt.Sprint(b.Size))
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	if rc.opts.BlobMissing != nil {
		rc.opts.BlobMissing(w, r, name, d)
		return
	}
	WriteError(w, http.StatusNotFound, transport.CodeBlobUnknown, "blob unknown")
}
