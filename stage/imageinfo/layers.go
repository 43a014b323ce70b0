package imageinfo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"archive/tar"

	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/tarfmt"
	"github.com/occystrap/occystrap/stage"
)

// LayerCheck is the stage of a full check (see the package documentation).
// It takes every item and forwards none.
type LayerCheck struct {
	meta     Meta
	parallel int

	mu     sync.Mutex
	config Results
	layers map[int]layerResult
}

// layerResult is what one layer's check found.
type layerResult struct {
	results Results
	files   []string // regular files, in tar order
}

// NewLayerCheck makes the stage for an image whose metadata is m; parallel
// layers are read at once (at least 1).
func NewLayerCheck(m Meta, parallel int) *LayerCheck {
	return &LayerCheck{meta: m, parallel: max(parallel, 1), layers: map[int]layerResult{}}
}

// Properties: a check reads every layer (NeedsAllLayers).
func (c *LayerCheck) Properties() stage.StageProperties {
	return stage.StageProperties{Name: "check", NeedsAllLayers: true}
}

// Run checks the config and every layer as they come.
func (c *LayerCheck) Run(ctx context.Context, in <-chan stage.Item, _ chan<- stage.Item) error {
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(c.parallel)
	var recvErr error
	for {
		it, ok, err := stage.Recv(ctx, in)
		if !ok {
			recvErr = err
			break
		}
		switch {
		case it.Kind == stage.KindConfig:
			c.checkConfig(it.Data)
			_ = it.Release()
		case it.Kind == stage.KindLayer && it.Body != nil:
			want, haveWant := c.diffID(it.Seq)
			p.Go(func(ctx context.Context) error {
				defer it.Release()
				lr, err := checkLayer(ctx, it, want, haveWant)
				if err != nil {
					return err
				}
				c.mu.Lock()
				c.layers[it.Seq] = lr
				c.mu.Unlock()
				return nil
			})
		default:
			_ = it.Release()
		}
	}
	err := p.Wait()
	if err == nil {
		err = recvErr
	}
	if err != nil {
		// Items still queued are the engine's to release on cancellation;
		// drain what is left so that no body leaks.
		for it := range in {
			_ = it.Release()
		}
	}
	return err
}

// diffID is the config's DiffID of layer seq, or "" when it has none.
func (c *LayerCheck) diffID(seq int) (string, bool) {
	ids := list(getOr(obj(getOr(c.meta.Config, "rootfs", nil)), "diff_ids", nil))
	if seq < 0 || seq >= len(ids) {
		return "", false
	}
	return pyStr(ids[seq]), true
}

// checkConfig compares the config bytes with the manifest's descriptor.
func (c *LayerCheck) checkConfig(data []byte) {
	man := c.meta.Manifest
	if !truthy(man) || len(data) == 0 {
		return
	}
	var r Results
	cd := obj(getOr(man, "config", nil))
	actual := digest.FromBytes(data).String()
	expected := get(cd, "digest")
	switch {
	case truthy(expected) && actual != pyStr(expected):
		r.errorf("config-digest", "Config digest mismatch: expected %s, got %s", pyStr(expected), actual)
	case truthy(expected):
		r.infof("config-digest", "Config digest verified: %s", actual)
	}
	if size := get(cd, "size"); size != nil {
		n, _ := number(size)
		if int64(len(data)) != n {
			r.errorf("config-size", "Config size mismatch: expected %d, got %d", n, len(data))
		} else {
			r.infof("config-size", "Config size verified: %d bytes", n)
		}
	}
	c.mu.Lock()
	c.config = append(c.config, r...)
	c.mu.Unlock()
}

