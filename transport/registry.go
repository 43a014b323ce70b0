package transport

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
)

// RegistryOptions say how to reach one registry.
type RegistryOptions struct {
	// Insecure uses plain HTTP. Without it a registry on a loopback
	// address that answers TLS in plain HTTP is used over plain HTTP.
	Insecure bool
	// SkipVerify accepts any TLS certificate from this registry
	// (?tls_verify=false); ForceVerify verifies it whatever
	// Options.SkipVerify says (?tls_verify=true). Neither: Options decides.
	SkipVerify  bool
	ForceVerify bool
	// Username and Password override the Transport's global credentials.
	Username string
	Password string
}

// Registry is a client of one registry host. Values for the same host share
// the Transport's tokens and connections.
type Registry struct {
	t      *Transport
	host   string
	scheme string
	opts   RegistryOptions
}

// Registry returns a client for host (host[:port]).
func (t *Transport) Registry(host string, opts RegistryOptions) *Registry {
	scheme := "https"
	if opts.Insecure {
		scheme = "http"
	}
	switch {
	case opts.SkipVerify:
		t.setVerify(host, false)
	case opts.ForceVerify:
		t.setVerify(host, true)
	}
	return &Registry{t: t, host: host, scheme: scheme, opts: opts}
}

// Host is the registry's host[:port].
func (r *Registry) Host() string { return r.host }

// credentials: the registry's own, else the global ones, else Docker's
// config.json.
func (r *Registry) credentials(ctx context.Context) (string, string, bool) {
	if r.opts.Username != "" || r.opts.Password != "" {
		return r.opts.Username, r.opts.Password, true
	}
	if r.t.opts.Username != "" || r.t.opts.Password != "" {
		return r.t.opts.Username, r.t.opts.Password, true
	}
	u, p, ok, err := r.t.creds.lookup(ctx, r.host)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("registry", r.host).Msg("Ignoring Docker credentials")
		return "", "", false
	}
	if ok {
		r.t.secret(p)
		r.t.secret(basicHeader(u, p)[len("Basic "):])
	}
	return u, p, ok
}

// HasCredentials reports whether the transport's own options (flags,
// environment) or Docker's config give credentials for host.
func (t *Transport) HasCredentials(ctx context.Context, host string) bool {
	if t.opts.Username != "" || t.opts.Password != "" {
		return true
	}
	_, _, ok, err := t.creds.lookup(ctx, host)
	return ok && err == nil
}

// URL builds the URL of an API path ("/v2/...").
func (r *Registry) URL(path string) string { return r.scheme + "://" + r.host + path }

// Request is one API call.
type Request struct {
	Method string
	URL    string
	Header http.Header
	// Body, when not nil, is re-opened for every attempt; ContentLength is
	// its size (-1 if unknown).
	Body          retryablehttp.ReaderFunc
	ContentLength int64
	// Scope is the token scope the call needs, e.g. "repository:a/b:pull".
	Scope string
	// Bulk sends the request over its own HTTP/1.1 connection (a large
	// upload body) rather than the host's shared HTTP/2 one.
	Bulk bool
}

