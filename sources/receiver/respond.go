package receiver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/transport"
)

// WriteError answers with status and a distribution error body of code
// (one of transport's Code constants) and msg, redacted.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": redact.Text(msg)}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Allow answers 405 (with Allow, UNSUPPORTED) unless r's method is one of
// methods, and reports whether it was.
func Allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	WriteError(w, http.StatusMethodNotAllowed, transport.CodeUnsupported, r.Method+" not allowed here")
	return false
}

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

// newUUID is a random (version 4) UUID: an upload's id.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// uploadDigest reads ?digest= of a closing PUT (or a single POST): only
// sha256, the receiver's own hash.
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
		return 0, http.StatusBadRequest, transport.CodeBlobUploadInvalid, fmt.Errorf("invalid Content-Range %q", cr)
	}
	if e < s {
		return 0, http.StatusRequestedRangeNotSatisfiable, transport.CodeBlobUploadInvalid, fmt.Errorf("Content-Range %q ends before it starts", cr)
	}
	if r.ContentLength >= 0 && r.ContentLength != e-s+1 {
		return 0, http.StatusBadRequest, transport.CodeSizeInvalid, fmt.Errorf("Content-Range %q for %d bytes", cr, r.ContentLength)
	}
	return s, 0, "", nil
}
