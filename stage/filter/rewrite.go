package filter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/tarfmt"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/stage"
)

// Options are what every rewriting filter takes.
type Options struct {
	// TempDir holds the rewritten layers ("" = the system's).
	TempDir string
	// Parallel is the most layers rewritten at once (default 1).
	Parallel int
	// DiffIDs, when set, records every rewrite (original DiffID to new one)
	// and maps skipped layers' DiffIDs through. It may be shared by runs.
	DiffIDs *DiffIDMap
}

// DiffIDMap maps original layer DiffIDs to rewritten ones. It is safe for
// concurrent use.
type DiffIDMap struct {
	mu sync.Mutex
	m  map[digest.Digest]digest.Digest
}

// Get returns the rewritten DiffID of orig, if known.
func (d *DiffIDMap) Get(orig digest.Digest) (digest.Digest, bool) {
	if d == nil {
		return "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[orig]
	return v, ok
}

// Put records that orig was rewritten to rewritten.
func (d *DiffIDMap) Put(orig, rewritten digest.Digest) {
	if d == nil || orig == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[digest.Digest]digest.Digest{}
	}
	d.m[orig] = rewritten
}

// Rewriter is a content-changing filter: it rewrites every layer through a
// tarfmt.Transform. See the package documentation.
type Rewriter struct {
	name string
	tf   tarfmt.Transform
	opts Options
}

// NewRewriter returns a rewriting stage called name (for statistics and
// logs) applying tf to every member of every layer. tf must be safe for
// concurrent use.
func NewRewriter(name string, tf tarfmt.Transform, opts Options) *Rewriter {
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	return &Rewriter{name: name, tf: tf, opts: opts}
}

// Properties: the layers this stage emits are new (ChangesContent).
func (r *Rewriter) Properties() stage.StageProperties {
	return stage.StageProperties{Name: r.name, ChangesContent: true}
}

// Run rewrites the layers from in to out, then sends the rewritten config.
func (r *Rewriter) Run(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	log := zerolog.Ctx(ctx).With().Str("stage", r.name).Logger()

	var (
		mu      sync.Mutex
		config  *stage.Item
		seen    = map[int]bool{}
		newIDs  = map[int]digest.Digest{}
		skipped = map[int]bool{}
		dropped int
		fail    = &failure{cancel: cancel}
	)

	p := pool.New().WithMaxGoroutines(r.opts.Parallel)
	recv := func() error {
		for {
			it, ok, _ := stage.Recv(ctx, in)
			if !ok {
				return nil
			}
			switch {
			case it.Kind == stage.KindConfig:
				if config != nil {
					_ = it.Release()
					return fmt.Errorf("%s: config %s after config %s: %w", r.name, it.Name, config.Name, ErrDuplicate)
				}
				config = &it
				continue
			case seen[it.Seq]:
				_ = it.Release()
				return fmt.Errorf("%s: layer %d (%s): %w", r.name, it.Seq, it.Name, ErrDuplicate)
			}
			seen[it.Seq] = true
			if it.Skipped() {
				skipped[it.Seq] = true
				if err := stage.Send(ctx, out, it); err != nil {
					return nil // cancelled: the cause is reported
				}
				continue
			}
			p.Go(func() {
				if ctx.Err() != nil {
					_ = it.Release()
					return
				}
				nit, c, err := r.rewriteLayer(ctx, it)
				if err != nil {
					fail.set(err)
					return
				}
				log.Debug().Int("seq", it.Seq).Str("layer", it.Name).Str("new", nit.Name).
					Int("members", c.Members).Int("dropped", c.Dropped).Msg("Rewrote layer")
				mu.Lock()
				newIDs[it.Seq] = nit.DiffID
				dropped += c.Dropped
				mu.Unlock()
				r.opts.DiffIDs.Put(it.DiffID, nit.DiffID)
				if err := stage.Send(ctx, out, nit); err != nil {
					fail.set(err)
				}
			})
		}
	}
	err := recv()
	p.Wait()
	if err != nil {
		if config != nil {
			_ = config.Release()
		}
		return err
	}
	if err := fail.first(); err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if dropped > 0 {
		log.Info().Int("members", dropped).Msg("Excluded members from layers")
	}
	if config == nil {
		return nil
	}
	cfg, err := r.rewriteConfig(*config, newIDs, skipped)
	if err != nil {
		return err
	}
	return stage.Send(ctx, out, cfg)
}

