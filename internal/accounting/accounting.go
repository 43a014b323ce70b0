package accounting

import (
	"context"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// State is where an image is in a run.
type State int

const (
	// Queued: known to the run, maybe fetching ahead, not yet processing.
	Queued State = iota
	// Running: its pipeline runs.
	Running
	// Done: finished successfully.
	Done
	// Failed: finished with an error.
	Failed
)

func (s State) String() string {
	return [...]string{"queued", "running", "done", "failed"}[s]
}

// Run holds the counters of every image of one run.
type Run struct {
	start time.Time
	now   func() time.Time

	mu     sync.Mutex
	images []*Image
	byName map[string]*Image
	total  int // images the run will process, when known
}

// NewRun starts the counting of a run.
func NewRun() *Run {
	return &Run{start: time.Now(), now: time.Now, byName: map[string]*Image{}}
}

// SetTotal records how many images the run processes.
func (r *Run) SetTotal(n int) {
	r.mu.Lock()
	r.total = n
	r.mu.Unlock()
}

// Image returns the counters of the image called name, made on first use.
func (r *Run) Image(name string) *Image {
	r.mu.Lock()
	defer r.mu.Unlock()
	if im, ok := r.byName[name]; ok {
		return im
	}
	im := &Image{name: name, run: r}
	r.byName[name] = im
	r.images = append(r.images, im)
	return im
}

// Image counts one image.
type Image struct {
	name string
	run  *Run

	done, known atomic.Int64 // bytes moved; bytes expected (known so far)
	size        atomic.Int64 // the image's layers as the source stores them
	layers      atomic.Int64 // layers passed to the output
	sourceFed   atomic.Bool
	state       atomic.Int32
	started     atomic.Int64 // unix nanoseconds when Start was called
	ended       atomic.Int64
	digest      atomic.Pointer[string] // of the manifest written
	config      atomic.Pointer[string] // of the config written
}

// Name is the image's name.
func (im *Image) Name() string {
	if im == nil {
		return ""
	}
	return im.name
}

// Expect adds n bytes to what the image is known to move.
func (im *Image) Expect(n int64) {
	if im != nil && n > 0 {
		im.known.Add(n)
	}
}

// Add counts n bytes moved.
func (im *Image) Add(n int64) {
	if im != nil && n > 0 {
		im.done.Add(n)
	}
}

// AddSize adds n bytes to the image's size: its layers as the source
// stores them (compressed in a registry, as archived in a tarball), whether
// or not they need moving.
func (im *Image) AddSize(n int64) {
	if im != nil && n > 0 {
		im.size.Add(n)
	}
}

// Layer counts one layer passed to the output.
func (im *Image) Layer() {
	if im != nil {
		im.layers.Add(1)
	}
}

// SetSourceFed records that the image's source counts its bytes itself.
func (im *Image) SetSourceFed() {
	if im != nil {
		im.sourceFed.Store(true)
	}
}

// SourceFed reports whether the source counts its own bytes.
func (im *Image) SourceFed() bool { return im != nil && im.sourceFed.Load() }

// Start marks the image's pipeline as running.
func (im *Image) Start() {
	if im == nil {
		return
	}
	im.started.Store(im.run.now().UnixNano())
	im.state.Store(int32(Running))
}

// Finish marks the image done, or failed when err is not nil.
func (im *Image) Finish(err error) {
	if im == nil {
		return
	}
	im.ended.Store(im.run.now().UnixNano())
	if err != nil {
		im.state.Store(int32(Failed))
		return
	}
	im.state.Store(int32(Done))
}

// SetDigest records the digest of the manifest written for the image (a
// registry output).
func (im *Image) SetDigest(d string) {
	if im != nil && d != "" {
		im.digest.Store(&d)
	}
}

// SetConfigDigest records the digest of the config written for the image.
func (im *Image) SetConfigDigest(d string) {
	if im != nil && d != "" {
		im.config.Store(&d)
	}
}

// Digest is the digest of what was written: the manifest's when one was
// recorded, else the config's, else "".
func (im *Image) Digest() string {
	if im == nil {
		return ""
	}
	if p := im.digest.Load(); p != nil {
		return *p
	}
	if p := im.config.Load(); p != nil {
		return *p
	}
	return ""
}

// Reader counts what is read through r.
func (im *Image) Reader(r io.ReadCloser) io.ReadCloser {
	if im == nil {
		return r
	}
	return &reader{r: r, im: im}
}

type reader struct {
	r  io.ReadCloser
	im *Image
}

func (c *reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.im.Add(int64(n))
	return n, err
}

func (c *reader) Close() error { return c.r.Close() }

// Figures are an image's counters at one moment.
type Figures struct {
	Name       string
	State      State
	Size       int64 // the image's layers as stored by the source
	Bytes      int64 // moved
	BytesKnown int64 // expected so far; at least Bytes
	Layers     int64
	Elapsed    time.Duration // since Start (to Finish when finished)
	Digest     string
}

// Figures reads the image's counters.
func (im *Image) Figures() Figures {
	f := Figures{
		Name: im.name, State: State(im.state.Load()),
		Size: im.size.Load(), Bytes: im.done.Load(), BytesKnown: im.known.Load(), Layers: im.layers.Load(),
		Digest: im.Digest(),
	}
	f.BytesKnown = max(f.BytesKnown, f.Bytes)
	if s := im.started.Load(); s != 0 {
		end := im.ended.Load()
		if end == 0 {
			end = im.run.now().UnixNano()
		}
		f.Elapsed = time.Duration(end - s)
	}
	return f
}

// Snapshot is a run's counters at one moment.
type Snapshot struct {
	Elapsed      time.Duration
	ImagesTotal  int // 0 when not known
	ImagesDone   int
	ImagesFailed int
	Size         int64
	Bytes        int64
	BytesKnown   int64
	Layers       int64
	// Running are the images in flight, in the order they started.
	Running []Figures
	// Images are all images, in the order the run first counted them.
	Images []Figures
}

// Snapshot reads every counter of the run.
func (r *Run) Snapshot() Snapshot {
	r.mu.Lock()
	images := append([]*Image(nil), r.images...)
	s := Snapshot{ImagesTotal: r.total, Elapsed: r.now().Sub(r.start)}
	r.mu.Unlock()
	type started struct {
		at int64
		f  Figures
	}
	var running []started
	for _, im := range images {
		f := im.Figures()
		s.Images = append(s.Images, f)
		s.Size += f.Size
		s.Bytes += f.Bytes
		s.BytesKnown += f.BytesKnown
		s.Layers += f.Layers
		switch f.State {
		case Done:
			s.ImagesDone++
		case Failed:
			s.ImagesFailed++
		case Running:
			running = append(running, started{im.started.Load(), f})
		}
	}
	sort.SliceStable(running, func(i, j int) bool { return running[i].at < running[j].at })
	for _, r := range running {
		s.Running = append(s.Running, r.f)
	}
	return s
}

// Rate is bytes per second over elapsed, 0 when nothing can be said.
func Rate(bytes int64, elapsed time.Duration) float64 {
	if elapsed <= 0 || bytes <= 0 {
		return 0
	}
	return float64(bytes) / elapsed.Seconds()
}

// ETA is the time left to move known-done bytes at rate, and whether it
// can be told.
func ETA(done, known int64, rate float64) (time.Duration, bool) {
	if rate <= 0 || known <= done {
		return 0, known > 0 && known <= done
	}
	return time.Duration(float64(known-done) / rate * float64(time.Second)), true
}

type ctxKey struct{}

// WithImage returns ctx carrying im for the stages of its pipeline.
func WithImage(ctx context.Context, im *Image) context.Context {
	return context.WithValue(ctx, ctxKey{}, im)
}

// FromContext is the image the context carries, or nil (whose methods do
// nothing).
func FromContext(ctx context.Context) *Image {
	im, _ := ctx.Value(ctxKey{}).(*Image)
	return im
}
