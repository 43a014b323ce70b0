package proxy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/sources/receiver"
)

// blob is a blob received completely, kept compressed as sent. One file
// serves every repository that links the digest.
type blob struct {
	Digest digest.Digest
	Size   int64
	Path   string
	repos  int // repositories linking it; the file goes with the last
}

// store is the proxy's receiver.Ingest: uploads land in files of the temp
// dir (made on the first byte), and a blob received is seen only in the
// repositories it was uploaded to or mounted into; its file is shared.
// Safe for concurrent use.
type store struct {
	tempDir string

	mu     sync.Mutex
	closed bool
	blobs  map[digest.Digest]*blob
	repos  map[string]map[digest.Digest]bool
}

func newStore(tempDir string) *store {
	return &store{tempDir: tempDir, blobs: map[digest.Digest]*blob{}, repos: map[string]map[digest.Digest]bool{}}
}

// upload is the file of an upload in progress to repo; the receiver calls
// it from one request at a time.
type upload struct {
	s    *store
	repo string
	f    *os.File // made on the first byte
}

// Begin starts an upload to repo (receiver.Ingest).
func (s *store) Begin(repo string) (receiver.Upload, error) { return &upload{s: s, repo: repo}, nil }

// Write appends p to the upload's file; a failure of the proxy's own disk
// is receiver.ErrStorage.
func (u *upload) Write(p []byte) (int, error) {
	if u.f == nil {
		f, err := tempname.Create(u.s.tempDir, "proxy", ".blob")
		if err != nil {
			return 0, fmt.Errorf("proxy upload: %w: %w", receiver.ErrStorage, err)
		}
		u.f = f
	}
	n, err := u.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("proxy upload: %w: %w", receiver.ErrStorage, err)
	}
	return n, nil
}

// Commit links the upload's file into the repository as blob d (a blob
// held already keeps its first file).
func (u *upload) Commit(d digest.Digest, size int64) error {
	var cerr error
	if u.f == nil { // an empty blob
		u.f, cerr = tempname.Create(u.s.tempDir, "proxy", ".blob")
	}
	path := ""
	if u.f != nil {
		path = u.f.Name()
		if err := u.f.Close(); cerr == nil {
			cerr = err
		}
		u.f = nil
	}
	s := u.s
	s.mu.Lock()
	closed := s.closed
	remove := path
	if !closed && cerr == nil {
		b := s.blobs[d]
		if b == nil {
			b = &blob{Digest: d, Size: size, Path: path}
			s.blobs[d] = b
			remove = ""
		}
		s.linkLocked(u.repo, b)
	}
	s.mu.Unlock()
	if remove != "" {
		_ = os.Remove(remove)
	}
	switch {
	case closed:
		return ErrClosed
	case cerr != nil:
		return fmt.Errorf("proxy upload: %w: %w", receiver.ErrStorage, cerr)
	}
	return nil
}

// Abort closes and removes the upload's file.
func (u *upload) Abort(error) error {
	if u.f == nil {
		return nil
	}
	u.f.Close()
	err := removeFile(u.f.Name())
	u.f = nil
	return err
}

// Blob finds blob d as seen in repo (receiver.Ingest).
func (s *store) Blob(repo string, d digest.Digest) (receiver.Blob, bool) {
	b := s.get(repo, d)
	if b == nil {
		return receiver.Blob{}, false
	}
	return receiver.Blob{Size: b.Size, Open: func() (io.ReadSeekCloser, error) { return os.Open(b.Path) }}, true
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

// Mount links blob d of repository from into repo; false when from does
// not hold it (receiver.Ingest).
func (s *store) Mount(repo, from string, d digest.Digest) bool {
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

// Close removes the received blobs' files. It comes after the receiver
// closed (which removed the uploads in progress).
func (s *store) Close() error {
	s.mu.Lock()
	s.closed = true
	blobs := s.blobs
	s.blobs = map[digest.Digest]*blob{}
	s.repos = map[string]map[digest.Digest]bool{}
	s.mu.Unlock()
	var errs []error
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
