package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// files lists the store's files in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "occystrap-proxy-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStoreUploads: files are made on the first byte, a chunk must start
// where the upload ends, bytes before a broken body are kept, uploads idle
// past the bound go with their files, blobs are per repository and their
// file goes with the last repository.
func TestStoreUploads(t *testing.T) {
	dir := t.TempDir()
	st := newStore(dir, time.Hour)
	now := time.Unix(1000, 0)
	st.now = func() time.Time { return now }
	defer st.Close()

	idle, err := st.start("a")
	if err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("files before any byte: %v", got)
	}
	if _, err := st.write("a", idle, -1, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.write("b", idle, -1, strings.NewReader("x")); !errors.Is(err, errUploadUnknown) {
		t.Errorf("write under another repository: %v, want unknown", err)
	}
	if n, err := st.write("a", idle, 0, strings.NewReader("abc")); !errors.Is(err, errRange) || n != 3 {
		t.Errorf("chunk sent again: %d %v, want errRange at 3", n, err)
	}
	broken := &brokenReader{strings.NewReader("de"), errors.New("connection reset")}
	if n, err := st.write("a", idle, 3, broken); err == nil || n != 5 {
		t.Errorf("broken chunk: %d %v, want an error with 5 bytes kept", n, err)
	}
	if n, err := st.status("a", idle); err != nil || n != 5 {
		t.Errorf("status: %d %v, want 5", n, err)
	}

	// Idle past the bound: the next start drops it and its file.
	now = now.Add(2 * time.Hour)
	id, err := st.start("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.status("a", idle); !errors.Is(err, errUploadUnknown) {
		t.Errorf("idle upload: %v, want dropped", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files after the idle upload went: %v", got)
	}

	body := []byte("blob bytes")
	d := digest.FromBytes(body)
	if _, err := st.write("a", id, 0, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.finish("a", id, d); err != nil {
		t.Fatal(err)
	}
	if st.get("a", d) == nil || st.get("b", d) != nil {
		t.Fatal("the blob must be seen in a only")
	}
	if !st.mount("b", "a", d) || st.mount("c", "nowhere", d) {
		t.Fatal("mount from a must work, from a repository without it not")
	}
	path := st.get("b", d).Path
	if !st.unlink("a", d) {
		t.Fatal("unlink from a")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file after unlinking one of two repositories: %v", err)
	}
	if !st.unlink("b", d) || st.unlink("b", d) {
		t.Fatal("unlink from b: once only")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file after the last repository let go: %v", err)
	}
}

// FuzzContentRange: any header parses without panic; an accepted range
// starts at 0 or later and matches the body's length.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"0-9", "bytes 5-9/10", "9-0", "-1-3", "a-b", "", "0-", "1-1"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, cr string, length int64) {
		r := httptest.NewRequest(http.MethodPatch, "/v2/a/blobs/uploads/x", nil)
		r.Header.Set("Content-Range", cr)
		r.ContentLength = length
		at, status, code, err := contentRange(r)
		if err != nil {
			if status == 0 || code == "" {
				t.Fatalf("%q: error %v without a status and code", cr, err)
			}
			return
		}
		if strings.TrimSpace(cr) != "" && at < 0 {
			t.Fatalf("%q: accepted at %d", cr, at)
		}
	})
}
