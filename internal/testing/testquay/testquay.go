package testquay

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// Options configure the emulator.
type Options struct {
	// PageSize is how many repositories a listing page holds (default 100,
	// as quay.io).
	PageSize int
	// Token, if set, is the bearer token every API request must carry.
	Token string
}

// Tag is one tag of a repository.
type Tag struct {
	Name           string
	ManifestDigest digest.Digest
	// StartTS is when the tag was pushed (start_ts).
	StartTS        time.Time
	IsManifestList bool
	Size           int64
}

// Repo is one repository.
type Repo struct {
	Namespace, Name string
	Description     string
	// Private repositories are not listed with public=true.
	Private bool
	// LastModified is nil for a repository never pushed (null in JSON).
	LastModified *time.Time
	Tags         []Tag
	// Deleted repositories are still listed, but their tag checks answer
	// 404 (deleted between the listing and the check).
	Deleted bool
}

// Server is the emulator.
type Server struct {
	opts Options

	mu    sync.Mutex
	repos map[string]*Repo // "ns/name"
	gets  map[string]int   // path of a GET -> count

	requests, api atomic.Int64
}

// New makes an emulator; put Wrap in front of a registry.
func New(opts Options) *Server {
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	return &Server{opts: opts, repos: map[string]*Repo{}, gets: map[string]int{}}
}

// Start starts a registry with the emulator in front of it (inside
// ropts.Wrap, if any), for the duration of the test.
func Start(t testing.TB, opts Options, ropts testregistry.Options) (*Server, *testregistry.Registry) {
	t.Helper()
	q, reg, err := NewRegistry(opts, ropts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return q, reg
}

// NewRegistry starts a registry with the emulator in front of it (inside
// ropts.Wrap, if any), for callers without a testing.TB (the benchmark
// harness); Close the registry when done.
func NewRegistry(opts Options, ropts testregistry.Options) (*Server, *testregistry.Registry, error) {
	q := New(opts)
	outer := ropts.Wrap
	ropts.Wrap = func(h http.Handler) http.Handler {
		h = q.Wrap(h)
		if outer != nil {
			h = outer(h)
		}
		return h
	}
	reg, err := testregistry.New(ropts)
	if err != nil {
		return nil, nil, err
	}
	return q, reg, nil
}

// AddRepo registers (or replaces) a repository.
func (s *Server) AddRepo(r Repo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := r
	c.Tags = append([]Tag(nil), r.Tags...)
	s.repos[r.Namespace+"/"+r.Name] = &c
}

// AddTag adds a tag to a registered repository (registering it if needed).
func (s *Server) AddTag(ns, name string, tag Tag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[ns+"/"+name]
	if !ok {
		r = &Repo{Namespace: ns, Name: name}
		s.repos[ns+"/"+name] = r
	}
	for i := range r.Tags {
		if r.Tags[i].Name == tag.Name {
			r.Tags[i] = tag
			return
		}
	}
	r.Tags = append(r.Tags, tag)
}

// Requests counts every request the server got (API and registry).
func (s *Server) Requests() int64 { return s.requests.Load() }

// APIRequests counts the Quay API requests.
func (s *Server) APIRequests() int64 { return s.api.Load() }

// BlobGets counts GETs of the blob d in any repository.
func (s *Server) BlobGets(d digest.Digest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.gets {
		if strings.HasSuffix(p, "/blobs/"+d.String()) {
			n += c
		}
	}
	return n
}

// AllBlobGets counts the GETs of every blob, by digest.
func (s *Server) AllBlobGets() map[digest.Digest]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[digest.Digest]int{}
	for p, c := range s.gets {
		if _, d, ok := strings.Cut(p, "/blobs/"); ok && strings.HasPrefix(p, "/v2/") {
			out[digest.Digest(d)] += c
		}
	}
	return out
}

// ManifestGets counts GETs of manifests.
func (s *Server) ManifestGets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.gets {
		if strings.Contains(p, "/manifests/") {
			n += c
		}
	}
	return n
}

// Wrap serves the Quay API and passes everything else to next.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if !strings.HasPrefix(r.URL.Path, "/api/v1/") {
			if r.Method == http.MethodGet {
				s.mu.Lock()
				s.gets[r.URL.Path]++
				s.mu.Unlock()
			}
			next.ServeHTTP(w, r)
			return
		}
		s.api.Add(1)
		s.serveAPI(w, r)
	})
}

