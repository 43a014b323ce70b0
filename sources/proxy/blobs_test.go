package proxy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/sources/receiver"
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

// TestStoreBlobs: an upload's file is made on the first byte and goes
// when it is aborted; blobs are per repository, mounted from one that
// holds them, and their file goes with the last repository; a digest
// committed twice keeps its first file; Close removes every file.
func TestStoreBlobs(t *testing.T) {
	dir := t.TempDir()
	st := newStore(dir)
	defer st.Close()

	write := func(repo, content string) receiver.Upload {
		t.Helper()
		before := len(files(t, dir))
		up, err := st.Begin(repo)
		if err != nil {
			t.Fatal(err)
		}
		if got := files(t, dir); len(got) != before {
			t.Fatalf("files before any byte: %v", got)
		}
		if _, err := up.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		return up
	}
	up := write("a", "abandoned")
	if got := files(t, dir); len(got) != 1 {
		t.Fatalf("files after the first byte: %v", got)
	}
	if err := up.Abort(errors.New("cancelled")); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Fatalf("files after Abort: %v", got)
	}

	body := "blob bytes"
	d := digest.FromString(body)
	if err := write("a", body).Commit(d, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if b, ok := st.Blob("a", d); !ok || b.Size != int64(len(body)) || b.Open == nil {
		t.Fatalf("blob in a: %v %v", b, ok)
	}
	if _, ok := st.Blob("b", d); ok {
		t.Fatal("the blob must be seen in a only")
	}
	if err := write("a", body).Commit(d, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("files after the same blob was pushed twice: %v, want the first", got)
	}
	if !st.Mount("b", "a", d) || st.Mount("c", "nowhere", d) {
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

	if err := write("a", body).Commit(d, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files after Close: %v", got)
	}
	if err := write("a", "late").Commit(digest.FromString("late"), 4); !errors.Is(err, receiver.ErrClosed) {
		t.Errorf("commit after Close: %v, want ErrClosed", err)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files after a commit refused: %v", got)
	}
}
