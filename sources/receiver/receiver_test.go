package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memIngest keeps blobs in memory, per repository, and records how each
// upload ended.
type memIngest struct {
	t *testing.T

	mu       sync.Mutex
	blobs    map[string]map[digest.Digest][]byte
	aborted  []string // the reasons of the uploads aborted
	begun    int
	beginErr error // Begin fails with it
	writeErr error // Write fails with it
}

func newMem(t *testing.T) *memIngest {
	return &memIngest{t: t, blobs: map[string]map[digest.Digest][]byte{}}
}

type memUpload struct {
	in    *memIngest
	repo  string
	buf   bytes.Buffer
	ended bool
}

func (in *memIngest) Begin(repo string) (Upload, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.beginErr != nil {
		return nil, in.beginErr
	}
	in.begun++
	return &memUpload{in: in, repo: repo}, nil
}

func (in *memIngest) Blob(repo string, d digest.Digest) (Blob, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	b, ok := in.blobs[repo][d]
	if !ok {
		return Blob{}, false
	}
	return Blob{Size: int64(len(b)), Open: func() (io.ReadSeekCloser, error) {
		return struct {
			io.ReadSeeker
			io.Closer
		}{bytes.NewReader(b), io.NopCloser(nil)}, nil
	}}, true
}

func (in *memIngest) Mount(repo, from string, d digest.Digest) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	b, ok := in.blobs[from][d]
	if ok {
		in.link(repo, d, b)
	}
	return ok
}

func (in *memIngest) link(repo string, d digest.Digest, b []byte) {
	if in.blobs[repo] == nil {
		in.blobs[repo] = map[digest.Digest][]byte{}
	}
	in.blobs[repo][d] = b
}

func (in *memIngest) abortedWhy() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.aborted...)
}

func (u *memUpload) Write(p []byte) (int, error) {
	if u.ended {
		u.in.t.Error("Write after the upload ended")
	}
	u.in.mu.Lock()
	err := u.in.writeErr
	u.in.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return u.buf.Write(p)
}

func (u *memUpload) Commit(d digest.Digest, size int64) error {
	if u.ended {
		u.in.t.Error("Commit after the upload ended")
	}
	u.ended = true
	if digest.FromBytes(u.buf.Bytes()) != d || int64(u.buf.Len()) != size {
		u.in.t.Errorf("Commit(%s, %d) of %d bytes hashing to %s", d, size, u.buf.Len(), digest.FromBytes(u.buf.Bytes()))
	}
	u.in.mu.Lock()
	defer u.in.mu.Unlock()
	u.in.link(u.repo, d, u.buf.Bytes())
	return nil
}

func (u *memUpload) Abort(why error) error {
	if u.ended {
		u.in.t.Error("Abort after the upload ended")
	}
	u.ended = true
	u.in.mu.Lock()
	defer u.in.mu.Unlock()
	u.in.aborted = append(u.in.aborted, why.Error())
	return nil
}

// brokenReader gives r, then err instead of EOF: a body whose connection
// broke.
type brokenReader struct {
	r   io.Reader
	err error
}

func (b *brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, b.err
	}
	return n, err
}

// TestSessions: a chunk must start where the upload ends, an upload is
// seen only under its repository, bytes before a broken body are kept
// with KeepCut and end the upload without, and uploads idle past the
// bound are aborted by the next start.
func TestSessions(t *testing.T) {
	in := newMem(t)
	rc := New(Options{Ingest: in, UploadIdle: time.Hour, KeepCut: true})
	now := time.Unix(1000, 0)
	rc.now = func() time.Time { return now }
	defer rc.Close()

	idle, err := rc.start("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.write(idle, -1, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if rc.lookup("b", idle.id) != nil || rc.lookup("a", idle.id) != idle {
		t.Error("an upload must be found under its repository only")
	}
	if n, err := rc.write(idle, 0, strings.NewReader("abc")); !errors.Is(err, errRange) || n != 3 {
		t.Errorf("chunk sent again: %d %v, want errRange at 3", n, err)
	}
	broken := &brokenReader{strings.NewReader("de"), errors.New("connection reset")}
	if n, err := rc.write(idle, 3, broken); err == nil || n != 5 {
		t.Errorf("broken chunk: %d %v, want an error with 5 bytes kept", n, err)
	}
	if idle.n != 5 || idle.up.(*memUpload).buf.String() != "abcde" {
		t.Errorf("after the broken chunk: %d bytes, ingest has %q", idle.n, idle.up.(*memUpload).buf.String())
	}

	// Idle past the bound: the next start aborts it.
	now = now.Add(2 * time.Hour)
	if _, err := rc.start("a"); err != nil {
		t.Fatal(err)
	}
	if rc.lookup("a", idle.id) != nil {
		t.Error("idle upload not dropped")
	}
	if diff := cmp.Diff([]string{errIdle.Error()}, in.abortedWhy()); diff != "" {
		t.Errorf("aborted (-want +got):\n%s", diff)
	}

	// Without KeepCut a broken body ends the upload.
	strict := New(Options{Ingest: in})
	defer strict.Close()
	s, err := strict.start("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.write(s, -1, &brokenReader{strings.NewReader("de"), errors.New("connection reset")}); err == nil {
		t.Fatal("broken chunk accepted")
	}
	if strict.lookup("a", s.id) != nil || len(in.abortedWhy()) != 2 {
		t.Errorf("a cut upload without KeepCut must end: aborted %q", in.abortedWhy())
	}
}

