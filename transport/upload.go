package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
)

// Upload is one blob upload session (POST, then PATCH chunks and a final
// PUT, or one monolithic PUT), opened and driven by PutBlob; MountBlob
// returns one when the registry opens it instead of mounting. It is for one
// goroutine.
type Upload struct {
	r    *Registry
	repo string
	loc  string // absolute URL of the session, as the registry last gave it
	off  int64  // bytes the registry has
}

// startUpload opens an upload session in repo. With mount and from set it
// asks for a cross-repository mount first: mounted is true when the
// registry mounted the blob (201) and there is nothing to upload; a 202
// without mounting gives a session to upload into as usual.
func (r *Registry) startUpload(ctx context.Context, repo string, mount digest.Digest, from string) (up *Upload, mounted bool, err error) {
	what := fmt.Sprintf("start blob upload to %s/%s", r.host, repo)
	u := r.URL("/v2/" + repo + "/blobs/uploads/")
	scope := pushScope(repo)
	if mount != "" && from != "" {
		u += "?mount=" + url.QueryEscape(mount.String()) + "&from=" + url.QueryEscape(from)
		scope += " repository:" + from + ":pull"
		what = fmt.Sprintf("mount blob %s from %s into %s/%s", mount, from, r.host, repo)
	}
	resp, err := r.Do(ctx, Request{Method: http.MethodPost, URL: u, Scope: scope})
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		if mount != "" {
			r.t.c.mounts.Add(1)
			return nil, true, nil
		}
	case http.StatusAccepted, http.StatusOK:
	default:
		return nil, false, statusError(what, resp)
	}
	loc, problem := location(resp)
	if problem != "" {
		return nil, false, protocolError(what, resp, problem)
	}
	return &Upload{r: r, repo: repo, loc: loc}, false, nil
}

// Cancel ends a session that will not be used (DELETE, as the
// distribution spec says); a registry that has forgotten it already (404)
// is not an error. Registries also expire sessions left open.
func (up *Upload) Cancel(ctx context.Context) error {
	resp, err := up.r.Do(ctx, Request{Method: http.MethodDelete, URL: up.loc, Scope: pushScope(up.repo)})
	if err != nil {
		return fmt.Errorf("%s: cancel: %w", up.what(), err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK, http.StatusAccepted, http.StatusNotFound:
		return nil
	}
	return statusError(up.what()+": cancel", resp)
}

// location resolves a response's Location against the request's URL; a
// missing or unreadable one is a problem, described for protocolError.
func location(resp *http.Response) (loc, problem string) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", "without a Location"
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return "", fmt.Sprintf("with a bad Location %q (%v)", l, err)
	}
	return u.String(), ""
}

func (up *Upload) what() string {
	return fmt.Sprintf("upload blob to %s/%s", up.r.host, up.repo)
}

// Offset is how many bytes the registry has received.
func (up *Upload) Offset() int64 { return up.off }