// Results are the full check's results, after Run: config checks, each
// layer's in layer order, then duplicate files.
func (c *LayerCheck) Results() Results {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.config)
	seqs := make([]int, 0, len(c.layers))
	for s := range c.layers {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	seen := map[string][]int{}
	var order []string
	for _, s := range seqs {
		lr := c.layers[s]
		out = append(out, lr.results...)
		for _, f := range lr.files {
			if _, ok := seen[f]; !ok {
				order = append(order, f)
			}
			seen[f] = append(seen[f], s)
		}
	}
	dupes := 0
	for _, f := range order {
		if len(seen[f]) < 2 {
			continue
		}
		dupes++
		if dupes <= 10 {
			out.infof("duplicate-file", "File %s appears in layers %s", reprString(f), pyRepr(seen[f]))
		}
	}
	if dupes > 10 {
		out.infof("duplicate-file", "... and %d more duplicate files", dupes-10)
	}
	return out
}

// readErr remembers an error of the underlying stream, so that a broken
// download is told apart from a bad tar.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

// checkLayer reads one layer once: its DiffID is hashed while its tar is
// walked.
func checkLayer(ctx context.Context, it stage.Item, want string, haveWant bool) (layerResult, error) {
	var lr layerResult
	idx := it.Seq
	rc, err := it.Body.Open()
	if err != nil {
		if ctx.Err() != nil {
			return lr, ctx.Err()
		}
		lr.results.errorf("layer-seekable", "Layer %d data is not seekable: %v", idx, err)
		return lr, nil
	}
	defer rc.Close()
	h := sha256.New()
	src := &readErr{r: io.TeeReader(rc, h)}
	var entries Results
	walkErr := tarfmt.Walk(src, func(m *tarfmt.Member) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		checkEntry(m, idx, &entries)
		if isReg(m.Header) {
			lr.files = append(lr.files, m.Name)
		}
		return nil
	})
	if src.err == nil && ctx.Err() == nil {
		_, _ = io.Copy(io.Discard, src)
	}
	if src.err != nil {
		return lr, fmt.Errorf("read layer %d (%s): %w", idx, it.Name, src.err)
	}
	if err := ctx.Err(); err != nil {
		return lr, err
	}
	actual := digest.NewDigest(digest.SHA256, h).String()
	if haveWant {
		if actual != want {
			lr.results.errorf("diff-id", "Layer %d diff_id mismatch: expected %s, got %s", idx, cut(want), cut(actual))
		} else {
			lr.results.infof("diff-id", "Layer %d diff_id verified", idx)
		}
	}
	lr.results = append(lr.results, entries...)
	if walkErr != nil {
		msg := strings.TrimPrefix(walkErr.Error(), "read tar header: ")
		lr.results.errorf("tar-format", "Layer %d is not a valid tar: %s", idx, msg)
	}
	return lr, nil
}

// isReg is Python tarfile's isreg().
func isReg(h *tar.Header) bool {
	switch h.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		return true
	}
	return false
}

// checkEntry runs the per-member checks: whiteouts, negative times,
// setuid/setgid files that anyone may write.
func checkEntry(m *tarfmt.Member, idx int, r *Results) {
	name := m.Name
	base := name[strings.LastIndex(name, "/")+1:]
	if strings.HasPrefix(base, ".wh.") && base != ".wh..wh..opq" {
		if base == ".wh." {
			r.errorf("whiteout", "Layer %d: empty whiteout target at %s", idx, name)
		}
		if isReg(m.Header) && m.Header.Size > 0 {
			r.warnf("whiteout-size", "Layer %d: whiteout %s has non-zero size (%d bytes)", idx, name, m.Header.Size)
		}
	}
	mt := m.Header.ModTime
	sec, nsec := mt.Unix(), mt.Nanosecond()
	if sec < 0 {
		shown := sec
		if nsec > 0 {
			shown++ // Python's '%d' of a float truncates toward zero
		}
		r.errorf("tar-timestamp", "Layer %d: negative timestamp on %s (mtime=%d)", idx, name, shown)
	}
	if mode := m.Header.Mode; mode&0o6000 != 0 && mode&0o002 != 0 {
		r.warnf("tar-permissions", "Layer %d: %s has setuid/setgid with world-writable (mode=%o)", idx, name, mode)
	}
}
