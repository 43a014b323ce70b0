package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/sources/receiver"
	"github.com/occystrap/occystrap/transport"
)

// relayHeaders are the response headers passed on from the downstream.
var relayHeaders = []string{
	"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Docker-Content-Digest",
	"Etag", "Oci-Subject", "Oci-Filters-Applied", "Link", "Allow",
}

// downstream sends r's method (or method) to the downstream at path with
// r's query, Accept and Range headers and body (a nil body sends none).
func (s *Server) downstream(r *http.Request, method, path string, body []byte) (*http.Response, error) {
	u := s.down.URL(path)
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	h := http.Header{}
	for _, k := range []string{"Accept", "Range", "Content-Type"} {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	req := transport.Request{Method: method, URL: u, Header: h, Scope: scopeOf(path, method)}
	if body != nil {
		req.Body = func() (io.Reader, error) { return bytes.NewReader(body), nil }
		req.ContentLength = int64(len(body))
	}
	return s.down.Do(r.Context(), req)
}

// scopeOf is the token scope of an API call at path.
func scopeOf(path, method string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok || rest == "_catalog" {
		return "registry:catalog:*"
	}
	for _, sep := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, sep); i >= 0 {
			action := "pull"
			switch method {
			case http.MethodPut, http.MethodPost, http.MethodPatch:
				action = "pull,push"
			case http.MethodDelete:
				action = "delete"
			}
			return "repository:" + rest[:i] + ":" + action
		}
	}
	return ""
}

// forward answers r with the downstream's answer to the same request at
// path (a 502 when the downstream cannot be reached).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, path, name string) {
	resp, err := s.downstream(r, r.Method, path, nil)
	if err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Downstream request failed")
		receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
		return
	}
	defer resp.Body.Close()
	relay(w, r, resp, name, s.downRepo(name))
}

// relay passes resp on: status, the relayHeaders (a Link to the
// downstream repository rewritten to name's) and the body. A 5xx of the
// downstream becomes a 502.
func relay(w http.ResponseWriter, r *http.Request, resp *http.Response, name, repo string) {
	for _, k := range relayHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
	if l := w.Header().Get("Link"); l != "" && repo != name {
		w.Header().Set("Link", strings.Replace(l, "/v2/"+repo+"/", "/v2/"+name+"/", 1))
	}
	status := resp.StatusCode
	if status >= 500 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.CopyBuffer(w, resp.Body, make([]byte, 256<<10)); err != nil {
		// The status is sent: all a failed stream can do is end short.
		zerolog.Ctx(r.Context()).Error().Err(err).Str("path", r.URL.Path).Msg("Stream from downstream failed")
	}
}

// tagsList forwards GET tags/list; the body names the client's repository.
func (s *Server) tagsList(w http.ResponseWriter, r *http.Request, name string) {
	repo := s.downRepo(name)
	resp, err := s.downstream(r, http.MethodGet, "/v2/"+repo+"/tags/list", nil)
	if err != nil {
		receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || repo == name {
		relay(w, r, resp, name, repo)
		return
	}
	var tl struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&tl); err != nil {
		receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, "downstream tags list: "+err.Error())
		return
	}
	tl.Name = name
	b, _ := json.Marshal(tl)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	relay(w, r, resp, name, repo)
}

// catalog forwards GET /v2/_catalog. With a downstream prefix it lists
// the repositories under it, without the prefix: pages of the downstream
// are read (from the client's last, prefixed) until one holds some, or the
// repositories under the prefix are over.
func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	if s.prefix == "" {
		s.forward(w, r, "/v2/_catalog", "")
		return
	}
	pre := s.prefix + "/"
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		q.Set("last", pre+last)
	}
	out := []string{}
	more := false
	for page := 0; page < maxCatalogPages; page++ {
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = q.Encode()
		resp, err := s.downstream(r2, http.MethodGet, "/v2/_catalog", nil)
		if err != nil {
			receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
			return
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			relay(w, r, resp, "", "")
			return
		}
		var c struct {
			Repositories []string `json:"repositories"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&c)
		resp.Body.Close()
		if err != nil {
			receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, "downstream catalog: "+err.Error())
			return
		}
		past := false
		for _, repo := range c.Repositories {
			if rest, ok := strings.CutPrefix(repo, pre); ok {
				out = append(out, rest)
			} else if len(out) > 0 {
				past = true
			}
		}
		more = !past && resp.Header.Get("Link") != "" && len(c.Repositories) > 0
		if len(out) > 0 || !more {
			break
		}
		q.Set("last", c.Repositories[len(c.Repositories)-1])
	}
	b, _ := json.Marshal(map[string][]string{"repositories": out})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if more && len(out) > 0 {
		next := url.Values{"last": {out[len(out)-1]}}
		if n := q.Get("n"); n != "" {
			next.Set("n", n)
		}
		w.Header().Set("Link", `</v2/_catalog?`+next.Encode()+`>; rel="next"`)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// maxCatalogPages bounds the downstream pages one catalog request reads
// to find the repositories under the prefix.
const maxCatalogPages = 100

// forwardBlob answers HEAD and GET of a blob not received here: the
// downstream's.
func (s *Server) forwardBlob(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) {
	s.forward(w, r, "/v2/"+s.downRepo(name)+"/blobs/"+d.String(), name)
}

// deleteBlob forwards the DELETE to the downstream and forgets the
// repository's copy here: 202 when either held it, 405 when the
// downstream does not delete.
func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) {
	resp, err := s.downstream(r, http.MethodDelete, "/v2/"+s.downRepo(name)+"/blobs/"+d.String(), nil)
	if err != nil {
		receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
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
