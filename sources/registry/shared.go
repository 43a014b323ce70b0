package registry

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/stage"
)

// Blobs is a run-wide scheduler of layer downloads keyed by the compressed
// digest, shared by the registry sources of every image of a multi-image
// run. A layer that several images need is downloaded, verified and
// decompressed once: the first source to ask fetches it (the lead); a source
// that asks while that transfer is going waits for it and then shares the
// lead's temporary file instead of starting its own. Each sharer gets its own
// Body; the file is removed when the last of them is released
// (reference-counted). A transfer that fails or is cancelled (the lead's
// image failed) is not shared: a waiter then tries again itself.
//
// With a skip function (a destination that keeps layers, see
// Source.Wire), a layer the destination has is not fetched at all; the
// check runs under the scheduler's lock, so a layer whose transfer has just
// been shared and written is seen as present, never fetched twice. Layers
// shared while in flight still reach the destination with a Body; the dir
// destination writes a layer once and skips it for the others.
//
// A Blobs is safe for concurrent use. The zero value is not usable; call
// NewBlobs.
type Blobs struct {
	mu      sync.Mutex
	flights map[digest.Digest]*flight
	// ahead holds the manifests and configs fetched ahead (see Prefetch).
	ahead map[imageKey]ahead

	fetched, shared, skipped atomic.Int64
}

// flight is one transfer and the file it made.
type flight struct {
	done chan struct{}
	// Set before done is closed.
	err    error
	path   string
	diffID digest.Digest
	size   int64
	// refs counts the sharers that still hold (or will get) the file,
	// the lead included; guarded by Blobs.mu.
	refs int
}

// NewBlobs makes an empty scheduler.
func NewBlobs() *Blobs {
	return &Blobs{flights: map[digest.Digest]*flight{}, ahead: map[imageKey]ahead{}}
}

// BlobStats counts what the scheduler did.
type BlobStats struct {
	// Fetched is how many transfers ran; Shared how many layer requests
	// were served by another's transfer; Skipped how many the destination
	// already had.
	Fetched, Shared, Skipped int64
}

// Stats returns the counts so far.
func (b *Blobs) Stats() BlobStats {
	return BlobStats{Fetched: b.fetched.Load(), Shared: b.shared.Load(), Skipped: b.skipped.Load()}
}

// layer returns layer seq (descriptor digest d) as an item: skipped (nil
// Body) when has reports the destination has it, else a Body backed by a
// transfer, this caller's (fetch) or a shared one. fetch must return an
// item with a FileBody{Temp: true}.
func (b *Blobs) layer(ctx context.Context, seq int, d digest.Digest, has func(name string) bool,
	fetch func(ctx context.Context) (stage.Item, error)) (stage.Item, error) {
	name := d.Encoded()
	for {
		b.mu.Lock()
		if has != nil && has(name) {
			b.mu.Unlock()
			b.skipped.Add(1)
			return stage.Item{Seq: seq, Kind: stage.KindLayer, Name: name, Size: -1}, nil
		}
		f, ok := b.flights[d]
		if ok {
			f.refs++
			b.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				b.unref(d, f)
				return stage.Item{}, ctx.Err()
			}
			if f.err != nil {
				b.unref(d, f)
				continue // the lead failed or was cancelled: try again
			}
			b.shared.Add(1)
			return stage.Item{Seq: seq, Kind: stage.KindLayer, Name: name, DiffID: f.diffID, Size: f.size,
				Body: &sharedBody{b: b, d: d, f: f}}, nil
		}
		f = &flight{done: make(chan struct{}), refs: 1}
		b.flights[d] = f
		b.mu.Unlock()

		it, err := fetch(ctx)
		if err == nil {
			fb, isFile := it.Body.(*stage.FileBody)
			if !isFile {
				_ = it.Release()
				err = errors.New("registry: a shared layer must be a file")
			} else {
				f.path, f.diffID, f.size = fb.Path, it.DiffID, it.Size
			}
		}
		f.err = err
		if err == nil {
			b.fetched.Add(1)
		}
		close(f.done)
		if err != nil {
			b.unref(d, f)
			return stage.Item{}, err
		}
		it.Body = &sharedBody{b: b, d: d, f: f}
		return it, nil
	}
}

// unref drops one reference to f; the last one forgets the flight and
// removes its file.
func (b *Blobs) unref(d digest.Digest, f *flight) error {
	b.mu.Lock()
	f.refs--
	last := f.refs == 0
	if last && b.flights[d] == f {
		delete(b.flights, d)
	}
	b.mu.Unlock()
	if last && f.path != "" {
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// sharedBody is one sharer's reference to a flight's file.
type sharedBody struct {
	b    *Blobs
	d    digest.Digest
	f    *flight
	once sync.Once
	err  error
}

func (s *sharedBody) Open() (io.ReadCloser, error) { return os.Open(s.f.path) }

// FilePath lets a sink hard-link the shared file (stage.Filer).
func (s *sharedBody) FilePath() string { return s.f.path }

func (s *sharedBody) Release() error {
	s.once.Do(func() { s.err = s.b.unref(s.d, s.f) })
	return s.err
}