// rewriteLayer rewrites one layer into a temporary file. It releases it.
func (r *Rewriter) rewriteLayer(ctx context.Context, it stage.Item) (stage.Item, tarfmt.Counts, error) {
	defer func() { _ = it.Release() }()
	where := fmt.Sprintf("%s: layer %d (%s)", r.name, it.Seq, it.Name)
	f, err := tempname.Create(r.opts.TempDir, "layer", ".tar")
	if err != nil {
		return stage.Item{}, tarfmt.Counts{}, fmt.Errorf("%s: create temporary file: %w", where, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	rc, err := it.Body.Open()
	if err != nil {
		return stage.Item{}, tarfmt.Counts{}, fmt.Errorf("%s: open: %w", where, err)
	}
	defer rc.Close()
	hw := &hashWriter{w: f, h: sha256.New()}
	c, err := tarfmt.Rewrite(hw, readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err // stop a long rewrite when the run is cancelled
		}
		return rc.Read(p)
	}), r.tf)
	if err != nil {
		return stage.Item{}, c, fmt.Errorf("%s: %w", where, err)
	}
	// A source that verifies the layer (against its DiffID) reports a
	// mismatch found after the tar's end on Close.
	if err := rc.Close(); err != nil {
		return stage.Item{}, c, fmt.Errorf("%s: %w", where, err)
	}
	if err := f.Close(); err != nil {
		return stage.Item{}, c, fmt.Errorf("%s: write %s: %w", where, f.Name(), err)
	}
	ok = true
	hexSum := hex.EncodeToString(hw.h.Sum(nil))
	return stage.Item{
		Seq:    it.Seq,
		Kind:   stage.KindLayer,
		Name:   hexSum,
		DiffID: digest.NewDigestFromEncoded(digest.SHA256, hexSum),
		Size:   hw.n,
		Body:   &stage.FileBody{Path: f.Name(), Temp: true},
	}, c, nil
}

// rewriteConfig points rootfs.diff_ids at the rewritten layers and renames
// the config after its new digest.
func (r *Rewriter) rewriteConfig(cfg stage.Item, newIDs map[int]digest.Digest, skipped map[int]bool) (stage.Item, error) {
	where := fmt.Sprintf("%s: config %s", r.name, cfg.Name)
	doc, err := pyjson.Decode(cfg.Data)
	if err != nil {
		return stage.Item{}, fmt.Errorf("%s: %w: %w", where, ErrConfig, err)
	}
	root, ok := doc.(*pyjson.Object)
	if !ok {
		return stage.Item{}, fmt.Errorf("%s: %w: not a JSON object", where, ErrConfig)
	}
	if len(newIDs) > 0 || len(skipped) > 0 {
		rv, _ := root.Get("rootfs")
		rootfs, ok := rv.(*pyjson.Object)
		if !ok {
			return stage.Item{}, fmt.Errorf("%s: %w: no rootfs object", where, ErrConfig)
		}
		dv, _ := rootfs.Get("diff_ids")
		ids, ok := dv.([]any)
		if !ok {
			return stage.Item{}, fmt.Errorf("%s: %w: no rootfs.diff_ids list", where, ErrConfig)
		}
		for seq, id := range newIDs {
			if seq < 0 || seq >= len(ids) {
				return stage.Item{}, fmt.Errorf("%s: %w: layer %d has no entry in rootfs.diff_ids (%d entries)", where, ErrConfig, seq, len(ids))
			}
			ids[seq] = id.String()
		}
		for seq := range skipped {
			if seq < 0 || seq >= len(ids) {
				continue
			}
			if orig, ok := ids[seq].(string); ok {
				if id, ok := r.opts.DiffIDs.Get(digest.Digest(orig)); ok {
					ids[seq] = id.String()
				}
			}
		}
	}
	data, err := pyjson.Marshal(root, pyjson.Options{})
	if err != nil {
		return stage.Item{}, fmt.Errorf("%s: %w: %w", where, ErrConfig, err)
	}
	sum := sha256.Sum256(data)
	cfg.Data = data
	cfg.Name = hex.EncodeToString(sum[:]) + ".json"
	return cfg, nil
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