// Do sends req with authentication: a cached token (or Basic credentials)
// first, and on a 401 the challenge is answered and the request sent once
// more. The caller closes the response body.
func (r *Registry) Do(ctx context.Context, req Request) (*http.Response, error) {
	h := r.t.hostAuth(r.host)
	sent := ""
	for attempt := 0; ; attempt++ {
		auth, err := r.authorization(ctx, h, req.Scope, sent)
		if err != nil {
			return nil, err
		}
		hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range req.Header {
			hreq.Header[k] = v
		}
		if auth != "" {
			hreq.Header.Set("Authorization", auth)
		}
		if req.Body != nil {
			hreq.ContentLength = req.ContentLength
		}
		client := r.t.client
		if req.Bulk {
			client = r.t.bulkClient
		}
		resp, err := r.t.doWith(client, hreq, req.Body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, redact(req.URL), err)
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		if resp.Request != nil && resp.Request.URL.Host != hreq.URL.Host {
			final := resp.Request.URL.Host
			// A redirect target (blob storage) asks for credentials. Its
			// challenge is not this registry's: answering it would send
			// the user's credentials for this registry to a token realm
			// that host chose. Credentials for a registry go only to it and
			// to the realm named in its own challenges.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: redirected to %s, which answered 401: %w: %w", req.Method, redact(req.URL), final, ErrOtherHost, ErrUnauthorized)
		}
		cs := ParseChallenges(strings.Join(resp.Header.Values("WWW-Authenticate"), ", "))
		c, ok := pickChallenge(cs)
		if !ok {
			return nil, protocolError(req.Method+" "+redact(req.URL), resp, "without a usable challenge")
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if c.Scheme == "bearer" {
			if s := c.Params["scope"]; s != "" {
				req.Scope = strings.Join(MergeScopes(req.Scope, s), " ")
			}
		}
		h.learn(c)
		sent = auth
	}
}

func pickChallenge(cs []Challenge) (Challenge, bool) {
	for _, c := range cs {
		if c.Scheme == "bearer" {
			return c, true
		}
	}
	for _, c := range cs {
		if c.Scheme == "basic" {
			return c, true
		}
	}
	return Challenge{}, false
}

// authorization is the header value for a request of scope; stale is the
// value the registry just refused, if any.
func (r *Registry) authorization(ctx context.Context, h *hostAuth, scope, stale string) (string, error) {
	scheme, _, _ := h.state()
	switch scheme {
	case "bearer":
		tok, err := r.token(ctx, h, scope, strings.TrimPrefix(stale, "Bearer "))
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	case "basic":
		if u, p, ok := r.credentials(ctx); ok {
			return basicHeader(u, p), nil
		}
	}
	return "", nil
}

// redact drops the query of a URL (it may carry signed credentials).
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// statusError turns an unexpected response into an *Error and closes it.
func statusError(what string, resp *http.Response) error {
	return newError(what, resp)
}

// Manifest is a fetched manifest.
type Manifest struct {
	Body      []byte
	MediaType string // the Content-Type, without parameters
	Digest    digest.Digest
}

// GetManifest fetches repo's manifest ref (a tag or a digest), accepting the
// given media types. A digest reference is verified.
func (r *Registry) GetManifest(ctx context.Context, repo, ref string, accept []string) (Manifest, error) {
	what := fmt.Sprintf("fetch manifest %s from %s/%s", ref, r.host, repo)
	resp, err := r.Do(ctx, Request{
		Method: http.MethodGet,
		URL:    r.URL("/v2/" + repo + "/manifests/" + ref),
		Header: http.Header{"Accept": {strings.Join(accept, ", ")}},
		Scope:  "repository:" + repo + ":pull",
	})
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Manifest{}, statusError(what, resp)
	}
	defer resp.Body.Close()
	body, err := ReadLimited(resp.Body, MaxManifest)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", what, err)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		mt = resp.Header.Get("Content-Type")
	}
	m := Manifest{Body: body, MediaType: mt, Digest: digest.FromBytes(body)}
	if d, err := digest.Parse(ref); err == nil {
		if d.Algorithm().Available() && d.Algorithm().FromBytes(body) != d {
			return Manifest{}, fmt.Errorf("%s: got %s: %w", what, m.Digest, ErrDigestMismatch)
		}
		m.Digest = d
	}
	return m, nil
}

// Blob opens repo's blob d of size bytes (-1 if unknown) as a stream. The
// stream is verified: its last Read returns ErrDigestMismatch or
// ErrSizeMismatch rather than io.EOF when the content is wrong. A connection
// lost mid-blob (or a short body) is resumed with a Range request, up to the
// Transport's retry count, without re-reading what was already received.
func (r *Registry) Blob(ctx context.Context, repo string, d digest.Digest, size int64) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("fetch blob %q from %s/%s: %w", d, r.host, repo, err)
	}
	b := &blobReader{ctx: ctx, r: r, repo: repo, d: d, size: size, h: d.Algorithm().Hash()}
	if err := b.open(); err != nil {
		return nil, err
	}
	return b, nil
}

