package stagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/stage"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// Updating reports whether the test runs with -update, for a package's own
// golden files: the flag is defined here, once for every test binary that
// imports this package.
func Updating() bool { return *update }

// Main is TestMain for packages that write trees: it sets the umask to 022,
// so that modes in listings do not depend on the caller's, and runs the
// tests under goleak.VerifyTestMain.
func Main(m *testing.M) {
	syscall.Umask(0o022)
	goleak.VerifyTestMain(m)
}

// Run feeds items to sink through the engine, with no stages.
func Run(ctx context.Context, sink stage.Sink, items []stage.Item) error {
	_, err := stage.Run(ctx, &Source{Items: items}, nil, sink, stage.Options{})
	return err
}

// Output is an output as WriteImage drives it.
type Output interface {
	Sink(img stage.Image) (stage.Sink, error)
}

// WriteImage feeds items to the sink out gives for img, through the engine
// with no stages.
func WriteImage(ctx context.Context, out Output, img stage.Image, items []stage.Item) error {
	sink, err := out.Sink(img)
	if err != nil {
		return err
	}
	return Run(ctx, sink, items)
}

// ReadJSON decodes the JSON file name into v, failing the test when it
// cannot.
func ReadJSON(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}

// BenchItems is an image for benchmarks: a config "{}" and n layers named
// layer00, layer01, ... of size random bytes each. With files, each body is
// a file under a temporary directory (as sources that spool give);
// otherwise a stream from memory.
func BenchItems(b *testing.B, n, size int, files bool) []stage.Item {
	b.Helper()
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	items := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: "config.json", Data: []byte(`{}`)}}
	for i := range n {
		data := make([]byte, size)
		for j := 0; j < len(data); j += 8 {
			v := r.Uint64()
			for k := 0; k < 8 && j+k < len(data); k++ {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		name := fmt.Sprintf("layer%02d", i)
		var body stage.Body
		if files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			body = &stage.FileBody{Path: p}
		} else {
			body = MemBody(data, nil)
		}
		items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: name, Size: int64(size), Body: body})
	}
	return items
}

// Hex is the sha256 of b in hex.
func Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Released counts the bodies released, to check that a sink releases every
// body it was given.
type Released struct{ n atomic.Int64 }

// Count is the number of releases so far.
func (r *Released) Count() int64 { return r.n.Load() }

// MemBody is a layer body over b. Release is counted in rel (may be nil).
func MemBody(b []byte, rel *Released) stage.Body {
	return &stage.OpenerBody{
		OpenFunc: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		ReleaseFunc: func() error {
			if rel != nil {
				rel.n.Add(1)
			}
			return nil
		},
	}
}

// Items is an image's items: the config (Seq -1) first, then each layer,
// named by the sha256 of its tar, with its size.
func Items(config []byte, configName string, layers [][]byte, rel *Released) []stage.Item {
	items := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: configName, Data: config}}
	for i, l := range layers {
		items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: Hex(l), Size: int64(len(l)), Body: MemBody(l, rel)})
	}
	return items
}

// Source emits Items in the order given.
type Source struct{ Items []stage.Item }

// Emit sends every item.
func (s *Source) Emit(ctx context.Context, out chan<- stage.Item) error {
	for _, it := range s.Items {
		if err := stage.Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

// FailingReader returns n bytes of data and then err.
func FailingReader(data []byte, n int, err error) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), &errReader{err: err})
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// ErrInjected is the error FailingReader bodies fail with in tests.
var ErrInjected = errors.New("injected read failure")

// Listing lists the tree under dir, sorted, one line per entry:
// "path type mode size sha256" for files, "path dir mode" for directories,
// "path symlink -> target" for symlinks.
func Listing(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s symlink -> %s", rel, t))
		case fi.IsDir():
			out = append(out, fmt.Sprintf("%s dir %04o", rel, fi.Mode().Perm()))
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s file %04o %d %s", rel, fi.Mode().Perm(), fi.Size(), Hex(b)))
		default:
			out = append(out, fmt.Sprintf("%s %s", rel, fi.Mode().Type()))
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("list %s: %v", dir, err)
	}
	sort.Strings(out)
	return out
}

// Golden compares got with testdata/<name>.golden, or rewrites the file when
// the test runs with -update.
func Golden(tb testing.TB, name string, got []string) {
	tb.Helper()
	file := filepath.Join("testdata", name+".golden")
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		tb.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(text, "\n")); diff != "" {
		tb.Errorf("%s differs from %s (-want +got):\n%s", name, file, diff)
	}
}
