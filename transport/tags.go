package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/quote"
	"github.com/occystrap/occystrap/transport/reference"
)

// Tags lists repo's tags (GET /v2/REPO/tags/list), following the Link
// header's next pages, in the order the registry gives them.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	return r.TagsPaged(ctx, repo, 0)
}

// TagsPaged is Tags asking for pages of n tags (n <= 0: as the registry
// pleases).
func (r *Registry) TagsPaged(ctx context.Context, repo string, n int) ([]string, error) {
	what := fmt.Sprintf("list tags of %s/%s", r.host, repo)
	next := r.URL("/v2/" + repo + "/tags/list")
	if n > 0 {
		next += "?n=" + strconv.Itoa(n)
	}
	var tags []string
	for pages := 0; next != ""; pages++ {
		if pages == 10000 {
			return nil, fmt.Errorf("%s: more than 10000 pages", what)
		}
		resp, err := r.Do(ctx, Request{Method: http.MethodGet, URL: next, Scope: "repository:" + repo + ":pull"})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, statusError(what, resp)
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		b, err := ReadLimited(resp.Body, MaxManifest)
		resp.Body.Close()
		if err == nil {
			err = json.Unmarshal(b, &page)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		for _, t := range page.Tags {
			// A tag no registry can hold (a hostile listing): never
			// used, never printed.
			if !reference.ValidTag(t) {
				zerolog.Ctx(ctx).Warn().Str("repository", repo).Str("tag", quote.Name(t)).Msg("Tag with an invalid name skipped")
				continue
			}
			tags = append(tags, t)
		}
		next, err = nextLink(next, resp.Header.Get("Link"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return tags, nil
}

// nextLink resolves the rel="next" target of a Link header against the
// URL of the page that carried it; "" when there is none.
func nextLink(base, link string) (string, error) {
	for _, part := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.Trim(strings.TrimSpace(target), "<>")
		b, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		u, err := b.Parse(target)
		if err != nil {
			return "", fmt.Errorf("bad Link header %q: %w", link, err)
		}
		return u.String(), nil
	}
	return "", nil
}