type blobReader struct {
	ctx     context.Context // the caller's; a blobReader lives within one call
	r       *Registry
	repo    string
	d       digest.Digest
	size    int64
	h       hash.Hash
	body    io.ReadCloser
	off     int64
	resumes int
	err     error
}

func (b *blobReader) what() string {
	return fmt.Sprintf("fetch blob %s from %s/%s", b.d, b.r.host, b.repo)
}

// open starts (or resumes at b.off) the download.
func (b *blobReader) open() error {
	hdr := http.Header{}
	if b.off > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(b.off, 10)+"-")
	}
	resp, err := b.r.Do(b.ctx, Request{
		Method: http.MethodGet,
		URL:    b.r.URL("/v2/" + b.repo + "/blobs/" + b.d.String()),
		Header: hdr,
		Scope:  "repository:" + b.repo + ":pull",
	})
	if err != nil {
		return fmt.Errorf("%s: %w", b.what(), err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if b.off > 0 {
			// The server ignored the Range: skip what we already have.
			if _, err := io.CopyN(io.Discard, resp.Body, b.off); err != nil {
				resp.Body.Close()
				return fmt.Errorf("%s: skip to %d: %w", b.what(), b.off, err)
			}
		}
	case resp.StatusCode == http.StatusPartialContent && b.off > 0:
		cr := resp.Header.Get("Content-Range")
		if !strings.HasPrefix(cr, "bytes "+strconv.FormatInt(b.off, 10)+"-") {
			return protocolError(b.what(), resp, fmt.Sprintf("with Content-Range %q to a resume at %d", cr, b.off))
		}
	default:
		return statusError(b.what(), resp)
	}
	b.body = resp.Body
	return nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		if b.body == nil {
			if err := b.open(); err != nil {
				b.err = err
				return 0, err
			}
		}
		if b.size >= 0 && int64(len(p)) > b.size-b.off+1 {
			// Never hand out more than the blob plus one byte, so an
			// over-long body is caught.
			p = p[:b.size-b.off+1]
		}
		n, err := b.body.Read(p)
		b.h.Write(p[:n])
		b.off += int64(n)
		if b.size >= 0 && b.off > b.size {
			b.err = fmt.Errorf("%s: more than %d bytes: %w", b.what(), b.size, ErrSizeMismatch)
			return 0, b.err
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && (b.size < 0 || b.off == b.size):
			got := digest.NewDigest(b.d.Algorithm(), b.h)
			if got != b.d {
				b.err = fmt.Errorf("%s: got %s: %w", b.what(), got, ErrDigestMismatch)
				return n, b.err
			}
			b.err = io.EOF
			return n, io.EOF
		}
		// A lost connection or a short body: resume where we are.
		b.body.Close()
		b.body = nil
		if b.ctx.Err() != nil {
			b.err = fmt.Errorf("%s: %w", b.what(), b.ctx.Err())
			return n, b.err
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.resumes++
		if b.resumes > max(b.r.t.opts.Retries, 1) {
			b.err = fmt.Errorf("%s: %d of %d bytes, gave up after %d resumes: %w", b.what(), b.off, b.size, b.resumes-1, err)
			return n, b.err
		}
		b.r.t.c.resumes.Add(1)
		zerolog.Ctx(b.ctx).Debug().Err(err).Str("digest", b.d.String()).Int64("offset", b.off).Msg("Resuming blob download")
		if n > 0 {
			return n, nil
		}
	}
}

func (b *blobReader) Close() error {
	if b.body != nil {
		err := b.body.Close()
		b.body = nil
		return err
	}
	return nil
}