// errCode reads the code of a distribution error body.
func errCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb struct {
		Errors []transport.ErrorDetail `json:"errors"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) != 1 {
		t.Fatalf("error body %q: %v", body, err)
	}
	return eb.Errors[0].Code
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, h http.Handler, method, target string, hdr map[string]string, body string) answer {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Header().Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("%s %s: no Docker-Distribution-API-Version", method, target)
	}
	return answer{w.Code, w.Header(), w.Body.Bytes()}
}

// TestProtocol drives the upload protocol through the handler.
func TestProtocol(t *testing.T) {
	in := newMem(t)
	rc := New(Options{Ingest: in, KeepCut: true})
	defer rc.Close()
	blob := "0123456789"
	d := digest.FromString(blob)

	a := call(t, rc, http.MethodGet, "/v2/", nil, "")
	if a.status != 200 || string(a.body) != "{}" {
		t.Errorf("GET /v2/: %d %q", a.status, a.body)
	}
	if a := call(t, rc, http.MethodHead, "/v2/app/blobs/"+d.String(), nil, ""); a.status != 404 {
		t.Errorf("HEAD before upload: %d", a.status)
	}
	a = call(t, rc, http.MethodPost, "/v2/app/blobs/uploads/", nil, "")
	loc := a.header.Get("Location")
	if a.status != 202 || !strings.HasPrefix(loc, "/v2/app/blobs/uploads/") || a.header.Get("Range") != "0-0" ||
		a.header.Get("Docker-Upload-UUID") != strings.TrimPrefix(loc, "/v2/app/blobs/uploads/") {
		t.Fatalf("POST: %d %v", a.status, a.header)
	}
	if a := call(t, rc, http.MethodPatch, loc, map[string]string{"Content-Range": "0-3"}, "0123"); a.status != 202 || a.header.Get("Range") != "0-3" {
		t.Fatalf("PATCH 0-3: %d %v", a.status, a.header)
	}
	// Sent again: refused, nothing appended, Range says where to go on.
	if a := call(t, rc, http.MethodPatch, loc, map[string]string{"Content-Range": "0-3"}, "0123"); a.status != 416 || a.header.Get("Range") != "0-3" {
		t.Errorf("PATCH 0-3 again: %d %v", a.status, a.header)
	}
	if a := call(t, rc, http.MethodPatch, loc, map[string]string{"Content-Range": "4-9"}, "45"); a.status != 400 || errCode(t, a.body) != transport.CodeSizeInvalid {
		t.Errorf("PATCH with a range longer than its body: %d %s", a.status, a.body)
	}
	if a := call(t, rc, http.MethodGet, loc, nil, ""); a.status != 204 || a.header.Get("Range") != "0-3" {
		t.Errorf("upload status: %d %v", a.status, a.header)
	}
	if a := call(t, rc, http.MethodPatch, "/v2/other/blobs/uploads/"+strings.TrimPrefix(loc, "/v2/app/blobs/uploads/"), nil, "x"); a.status != 404 ||
		errCode(t, a.body) != transport.CodeBlobUploadUnknown {
		t.Errorf("PATCH under another repository: %d %s", a.status, a.body)
	}
	a = call(t, rc, http.MethodPut, loc+"?digest="+d.String(), nil, "456789")
	if a.status != 201 || a.header.Get("Docker-Content-Digest") != d.String() || a.header.Get("Location") != "/v2/app/blobs/"+d.String() {
		t.Fatalf("PUT: %d %v %s", a.status, a.header, a.body)
	}
	if a := call(t, rc, http.MethodPut, loc+"?digest="+d.String(), nil, ""); a.status != 404 {
		t.Errorf("PUT of a finished upload: %d", a.status)
	}
	a = call(t, rc, http.MethodHead, "/v2/app/blobs/"+d.String(), nil, "")
	if a.status != 200 || a.header.Get("Content-Length") != "10" || a.header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("HEAD: %d %v", a.status, a.header)
	}
	if a := call(t, rc, http.MethodGet, "/v2/app/blobs/"+d.String(), map[string]string{"Range": "bytes=2-4"}, ""); a.status != 206 || string(a.body) != "234" {
		t.Errorf("GET range: %d %q", a.status, a.body)
	}
	if a := call(t, rc, http.MethodGet, "/v2/other/blobs/"+d.String(), nil, ""); a.status != 404 || errCode(t, a.body) != transport.CodeBlobUnknown {
		t.Errorf("GET from another repository: %d %s", a.status, a.body)
	}
	if a := call(t, rc, http.MethodDelete, "/v2/app/blobs/"+d.String(), nil, ""); a.status != 405 || a.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE of a blob without the hook: %d %v", a.status, a.header)
	}

	// Mount from a repository that holds it; else an upload session.
	a = call(t, rc, http.MethodPost, "/v2/other/blobs/uploads/?mount="+d.String()+"&from=app", nil, "")
	if a.status != 201 || a.header.Get("Location") != "/v2/other/blobs/"+d.String() {
		t.Errorf("mount: %d %v", a.status, a.header)
	}
	if a := call(t, rc, http.MethodPost, "/v2/third/blobs/uploads/?mount="+d.String()+"&from=nowhere", nil, ""); a.status != 202 {
		t.Errorf("mount from a repository without it: %d, want a session", a.status)
	}

	// A whole blob in one POST.
	one := digest.FromString("one")
	if a := call(t, rc, http.MethodPost, "/v2/app/blobs/uploads/?digest="+one.String(), nil, "one"); a.status != 201 {
		t.Errorf("single POST: %d %s", a.status, a.body)
	}
	if _, ok := in.Blob("app", one); !ok {
		t.Error("single POST: blob not committed")
	}

	// Refusals of the final PUT end the upload.
	for _, tc := range []struct {
		name, query, body, code string
	}{
		{"mismatch", "?digest=" + digest.FromString("other").String(), "abc", transport.CodeDigestInvalid},
		{"no digest", "", "abc", transport.CodeDigestInvalid},
		{"sha512", "?digest=" + digest.SHA512.FromString("abc").String(), "abc", transport.CodeDigestInvalid},
	} {
		loc := call(t, rc, http.MethodPost, "/v2/app/blobs/uploads/", nil, "").header.Get("Location")
		before := len(in.abortedWhy())
		if a := call(t, rc, http.MethodPut, loc+tc.query, nil, tc.body); a.status != 400 || errCode(t, a.body) != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, a.status, a.body, tc.code)
		}
		if len(in.abortedWhy()) != before+1 {
			t.Errorf("%s: upload not aborted", tc.name)
		}
		if a := call(t, rc, http.MethodGet, loc, nil, ""); a.status != 404 {
			t.Errorf("%s: upload still there: %d", tc.name, a.status)
		}
	}

	// DELETE cancels an upload.
	loc = call(t, rc, http.MethodPost, "/v2/app/blobs/uploads/", nil, "").header.Get("Location")
	if a := call(t, rc, http.MethodDelete, loc, nil, ""); a.status != 204 {
		t.Errorf("DELETE of an upload: %d", a.status)
	}
	if a := call(t, rc, http.MethodDelete, loc, nil, ""); a.status != 404 {
		t.Errorf("DELETE of a cancelled upload: %d", a.status)
	}
}

// TestIngestFailures: the ingest's errors answer 400, 500 or 503 and end
// the upload.
func TestIngestFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		begin, put error
		status     int
		code       string
	}{
		{name: "content refused", put: errors.New("gzip: invalid header"), status: 400, code: transport.CodeBlobUploadInvalid},
		{name: "disk full", put: fmt.Errorf("%w: no space left on device", ErrStorage), status: 500, code: transport.CodeUnknown},
		{name: "closed", begin: ErrClosed, status: 503, code: transport.CodeUnavailable},
		{name: "begin fails", begin: errors.New("too many open files"), status: 500, code: transport.CodeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newMem(t)
			rc := New(Options{Ingest: in, KeepCut: true})
			defer rc.Close()
			in.beginErr, in.writeErr = tc.begin, tc.put
			a := call(t, rc, http.MethodPost, "/v2/app/blobs/uploads/", nil, "")
			if tc.begin != nil {
				if a.status != tc.status || errCode(t, a.body) != tc.code {
					t.Errorf("POST: %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
				}
				return
			}
			loc := a.header.Get("Location")
			if a := call(t, rc, http.MethodPatch, loc, nil, "data"); a.status != tc.status || errCode(t, a.body) != tc.code {
				t.Errorf("PATCH: %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if len(in.abortedWhy()) != 1 {
				t.Errorf("aborted %q, want the upload", in.abortedWhy())
			}
			if a := call(t, rc, http.MethodGet, loc, nil, ""); a.status != 404 {
				t.Errorf("upload after the failure: %d, want gone", a.status)
			}
		})
	}
}

// TestRoutes: references are checked before the Manifest hook, unknown
// paths and methods are refused.
func TestRoutes(t *testing.T) {
	var got []string
	rc := New(Options{Ingest: newMem(t), Manifest: func(w http.ResponseWriter, r *http.Request, name, ref string) {
		got = append(got, r.Method+" "+name+" "+ref)
		w.WriteHeader(http.StatusTeapot)
	}})
	defer rc.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/v2/a/b/manifests/v1", 418, ""},
		{http.MethodPut, "/v2/a/manifests/" + digest.FromString("m").String(), 418, ""},
		{http.MethodGet, "/v2/a/manifests/sha256:nothex", 400, transport.CodeDigestInvalid},
		{http.MethodPut, "/v2/a/manifests/-bad", 400, transport.CodeTagInvalid},
		{http.MethodGet, "/v2/a/manifests/-bad", 404, transport.CodeManifestUnknown},
		{http.MethodGet, "/v2/a/blobs/nodigest", 400, transport.CodeDigestInvalid},
		{http.MethodPost, "/v2/a/blobs/" + digest.FromString("b").String(), 405, transport.CodeUnsupported},
		{http.MethodPut, "/v2/a/blobs/uploads/", 405, transport.CodeUnsupported},
		{http.MethodPost, "/v2/", 405, transport.CodeUnsupported},
		{http.MethodGet, "/v2/UPPER/manifests/v1", 404, transport.CodeNameInvalid},
		{http.MethodGet, "/other", 404, transport.CodeUnsupported},
	} {
		a := call(t, rc, tc.method, tc.path, nil, "")
		if a.status != tc.status || (tc.code != "" && errCode(t, a.body) != tc.code) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, a.status, a.body, tc.status, tc.code)
		}
	}
	want := []string{"GET a/b v1", "PUT a " + digest.FromString("m").String()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest hook calls (-want +got):\n%s", diff)
	}
}

// TestClose: Close aborts the uploads in progress; requests after it are
// refused.
func TestClose(t *testing.T) {
	in := newMem(t)
	rc := New(Options{Ingest: in})
	loc := call(t, rc, http.MethodPost, "/v2/app/blobs/uploads/", nil, "").header.Get("Location")
	call(t, rc, http.MethodPatch, loc, nil, "partial")
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{ErrClosed.Error()}, in.abortedWhy()); diff != "" {
		t.Errorf("aborted (-want +got):\n%s", diff)
	}
	if a := call(t, rc, http.MethodGet, "/v2/", nil, ""); a.status != 503 || errCode(t, a.body) != transport.CodeUnavailable {
		t.Errorf("request after Close: %d %s", a.status, a.body)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// FuzzContentRange: any header parses without panic; an accepted range
// starts at 0 or later and matches the body's length.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"0-9", "bytes 5-9/10", "9-0", "-1-3", "a-b", "", "0-", "1-1"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, cr string, length int64) {
		r := httptest.NewRequest(http.MethodPatch, "/v2/a/blobs/uploads/x", nil)
		r.Header.Set("Content-Range", cr)
		r.ContentLength = length
		at, status, code, err := contentRange(r)
		if err != nil {
			if status == 0 || code == "" {
				t.Fatalf("%q: error %v without a status and code", cr, err)
			}
			return
		}
		if strings.TrimSpace(cr) != "" && at < 0 {
			t.Fatalf("%q: accepted at %d", cr, at)
		}
	})
}
