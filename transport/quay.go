package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// ErrQuayAuth is a 401 from the Quay API; its text is the original
// occystrap's, which users grep for.
//
//lint:ignore ST1005 the original occystrap's exact message
var ErrQuayAuth = errors.New("Authentication failed for quay.io API. Provide a valid quay.io API token for accessing private organizations.")

// QuayOptions configure a Quay API client.
type QuayOptions struct {
	// Insecure uses plain HTTP (self-hosted Quay).
	Insecure bool
	// Token is the API's bearer token; empty sends no Authorization.
	Token string
}

// Quay is a client of one Quay host's API (/api/v1), built on the shared
// Transport. It is safe for concurrent use.
type Quay struct {
	t      *Transport
	host   string
	scheme string
	token  string
}

// Quay returns a client of the Quay API on host (host[:port]).
func (t *Transport) Quay(host string, opts QuayOptions) *Quay {
	scheme := "https"
	if opts.Insecure {
		scheme = "http"
	}
	return &Quay{t: t, host: host, scheme: scheme, token: opts.Token}
}

// Host is the Quay host.
func (q *Quay) Host() string { return q.host }

// QuayRepository is one entry of a repository listing.
type QuayRepository struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// LastModified is a unix time; nil when the API gave null or was not
	// asked for it.
	LastModified *int64 `json:"last_modified"`
}

// QuayTag is a tag as the tag endpoint describes it.
type QuayTag struct {
	Name           string `json:"name"`
	StartTS        int64  `json:"start_ts"`
	ManifestDigest string `json:"manifest_digest"`
	IsManifestList bool   `json:"is_manifest_list"`
	Size           int64  `json:"size"`
	LastModified   string `json:"last_modified"`
}

// get fetches one API document into v.
func (q *Quay) get(ctx context.Context, path string, query url.Values, v any) error {
	u := q.scheme + "://" + q.host + "/api/v1/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if q.token != "" {
		req.Header.Set("Authorization", "Bearer "+q.token)
	}
	resp, err := q.t.do(req, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", redact(u), err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return ErrQuayAuth
	default:
		return statusError("GET "+redact(u), resp)
	}
	defer resp.Body.Close()
	b, err := ReadLimited(resp.Body, MaxManifest)
	if err != nil {
		return fmt.Errorf("GET %s: %w", redact(u), err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", redact(u), err)
	}
	return nil
}

// Repositories lists the public repositories of namespace, following
// next_page to the end. With lastModified the API is asked for each
// repository's last_modified. page, if not nil, is called after each page
// with the page number (from 1), the page's repositories and the number so
// far: a caller can start on them while the next page is fetched.
func (q *Quay) Repositories(ctx context.Context, namespace string, lastModified bool, page func(n int, repos []QuayRepository, total int)) ([]QuayRepository, error) {
	var all []QuayRepository
	next := ""
	for n := 1; ; n++ {
		v := url.Values{"namespace": {namespace}, "public": {"true"}}
		if lastModified {
			v.Set("last_modified", "true")
		}
		if next != "" {
			v.Set("next_page", next)
		}
		var doc struct {
			Repositories []QuayRepository `json:"repositories"`
			NextPage     string           `json:"next_page"`
		}
		if err := q.get(ctx, "repository", v, &doc); err != nil {
			if errors.Is(err, ErrQuayAuth) {
				return nil, err
			}
			return nil, fmt.Errorf("list repositories of %s on %s (page %d): %w", namespace, q.host, n, err)
		}
		all = append(all, doc.Repositories...)
		if page != nil {
			page(n, doc.Repositories, len(all))
		}
		if doc.NextPage == "" {
			return all, nil
		}
		if doc.NextPage == next {
			return nil, fmt.Errorf("list repositories of %s on %s: page %d repeats its next_page token", namespace, q.host, n)
		}
		next = doc.NextPage
	}
}

// Tag returns the active tag of namespace/repo, or nil when the repository
// has no such tag. A repository that does not exist (404) gives ErrNotFound.
func (q *Quay) Tag(ctx context.Context, namespace, repo, tag string) (*QuayTag, error) {
	v := url.Values{"specificTag": {tag}, "onlyActiveTags": {"true"}, "limit": {"1"}}
	var doc struct {
		Tags []QuayTag `json:"tags"`
	}
	if err := q.get(ctx, "repository/"+url.PathEscape(namespace)+"/"+url.PathEscape(repo)+"/tag/", v, &doc); err != nil {
		if errors.Is(err, ErrQuayAuth) {
			return nil, err
		}
		return nil, fmt.Errorf("check tag %s of %s/%s on %s: %w", tag, namespace, repo, q.host, err)
	}
	if len(doc.Tags) == 0 || doc.Tags[0].Name == "" {
		return nil, nil
	}
	return &doc.Tags[0], nil
}