// apiError writes quay's error body.
func apiError(w http.ResponseWriter, status int, errType, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"detail":        detail,
		"error_message": detail,
		"error_type":    errType,
		"title":         title,
		"type":          "https://quay.io/api/v1/error/" + errType,
		"status":        status,
	})
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		apiError(w, http.StatusMethodNotAllowed, "invalid_request", "invalid_request", "Method not allowed")
		return
	}
	if s.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		apiError(w, http.StatusUnauthorized, "invalid_token", "invalid_token", "The access token provided is invalid or has expired")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	switch {
	case p == "repository":
		s.serveList(w, r)
	case strings.HasPrefix(p, "repository/") && strings.HasSuffix(p, "/tag/"):
		rest := strings.TrimSuffix(strings.TrimPrefix(p, "repository/"), "/tag/")
		ns, name, ok := strings.Cut(rest, "/")
		if !ok || name == "" || strings.Contains(name, "/") {
			apiError(w, http.StatusNotFound, "not_found", "not_found", "Not Found")
			return
		}
		s.serveTags(w, r, ns, name)
	default:
		apiError(w, http.StatusNotFound, "not_found", "not_found", "Not Found")
	}
}

// pageToken is opaque to clients, as quay.io's (encrypted) tokens are.
func pageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("page:%d", offset)))
}

func parsePageToken(tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "page:"))
	return n, err == nil && strings.HasPrefix(string(b), "page:") && n >= 0
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns := q.Get("namespace")
	public := q.Get("public") == "true"
	withLM := q.Get("last_modified") == "true"
	offset := 0
	if tok := q.Get("next_page"); tok != "" {
		var ok bool
		if offset, ok = parsePageToken(tok); !ok {
			apiError(w, http.StatusBadRequest, "invalid_request", "invalid_request", "Invalid page token")
			return
		}
	}
	s.mu.Lock()
	var all []*Repo
	for _, rp := range s.repos {
		if (ns == "" || rp.Namespace == ns) && (!public || !rp.Private) {
			all = append(all, rp)
		}
	}
	// quay.io lists by name within a namespace.
	sort.Slice(all, func(i, j int) bool {
		if all[i].Namespace != all[j].Namespace {
			return all[i].Namespace < all[j].Namespace
		}
		return all[i].Name < all[j].Name
	})
	end := min(offset+s.opts.PageSize, len(all))
	out := []map[string]any{}
	for _, rp := range all[min(offset, len(all)):end] {
		var desc any
		if rp.Description != "" {
			desc = rp.Description
		}
		m := map[string]any{
			"namespace": rp.Namespace, "name": rp.Name, "description": desc,
			"is_public": !rp.Private, "kind": "image", "state": "NORMAL",
			"popularity": 0.0, "is_starred": false,
		}
		if withLM {
			// null for a repository never pushed, as quay.io answers.
			m["last_modified"] = nil
			if rp.LastModified != nil {
				m["last_modified"] = rp.LastModified.Unix()
			}
		}
		out = append(out, m)
	}
	body := map[string]any{"repositories": out}
	if end < len(all) {
		body["next_page"] = pageToken(end)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

type tagJSON struct {
	Name           string `json:"name"`
	Reversion      bool   `json:"reversion"`
	StartTS        int64  `json:"start_ts"`
	ManifestDigest string `json:"manifest_digest"`
	IsManifestList bool   `json:"is_manifest_list"`
	Size           int64  `json:"size"`
	LastModified   string `json:"last_modified"`
}

func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, ns, name string) {
	q := r.URL.Query()
	s.mu.Lock()
	rp, ok := s.repos[ns+"/"+name]
	var tags []Tag
	if ok {
		tags = append(tags, rp.Tags...)
		ok = !rp.Deleted
	}
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not_found", "not_found", "Not Found")
		return
	}
	limit := 50
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	// Newest first, as quay lists tags.
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].StartTS.After(tags[j].StartTS) })
	var sel []Tag
	for _, t := range tags {
		if st := q.Get("specificTag"); st != "" && t.Name != st {
			continue
		}
		if f := q.Get("filter_tag_name"); f != "" {
			if op, v, ok := strings.Cut(f, ":"); ok && op == "like" && !strings.Contains(t.Name, v) {
				continue
			}
		}
		sel = append(sel, t)
	}
	from := min((page-1)*limit, len(sel))
	to := min(from+limit, len(sel))
	out := []tagJSON{}
	for _, t := range sel[from:to] {
		out = append(out, tagJSON{
			Name: t.Name, StartTS: t.StartTS.Unix(), ManifestDigest: t.ManifestDigest.String(),
			IsManifestList: t.IsManifestList, Size: t.Size,
			LastModified: t.StartTS.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0000"),
		})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"tags": out, "page": page, "has_additional": to < len(sel)})
}
