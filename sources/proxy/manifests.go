package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/sources/receiver"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// pushRefusal is a manifest PUT answered with a 4xx: status, code, why.
type pushRefusal struct {
	status int
	code   string
	msg    string
}

func (e *pushRefusal) Error() string { return e.code + ": " + e.msg }

func refuse(status int, code, format string, a ...any) error {
	return &pushRefusal{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

// manifestShape is what the proxy reads of any pushed manifest.
type manifestShape struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        *v1.Descriptor  `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
	Manifests     json.RawMessage `json:"manifests"`
}

// putManifest answers a manifest PUT. The manifest is checked (JSON, the
// digest it is pushed under, its blobs pushed or downstream); an image
// the proxy can read goes through the engine and the filters into the
// downstream; anything else (an index, an artifact, an image whose config
// does not describe its layers) is forwarded byte for byte when no filter
// changes content, and refused naming the filter otherwise.
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	ctx := r.Context()
	lg := zerolog.Ctx(ctx).With().Str("image", name+":"+ref).Logger()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil || len(body) > maxManifest {
		s.pushFailed.Add(1)
		receiver.WriteError(w, http.StatusBadRequest, transport.CodeManifestInvalid, "manifest unreadable or larger than 4 MiB")
		return
	}
	d := digest.FromBytes(body)
	if want, err := digest.Parse(ref); err == nil {
		if !want.Algorithm().Available() || want.Algorithm().FromBytes(body) != want {
			s.pushFailed.Add(1)
			receiver.WriteError(w, http.StatusBadRequest, transport.CodeDigestInvalid, fmt.Sprintf("manifest pushed as %s has digest %s", want, d))
			return
		}
		d = want
	}
	resp, err := s.pushManifest(ctx, lg, r, w.Header(), name, ref, body, d)
	if err != nil {
		var refusal *pushRefusal
		s.pushFailed.Add(1)
		if errors.As(err, &refusal) {
			lg.Warn().Str("code", refusal.code).Msg("Push refused: " + refusal.msg)
			receiver.WriteError(w, refusal.status, refusal.code, refusal.msg)
			return
		}
		lg.Error().Err(err).Msg("Proxy push failed")
		receiver.WriteError(w, http.StatusInternalServerError, transport.CodeUnknown, err.Error())
		return
	}
	if resp != nil { // the downstream refused the manifest forwarded
		s.pushFailed.Add(1)
		defer resp.Body.Close()
		relay(w, r, resp, name, s.downRepo(name))
		return
	}
	s.pushed.Add(1)
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// pushManifest moves a pushed manifest downstream. A non-nil response is
// the downstream's refusal of a manifest forwarded byte for byte.
func (s *Server) pushManifest(ctx context.Context, lg zerolog.Logger, r *http.Request, hdr http.Header, name, ref string, body []byte, d digest.Digest) (*http.Response, error) {
	var shape manifestShape
	if err := json.Unmarshal(body, &shape); err != nil {
		return nil, refuse(http.StatusBadRequest, transport.CodeManifestInvalid, "manifest is not JSON: %v", err)
	}
	mediaType, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	mediaType = strings.TrimSpace(mediaType)
	if mediaType == "" {
		mediaType = shape.MediaType
	}
	isIndex := shape.Manifests != nil || mediaType == v1.MediaTypeImageIndex || mediaType == mediatype.DockerList
	if mediaType == "" {
		mediaType = mediatype.DockerManifest
		if isIndex {
			mediaType = v1.MediaTypeImageIndex
		}
	}
	if !isIndex && (shape.SchemaVersion != 2 || shape.Config == nil) {
		return nil, refuse(http.StatusBadRequest, transport.CodeManifestInvalid, "not a schema 2 image manifest or index")
	}
	stages, err := s.opts.Filters(stage.Image{Name: name, Tag: ref})
	if err != nil {
		return nil, err
	}
	if _, err := digest.Parse(ref); err == nil {
		// The filtered image would have another digest than it is pushed under.
		if err := readable(stages, errors.New("a manifest pushed by digest keeps that digest; push it by tag")); err != nil {
			return nil, err
		}
	}
	if isIndex {
		if err := readable(stages, fmt.Errorf("an index or manifest list: %w", ErrUninterpretable)); err != nil {
			return nil, err
		}
		return s.forwardManifest(ctx, lg, r, hdr, name, ref, body, mediaType, nil)
	}
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, refuse(http.StatusBadRequest, transport.CodeManifestInvalid, "%v", err)
	}
	cfg, err := s.blobRef(ctx, name, m.Config)
	if err != nil {
		return nil, err
	}
	layers := make([]*blobRef, len(m.Layers))
	for i, l := range m.Layers {
		if len(l.URLs) > 0 {
			continue // a foreign layer: not in any registry
		}
		if layers[i], err = s.blobRef(ctx, name, l); err != nil {
			return nil, err
		}
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	img := stage.Image{Name: name, Tag: ref}
	src, err := newPushed(ctx, img, body, mediaType, m, cfg, layers)
	if src != nil {
		src.inflate = s.opts.Inflate
	}
	if err == nil && slices.Contains(layers, nil) {
		err = fmt.Errorf("foreign layers (with urls): %w", ErrUninterpretable)
	}
	if errors.Is(err, ErrUninterpretable) {
		if err := readable(stages, err); err != nil {
			return nil, err
		}
		lg.Debug().Err(err).Msg("Forwarding the manifest as pushed")
		return s.forwardManifest(ctx, lg, r, hdr, name, ref, body, mediaType, append([]*blobRef{cfg}, layers...))
	}
	if err != nil {
		return nil, err
	}
	start := time.Now()
	got, err := s.run(lg.WithContext(ctx), src, stages, name, ref)
	if err != nil {
		return nil, err
	}
	lg.Info().Str("downstream", s.host+"/"+s.downRepo(name)+":"+ref).Str("digest", got.String()).
		Dur("elapsed_ms", time.Since(start)).Msg("Pushed image downstream")
	s.mu.Lock()
	defer s.mu.Unlock()
	if got != d { // filtered: serve what was pushed
		c := cached{body: body, mediaType: mediaType, digest: d, down: got}
		s.manifests[name+"@"+ref] = c
		s.manifests[name+"@"+d.String()] = c
	} else {
		delete(s.manifests, name+"@"+ref)
	}
	return nil, nil
}

// readable refuses (400 naming the filter) a manifest the proxy cannot
// read when a filter must change its content.
func readable(stages []stage.Stage, why error) error {
	for _, st := range stages {
		if p := st.Properties(); p.ChangesContent {
			n := p.Name
			if n == "" {
				n = fmt.Sprintf("%T", st)
			}
			return refuse(http.StatusBadRequest, transport.CodeManifestInvalid,
				"filter %s changes layer content, and the proxy cannot rewrite this manifest: %v", n, why)
		}
	}
	return nil
}

// blobRef finds blob desc of a manifest pushed to name: received here,
// or held by the downstream (the client skipped it after a HEAD the proxy
// answered from there).
func (s *Server) blobRef(ctx context.Context, name string, desc v1.Descriptor) (*blobRef, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, refuse(http.StatusBadRequest, transport.CodeManifestInvalid, "digest %q: %v", desc.Digest, err)
	}
	ref := &blobRef{desc: desc, down: s.down, repo: s.downRepo(name), ctx: ctx}
	if b := s.store.get(name, desc.Digest); b != nil {
		ref.local = b
		return ref, nil
	}
	there, size, err := s.down.BlobExists(ctx, ref.repo, desc.Digest)
	if err != nil {
		return nil, err
	}
	if !there {
		return nil, refuse(http.StatusBadRequest, transport.CodeManifestBlobUnknown, "blob %s: %v", desc.Digest, ErrBlobUnknown)
	}
	if desc.Size <= 0 {
		ref.desc.Size = size
	}
	return ref, nil
}

// forwardManifest pushes a manifest downstream as received: the blobs it
// names first (those received here and not there), then the manifest
// under ref. The downstream's refusal is returned as its response.
func (s *Server) forwardManifest(ctx context.Context, lg zerolog.Logger, r *http.Request, hdr http.Header, name, ref string, body []byte, mediaType string, blobs []*blobRef) (*http.Response, error) {
	repo := s.downRepo(name)
	seen := map[digest.Digest]bool{}
	for _, b := range blobs {
		if b == nil || b.local == nil || seen[b.desc.Digest] {
			continue
		}
		seen[b.desc.Digest] = true
		if err := s.copyUpload(r, repo, b.local); err != nil {
			return nil, fmt.Errorf("forward blob %s to %s/%s: %w", b.desc.Digest, s.host, repo, err)
		}
	}
	r2 := r.Clone(ctx)
	r2.URL.RawQuery = ""
	r2.Header = http.Header{"Content-Type": {mediaType}}
	resp, err := s.downstream(r2, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, body)
	if err != nil {
		return nil, fmt.Errorf("forward manifest to %s/%s:%s: %w", s.host, repo, ref, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if v := resp.Header.Get("OCI-Subject"); v != "" {
			hdr.Set("OCI-Subject", v)
		}
		lg.Info().Str("downstream", s.host+"/"+repo+":"+ref).Msg("Forwarded manifest downstream as pushed")
		s.mu.Lock()
		delete(s.manifests, name+"@"+ref)
		s.mu.Unlock()
		return nil, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return resp, nil
	}
	resp.Body.Close()
	return nil, fmt.Errorf("forward manifest to %s/%s:%s: %s: %w", s.host, repo, ref, resp.Status, transport.ErrStatus)
}

func writeManifest(w http.ResponseWriter, r *http.Request, c cached) {
	w.Header().Set("Content-Type", c.mediaType)
	w.Header().Set("Docker-Content-Digest", c.digest.String())
	w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(c.body)
	}
}

// getManifest answers GET and HEAD of a manifest: one pushed here that
// the filters changed, else the downstream's; in pull-through mode an
// image the downstream lacks is pulled from the upstream first.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	s.mu.Lock()
	c, ok := s.manifests[name+"@"+ref]
	s.mu.Unlock()
	if ok {
		writeManifest(w, r, c)
		return
	}
	ctx := r.Context()
	path := "/v2/" + s.downRepo(name) + "/manifests/" + ref
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", strings.Join(acceptAll, ", "))
	}
	resp, err := s.downstream(r, r.Method, path, nil)
	if err != nil {
		receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
		return
	}
	if resp.StatusCode == http.StatusNotFound && s.opts.Upstream != "" {
		resp.Body.Close()
		if err := s.pullThrough(ctx, name, ref); err != nil {
			s.pullFailed.Add(1)
			if errors.Is(err, transport.ErrNotFound) {
				receiver.WriteError(w, http.StatusNotFound, transport.CodeManifestUnknown, "manifest unknown here and upstream")
				return
			}
			zerolog.Ctx(ctx).Error().Err(err).Str("image", name+":"+ref).Msg("Pull-through failed")
			receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
			return
		}
		if resp, err = s.downstream(r, r.Method, path, nil); err != nil {
			receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
			return
		}
	} else if resp.StatusCode == http.StatusOK && s.opts.Upstream != "" {
		s.hits.Add(1)
	}
	defer resp.Body.Close()
	relay(w, r, resp, name, s.downRepo(name))
}

// acceptAll is asked of the downstream for a client that accepts anything.
var acceptAll = []string{mediatype.DockerManifest, v1.MediaTypeImageManifest, mediatype.DockerList, v1.MediaTypeImageIndex}

// pullThrough pulls name:ref from the upstream through the filters into
// the downstream, once per name:ref at a time.
func (s *Server) pullThrough(ctx context.Context, name, ref string) error {
	unlock, err := s.locks.Lock(ctx, name+":"+ref)
	if err != nil {
		return err
	}
	defer unlock()
	repo := s.downRepo(name)
	if _, err := s.down.GetManifest(ctx, repo, ref, acceptAll); err == nil {
		s.hits.Add(1) // pulled by the request we waited for
		return nil
	} else if !errors.Is(err, transport.ErrNotFound) {
		return err
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	stages, err := s.opts.Filters(stage.Image{Name: name, Tag: ref})
	if err != nil {
		return err
	}
	lg := zerolog.Ctx(ctx).With().Str("image", name+":"+ref).Str("upstream", s.opts.Upstream).Logger()
	so := s.opts.Source
	so.Host, so.Repo, so.Tag, so.Registry, so.TempDir = s.opts.Upstream, name, ref, s.opts.UpstreamRegistry, s.opts.TempDir
	start := time.Now()
	if _, err := s.run(lg.WithContext(ctx), registrysrc.New(s.opts.Transport, so), stages, name, ref); err != nil {
		return fmt.Errorf("pull %s/%s:%s through the proxy: %w", s.opts.Upstream, name, ref, err)
	}
	s.misses.Add(1)
	lg.Info().Dur("elapsed_ms", time.Since(start)).Msg("Pulled image from upstream")
	return nil
}

// deleteManifest forwards the DELETE to the downstream (a pushed digest
// the filters changed becomes the downstream's digest) and forgets what
// the proxy kept of it. 405 when the downstream does not delete.
func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	target := ref
	s.mu.Lock()
	if c, ok := s.manifests[name+"@"+ref]; ok && c.digest.String() == ref {
		target = c.down.String()
	}
	s.mu.Unlock()
	resp, err := s.downstream(r, http.MethodDelete, "/v2/"+s.downRepo(name)+"/manifests/"+target, nil)
	if err != nil {
		receiver.WriteError(w, http.StatusBadGateway, transport.CodeUnknown, err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNotFound {
		s.forget(name, ref)
	}
	relay(w, r, resp, name, s.downRepo(name))
}

// forget drops what the proxy keeps of name@ref: by digest, every tag
// pointing to it too.
func (s *Server) forget(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.manifests[name+"@"+ref]
	delete(s.manifests, name+"@"+ref)
	if !ok || c.digest.String() != ref {
		return
	}
	for k, v := range s.manifests {
		if strings.HasPrefix(k, name+"@") && v.digest == c.digest {
			delete(s.manifests, k)
		}
	}
}
