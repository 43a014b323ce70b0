package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/tempname"
)

const copyBuffer = 1 << 20

// blob is a blob received completely, kept compressed as sent. One file
// serves every repository that links the digest.
type blob struct {
	Digest digest.Digest
	Size   int64
	Path   string
	repos  int // repositories linking it; the file goes with the last
}

// upload is a blob upload in progress in one repository. Its file is
// made on the first byte received.
type upload struct {
	mu   sync.Mutex // serializes the PATCH and PUT requests of one upload
	repo string
	f    *os.File
	h    hash.Hash
	n    int64
	// last is when a request of the upload last ended (unix ns); busy
	// while one runs. An upload idle longer than the store's idle bound
	// is dropped.
	last atomic.Int64
	busy atomic.Int32
}

// store holds uploads in progress and received blobs. A blob is seen only
// in the repositories it was uploaded to or mounted into; its file is
// shared. Safe for concurrent use.
type store struct {
	tempDir string
	idle    time.Duration    // uploads idle longer are dropped
	now     func() time.Time // the clock (tests set it)

	mu      sync.Mutex
	closed  bool
	uploads map[string]*upload
	blobs   map[digest.Digest]*blob
	repos   map[string]map[digest.Digest]bool
}

func newStore(tempDir string, idle time.Duration) *store {
	return &store{tempDir: tempDir, idle: idle, now: time.Now, uploads: map[string]*upload{},
		blobs: map[digest.Digest]*blob{}, repos: map[string]map[digest.Digest]bool{}}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var (
	errUploadUnknown = errors.New("blob upload unknown")
	errMismatch      = errors.New("digest mismatch")
	// errRange is a chunk that does not start where the upload ends (out
	// of order, or a retry of a chunk already received).
	errRange = errors.New("chunk does not start at the end of the upload")
	// errStore is a failure of the proxy's own disk, not of the client.
	errStore = errors.New("proxy storage")
)

// start opens a new upload in repo, and drops the uploads left idle
// longer than the idle bound (clients that gave up: their files go).
func (s *store) start(repo string) (string, error) {
	id := newUUID()
	now := s.now()
	u := &upload{repo: repo, h: sha256.New()}
	u.last.Store(now.UnixNano())
	var stale []*upload
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	for k, o := range s.uploads {
		if s.idle > 0 && o.busy.Load() == 0 && now.Sub(time.Unix(0, o.last.Load())) > s.idle {
			delete(s.uploads, k)
			stale = append(stale, o)
		}
	}
	s.uploads[id] = u
	s.mu.Unlock()
	for _, o := range stale {
		o.mu.Lock()
		o.discard()
		o.mu.Unlock()
	}
	return id, nil
}

// upload returns upload id of repo, or nil.
func (s *store) upload(repo, id string) *upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.uploads[id]; u != nil && u.repo == repo {
		return u
	}
	return nil
}

// use marks u busy until the returned func is called, which records the
// time: an upload in use is never dropped as idle.
func (s *store) use(u *upload) (done func()) {
	u.busy.Add(1)
	return func() {
		u.last.Store(s.now().UnixNano())
		u.busy.Add(-1)
	}
}

// drop forgets upload id and removes its file.
func (s *store) drop(id string) {
	s.mu.Lock()
	u := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if u != nil {
		u.mu.Lock()
		u.discard()
		u.mu.Unlock()
	}
}

// discard closes and removes the upload's file and makes it unusable;
// u.mu is held.
func (u *upload) discard() {
	u.h = nil
	if u.f != nil {
		u.f.Close()
		_ = os.Remove(u.f.Name())
		u.f = nil
	}
}

// status returns the bytes upload id of repo holds.
func (s *store) status(repo, id string) (int64, error) {
	u := s.upload(repo, id)
	if u == nil {
		return 0, errUploadUnknown
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n, nil
}

// write appends body to upload id of repo and returns the bytes it holds.
// With at >= 0 the chunk must start there (errRange otherwise, nothing
// appended). Bytes received before a failed read of body are kept, so the
// client can resume from the size that status reports; a failed write to
// the proxy's own disk (errStore) ends the upload.
func (s *store) write(repo, id string, at int64, body io.Reader) (int64, error) {
	u := s.upload(repo, id)
	if u == nil {
		return 0, errUploadUnknown
	}
	defer s.use(u)()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.h == nil {
		return 0, errUploadUnknown // dropped meanwhile
	}
	if at >= 0 && at != u.n {
		return u.n, errRange
	}
	if u.f == nil {
		f, err := tempname.Create(s.tempDir, "proxy", ".blob")
		if err != nil {
			return u.n, fmt.Errorf("proxy upload: %w: %w", errStore, err)
		}
		u.f = f
	}
	buf := make([]byte, copyBuffer)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := u.f.Write(buf[:n]); err != nil {
				s.mu.Lock()
				delete(s.uploads, id)
				s.mu.Unlock()
				u.discard()
				return u.n, fmt.Errorf("proxy upload %s: %w: %w", id, errStore, err)
			}
			u.h.Write(buf[:n])
			u.n += int64(n)
		}
		if rerr == io.EOF {
			return u.n, nil
		}
		if rerr != nil {
			return u.n, fmt.Errorf("proxy upload %s: %w", id, rerr)
		}
	}
}

