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

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/tempname"
)

const copyBuffer = 1 << 20

// blob is a blob received completely, kept compressed as sent.
type blob struct {
	Digest digest.Digest
	Size   int64
	Path   string
}

// upload is a blob upload in progress, written to a file as it arrives.
type upload struct {
	mu sync.Mutex // serializes the PATCH and PUT requests of one upload
	f  *os.File
	h  hash.Hash
	n  int64
}

// store holds uploads in progress and received blobs, by digest, across
// images and repositories. Safe for concurrent use.
type store struct {
	tempDir string

	mu      sync.Mutex
	closed  bool
	uploads map[string]*upload
	blobs   map[digest.Digest]*blob
}

func newStore(tempDir string) *store {
	return &store{tempDir: tempDir, uploads: map[string]*upload{}, blobs: map[digest.Digest]*blob{}}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// start opens a new upload.
func (s *store) start() (string, error) {
	f, err := tempname.Create(s.tempDir, "proxy", ".blob")
	if err != nil {
		return "", fmt.Errorf("proxy upload: %w", err)
	}
	id := newUUID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		f.Close()
		_ = os.Remove(f.Name())
		return "", ErrClosed
	}
	s.uploads[id] = &upload{f: f, h: sha256.New()}
	return id, nil
}

func (s *store) upload(id string) *upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads[id]
}

// drop forgets upload id and removes its file.
func (s *store) drop(id string) {
	s.mu.Lock()
	u := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if u != nil {
		u.mu.Lock()
		u.f.Close()
		_ = os.Remove(u.f.Name())
		u.mu.Unlock()
	}
}

// write appends body to upload id; it returns the bytes received so far.
func (s *store) write(id string, body io.Reader) (int64, error) {
	u := s.upload(id)
	if u == nil {
		return 0, errUploadUnknown
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	n, err := io.CopyBuffer(io.MultiWriter(u.f, u.h), body, make([]byte, copyBuffer))
	u.n += n
	if err != nil {
		return u.n, fmt.Errorf("proxy upload %s: %w", id, err)
	}
	return u.n, nil
}

var (
	errUploadUnknown = errors.New("blob upload unknown")
	errMismatch      = errors.New("digest mismatch")
)

// finish ends upload id: its content must have digest want. The blob is
// then held under want (a blob pushed twice keeps its first copy).
func (s *store) finish(id string, want digest.Digest) (int64, error) {
	u := s.upload(id)
	if u == nil {
		return 0, errUploadUnknown
	}
	u.mu.Lock()
	got := digest.NewDigest(digest.SHA256, u.h)
	n := u.n
	cerr := u.f.Close()
	path := u.f.Name()
	u.mu.Unlock()
	s.mu.Lock()
	delete(s.uploads, id)
	keep := !s.closed && cerr == nil && got == want && s.blobs[want] == nil
	if keep {
		s.blobs[want] = &blob{Digest: want, Size: n, Path: path}
	}
	closed := s.closed
	s.mu.Unlock()
	if !keep {
		_ = os.Remove(path)
	}
	switch {
	case closed:
		return 0, ErrClosed
	case cerr != nil:
		return 0, fmt.Errorf("proxy upload %s: %w", id, cerr)
	case got != want:
		return 0, fmt.Errorf("proxy upload %s: got %s, want %s: %w", id, got, want, errMismatch)
	}
	return n, nil
}

// get returns the blob received under d, or nil.
func (s *store) get(d digest.Digest) *blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blobs[d]
}

// Close removes every file: uploads in progress and blobs received.
// Requests after Close fail. It comes after the HTTP server has stopped.
func (s *store) Close() error {
	s.mu.Lock()
	s.closed = true
	ups, blobs := s.uploads, s.blobs
	s.uploads, s.blobs = map[string]*upload{}, map[digest.Digest]*blob{}
	s.mu.Unlock()
	var errs []error
	for _, u := range ups {
		u.mu.Lock()
		u.f.Close()
		errs = append(errs, removeFile(u.f.Name()))
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
