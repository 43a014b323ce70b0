package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// pushScope is the token scope of a push to repo.
func pushScope(repo string) string { return "repository:" + repo + ":pull,push" }

// BlobExists asks (HEAD) whether repo holds blob d, and its size if so.
func (r *Registry) BlobExists(ctx context.Context, repo string, d digest.Digest) (bool, int64, error) {
	what := fmt.Sprintf("check blob %s in %s/%s", d, r.host, repo)
	resp, err := r.Do(ctx, Request{
		Method: http.MethodHead,
		URL:    r.URL("/v2/" + repo + "/blobs/" + d.String()),
		Scope:  pushScope(repo),
	})
	if err != nil {
		return false, 0, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		r.t.c.existing.Add(1)
		return true, resp.ContentLength, nil
	case http.StatusNotFound:
		return false, 0, nil
	}
	return false, 0, statusError(what, resp)
}

// Ping sends GET /v2/ without credentials and learns the registry's
// authentication challenge, if any. Sent ahead of a push, it opens the
// connection (TCP, TLS) and finds the token realm while the caller has
// nothing else to send yet. Any answer is fine; only a failed request is
// an error.
func (r *Registry) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL("/v2/"), nil)
	if err != nil {
		return err
	}
	resp, err := r.t.do(req, nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", r.host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusUnauthorized {
		h := r.t.hostAuth(r.host)
		if scheme, _, _ := h.state(); scheme == "" {
			if c, ok := pickChallenge(ParseChallenges(strings.Join(resp.Header.Values("WWW-Authenticate"), ", "))); ok {
				h.learn(c)
			}
		}
	}
	return nil
}

// PutManifest pushes a manifest under ref (a tag or digest) and returns its
// digest.
func (r *Registry) PutManifest(ctx context.Context, repo, ref, mediaType string, body []byte) (digest.Digest, error) {
	what := fmt.Sprintf("push manifest %s to %s/%s", ref, r.host, repo)
	resp, err := r.Do(ctx, Request{
		Method: http.MethodPut, URL: r.URL("/v2/" + repo + "/manifests/" + ref),
		Header:        http.Header{"Content-Type": {mediaType}},
		Scope:         pushScope(repo),
		Body:          func() (io.Reader, error) { return bytes.NewReader(body), nil },
		ContentLength: int64(len(body)),
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return "", statusError(what, resp)
	}
	if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
		return d, nil
	}
	return digest.FromBytes(body), nil
}