// finish ends upload id of repo: its content must have digest want. The
// blob is then linked into repo (a blob already held keeps its first
// file). The upload is gone either way.
func (s *store) finish(repo, id string, want digest.Digest) (int64, error) {
	u := s.upload(repo, id)
	if u == nil {
		return 0, errUploadUnknown
	}
	u.mu.Lock()
	if u.h == nil {
		u.mu.Unlock()
		return 0, errUploadUnknown // dropped meanwhile
	}
	got := digest.NewDigest(digest.SHA256, u.h)
	n := u.n
	var cerr error
	if u.f == nil { // an empty blob
		u.f, cerr = tempname.Create(s.tempDir, "proxy", ".blob")
	}
	path := ""
	if u.f != nil {
		path = u.f.Name()
		if err := u.f.Close(); cerr == nil {
			cerr = err
		}
		u.f = nil
	}
	u.mu.Unlock()
	s.mu.Lock()
	delete(s.uploads, id)
	closed := s.closed
	remove := path
	if !closed && cerr == nil && got == want {
		b := s.blobs[want]
		if b == nil {
			b = &blob{Digest: want, Size: n, Path: path}
			s.blobs[want] = b
			remove = ""
		}
		s.linkLocked(repo, b) // a blob held already keeps its first file
	}
	s.mu.Unlock()
	if remove != "" {
		_ = os.Remove(remove)
	}
	switch {
	case closed:
		return 0, ErrClosed
	case cerr != nil:
		return 0, fmt.Errorf("proxy upload %s: %w: %w", id, errStore, cerr)
	case got != want:
		return 0, fmt.Errorf("proxy upload %s: got %s, want %s: %w", id, got, want, errMismatch)
	}
	return n, nil
}

// linkLocked makes b seen in repo; s.mu is held.
func (s *store) linkLocked(repo string, b *blob) {
	m := s.repos[repo]
	if m == nil {
		m = map[digest.Digest]bool{}
		s.repos[repo] = m
	}
	if !m[b.Digest] {
		m[b.Digest] = true
		b.repos++
	}
}

// mount links blob d of repository from into repo; false when from does
// not hold it.
func (s *store) mount(repo, from string, d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.blobs[d]
	if b == nil || !s.repos[from][d] || s.closed {
		return false
	}
	s.linkLocked(repo, b)
	return true
}

// get returns blob d as seen in repo, or nil.
func (s *store) get(repo string, d digest.Digest) *blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.repos[repo][d] {
		return nil
	}
	return s.blobs[d]
}

// unlink removes blob d from repo; the file goes when no repository links
// it. False when repo did not hold it.
func (s *store) unlink(repo string, d digest.Digest) bool {
	s.mu.Lock()
	if !s.repos[repo][d] {
		s.mu.Unlock()
		return false
	}
	delete(s.repos[repo], d)
	b := s.blobs[d]
	b.repos--
	last := b.repos == 0
	if last {
		delete(s.blobs, d)
	}
	s.mu.Unlock()
	if last {
		_ = os.Remove(b.Path)
	}
	return true
}

// Close removes every file: uploads in progress and blobs received.
// Requests after Close fail. It comes after the HTTP server has stopped.
func (s *store) Close() error {
	s.mu.Lock()
	s.closed = true
	ups, blobs := s.uploads, s.blobs
	s.uploads, s.blobs = map[string]*upload{}, map[digest.Digest]*blob{}
	s.repos = map[string]map[digest.Digest]bool{}
	s.mu.Unlock()
	var errs []error
	for _, u := range ups {
		u.mu.Lock()
		if u.f != nil {
			u.f.Close()
			errs = append(errs, removeFile(u.f.Name()))
			u.f = nil
		}
		u.mu.Unlock()
	}
	for _, b := range blobs {
		errs = append(errs, removeFile(b.Path))
	}
	return errors.Join(errs...)
}

func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