// withDigest adds digest=d to the session URL.
func (up *Upload) withDigest(d digest.Digest) (string, error) {
	u, err := url.Parse(up.loc)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Put finishes the upload with the rest of the blob (p, possibly empty:
// after chunks it is the closing PUT) and its digest.
func (up *Upload) Put(ctx context.Context, d digest.Digest, p []byte) error {
	u, err := up.withDigest(d)
	if err != nil {
		return fmt.Errorf("%s: %w", up.what(), err)
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := up.r.Do(ctx, Request{
		Method: http.MethodPut, URL: u, Header: hdr, Scope: pushScope(up.repo),
		Body:          func() (io.Reader, error) { return bytes.NewReader(p), nil },
		ContentLength: int64(len(p)),
		Bulk:          len(p) > BulkMin,
	})
	if err != nil {
		return fmt.Errorf("%s: finish %s: %w", up.what(), d, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK, http.StatusAccepted, http.StatusNoContent:
		up.r.t.c.uploads.Add(1)
		return nil
	}
	return statusError(fmt.Sprintf("%s: finish %s", up.what(), d), resp)
}

// BulkMin is the body size above which an upload request goes over its
// own HTTP/1.1 connection (Request.Bulk); smaller bodies (a config, a
// manifest) share the host's HTTP/2 connection. It was 1 MiB: the layers
// below that (a bulk run's own layers, 0.8 MB each in the bench's corpus)
// then shared one HTTP/2 connection-level window, which Go's server sets
// to 1 MiB, so a dozen uploads at once moved 1 MiB per round trip in all.
const BulkMin = 8 << 10

// PutStream finishes the upload with a body of n bytes streamed from body
// (a monolithic upload after the POST). body is read once: when the request
// fails, the session may hold part of it, so the caller starts a new
// session and streams the blob again.
func (up *Upload) PutStream(ctx context.Context, d digest.Digest, body io.Reader, n int64) error {
	u, err := up.withDigest(d)
	if err != nil {
		return fmt.Errorf("%s: %w", up.what(), err)
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	once := &onceReader{r: body}
	resp, err := up.r.Do(ctx, Request{
		Method: http.MethodPut, URL: u, Header: hdr, Scope: pushScope(up.repo),
		Body: func() (io.Reader, error) {
			if once.read.Load() {
				return nil, errNotReplayable
			}
			return once, nil
		},
		ContentLength: n,
		Bulk:          n > BulkMin,
	})
	if err != nil {
		return fmt.Errorf("%s: send %s: %w", up.what(), d, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK, http.StatusAccepted, http.StatusNoContent:
		up.off = n
		up.r.t.c.uploads.Add(1)
		return nil
	}
	return statusError(fmt.Sprintf("%s: send %s", up.what(), d), resp)
}

// errNotReplayable stops the transport from retrying a streamed PATCH on
// its own: its body cannot be read twice. Patch's caller resumes instead.
var errNotReplayable = errors.New("streamed chunk cannot be re-sent as is; resume from the registry's offset")

// Patch streams one chunk from body at the current offset: n bytes (sent
// with Content-Range and Content-Length), or, with n < 0, whatever body
// gives until EOF (a streamed chunk). body is read once; when the request
// fails the caller asks Status where the upload stands, and resumes.
func (up *Upload) Patch(ctx context.Context, body io.Reader, n int64) error {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	what := fmt.Sprintf("%s: chunk at %d", up.what(), up.off)
	if n >= 0 {
		end := up.off + n - 1
		hdr.Set("Content-Range", strconv.FormatInt(up.off, 10)+"-"+strconv.FormatInt(end, 10))
		what = fmt.Sprintf("%s: chunk %d-%d", up.what(), up.off, end)
	}
	once := &onceReader{r: body}
	resp, err := up.r.Do(ctx, Request{
		Method: http.MethodPatch, URL: up.loc, Header: hdr, Scope: pushScope(up.repo),
		Body: func() (io.Reader, error) {
			// The client may open the body more than once before
			// sending it (retryablehttp peeks at its length); once a
			// byte has been read it cannot be given again.
			if once.read.Load() {
				return nil, errNotReplayable
			}
			return once, nil
		},
		ContentLength: n,
		Bulk:          n < 0 || n > BulkMin,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
		return statusError(what, resp)
	}
	if loc, problem := location(resp); problem == "" {
		up.loc = loc
	}
	if m, ok := rangeEnd(resp.Header.Get("Range")); ok {
		up.off = m
	} else if n >= 0 {
		up.off += n
	} else {
		return protocolError(what, resp, "without a Range")
	}
	return nil
}

// onceReader notes whether it has been read from.
type onceReader struct {
	r    io.Reader
	read atomic.Bool
}

func (o *onceReader) Read(p []byte) (int, error) {
	o.read.Store(true)
	return o.r.Read(p)
}

// Resumed counts an upload resumed at the registry's offset.
func (up *Upload) Resumed(ctx context.Context, off int64) {
	up.r.t.c.uploadResumes.Add(1)
	zerolog.Ctx(ctx).Debug().Int64("offset", off).Msg("Resuming blob upload")
}

// Status asks the registry how many bytes of the upload it has, and
// continues the session from there.
func (up *Upload) Status(ctx context.Context) (int64, error) {
	off, err := up.status(ctx)
	if err != nil {
		return 0, err
	}
	up.off = off
	return off, nil
}

// status asks the registry how many bytes of the upload it has.
func (up *Upload) status(ctx context.Context) (int64, error) {
	resp, err := up.r.Do(ctx, Request{Method: http.MethodGet, URL: up.loc, Scope: pushScope(up.repo)})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, statusError(up.what()+": status", resp)
	}
	if loc, problem := location(resp); problem == "" {
		up.loc = loc
	}
	h := strings.TrimSpace(resp.Header.Get("Range"))
	n, ok := rangeEnd(h)
	if !ok || h == "0-0" {
		// "0-0" is what registries say for an empty upload.
		return 0, nil
	}
	return n, nil
}

// rangeEnd reads a "0-N" (or "bytes=0-N") Range header: the registry has
// N+1 bytes.
func rangeEnd(h string) (int64, bool) {
	h = strings.TrimPrefix(strings.TrimSpace(h), "bytes=")
	_, e, ok := strings.Cut(h, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(e, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n + 1, true
}
