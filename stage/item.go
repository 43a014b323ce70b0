package stage

import (
	"io"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// Kind says what an Item carries.
type Kind int

const (
	// KindConfig is the image configuration JSON. Its bytes are small and
	// travel in Item.Data.
	KindConfig Kind = iota
	// KindLayer is one filesystem layer; its uncompressed tar is in Item.Body.
	KindLayer
	// KindManifest is the source's manifest, exactly as fetched, for a sink
	// that copies compressed blobs through (see Wiring.Compressed). Data holds
	// its bytes and Name its media type; Seq is -2. Only a source wired with
	// Compressed sends one.
	KindManifest
)

func (k Kind) String() string {
	switch k {
	case KindConfig:
		return "config"
	case KindLayer:
		return "layer"
	case KindManifest:
		return "manifest"
	}
	return "unknown"
}

// Item is what flows between the goroutines of a run.
type Item struct {
	// Seq is the layer's index in the image, 0 for the base layer. It is -1
	// for the config.
	Seq  int
	Kind Kind
	// Name is the element name as the original occystrap chooses it: for a
	// config, its file name (for example "<hex>.json" or "blobs/sha256/<hex>");
	// for a layer, the folder name its layer.tar goes under. Filters that
	// rewrite a layer give it a new name.
	Name string
	// DiffID is the sha256 of the uncompressed layer tar, when known.
	DiffID digest.Digest
	// Size is the uncompressed size of the layer in bytes, or -1 when not
	// known before the body is read.
	Size int64
	// Data holds the config bytes (KindConfig only).
	Data []byte
	// Body holds the layer (KindLayer). It is nil for a layer the source
	// skipped because the sink already has it.
	Body Body
}

// Skipped reports whether the layer was skipped by the source (the sink
// already has it).
func (it Item) Skipped() bool { return it.Kind == KindLayer && it.Body == nil }

// Release frees what backs the item's body, if any.
func (it Item) Release() error {
	if it.Body == nil {
		return nil
	}
	return it.Body.Release()
}

// Body is the content of a layer: its uncompressed tar.
//
// Open may be called more than once, and the readers it returns may be used
// concurrently; each must be closed. Release frees the storage behind the body
// (for example removes a temporary file); no reader may be opened after it.
type Body interface {
	Open() (io.ReadCloser, error)
	Release() error
}

// Compressed is an optional capability of a Body: it can also give the
// layer's compressed blob as it came from the source, for passthrough copies.
type Compressed interface {
	// OpenCompressed returns the compressed blob and its media type.
	OpenCompressed() (rc io.ReadCloser, mediaType string, err error)
}

// Filer is an optional capability of a Body that is a finished file on disk:
// a consumer may hard-link that file into its output instead of copying it,
// but must never write to it.
type Filer interface {
	FilePath() string
}

// FileBody is a Body backed by a file on disk. If Temp is set, Release
// removes the file.
type FileBody struct {
	Path string
	Temp bool

	once sync.Once
	err  error
}

// Open opens the file for reading.
func (b *FileBody) Open() (io.ReadCloser, error) { return os.Open(b.Path) }

// FilePath is the file's path (Filer).
func (b *FileBody) FilePath() string { return b.Path }

// Release removes the file if it is temporary. It is safe to call twice.
func (b *FileBody) Release() error {
	if !b.Temp {
		return nil
	}
	b.once.Do(func() {
		if err := os.Remove(b.Path); err != nil && !os.IsNotExist(err) {
			b.err = err
		}
	})
	return b.err
}

// OpenerBody is a Body whose Open is a function (for example a section of an
// archive file, decompressed on the fly). ReleaseFunc may be nil.
type OpenerBody struct {
	OpenFunc    func() (io.ReadCloser, error)
	ReleaseFunc func() error
}

// Open calls OpenFunc.
func (b *OpenerBody) Open() (io.ReadCloser, error) { return b.OpenFunc() }

// Release calls ReleaseFunc, if any.
func (b *OpenerBody) Release() error {
	if b.ReleaseFunc == nil {
		return nil
	}
	return b.ReleaseFunc()
}

// Image names the image a run moves: its repository path (for example
// "openstack.kolla/nova-api" or "fixture/app") and tag.
type Image struct {
	Name string
	Tag  string
}

func (i Image) String() string { return i.Name + ":" + i.Tag }
