package dockerpush_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/sources/dockerpush"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// fakeEngine answers inspect, tag, push and untag as the Engine API does,
// with a push whose answer reports an error (what the real engine does when
// the registry refuses a blob). It records the calls.
type fakeEngine struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeEngine) start(t *testing.T, pushAnswer string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	id := digest.FromString("config")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		call := r.Method + " " + r.URL.Path
		if r.URL.Path != "/images/occy/app:v1/json" {
			// the port changes from run to run
			call = r.Method + " " + hidePort(r.URL.RequestURI())
		}
		f.calls = append(f.calls, call)
		f.mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/images/occy/app:v1/json":
			_ = json.NewEncoder(w).Encode(map[string]any{"Id": id, "RootFS": map[string]any{"Type": "layers", "Layers": []digest.Digest{digest.FromString("l")}}})
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tag"):
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/push"):
			if r.Header.Get("X-Registry-Auth") != "e30=" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, pushAnswer)
		case r.Method == http.MethodDelete:
			_, _ = io.WriteString(w, `[{"Untagged":"x"}]`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"no such image"}`)
		}
	})
	srv := &http.Server{Handler: mux}
	p := pool.New()
	p.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(func() { _ = srv.Close(); p.Wait() })
	return sock
}

// hidePort replaces the embedded registry's port with PORT.
func hidePort(s string) string {
	for _, pre := range []string{"127.0.0.1:", "127.0.0.1%3A"} {
		if i := strings.Index(s, pre); i >= 0 {
			j := i + len(pre)
			k := j
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			s = s[:j] + "PORT" + s[k:]
		}
	}
	return s
}

func TestPushError(t *testing.T) {
	tests := []struct {
		name, answer, want string
	}{
		{"error key", `{"status":"The push refers to repository [127.0.0.1:1/occy/app]"}` + "\n" +
			`{"errorDetail":{"message":"received unexpected HTTP status: 500"},"error":"received unexpected HTTP status: 500"}` + "\n",
			"Docker push failed: received unexpected HTTP status: 500"},
		{"no manifest", `{"status":"v1: digest: sha256:00 size: 1"}` + "\n", "Timed out waiting for manifest from Docker push"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe := &fakeEngine{}
			c := dockerclient.New(fe.start(t, tc.answer))
			t.Cleanup(c.CloseIdle)
			tmp := t.TempDir()
			src, err := dockerpush.Open(context.Background(), c, "occy/app:v1", dockerpush.Options{TempDir: tmp, ManifestTimeout: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = testdocker.Collect(t, src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.name == "error key" && !errors.Is(err, dockerclient.ErrPush) {
				t.Errorf("err = %v, want dockerclient.ErrPush", err)
			}
			want := []string{
				"GET /images/occy/app:v1/json",
				"POST /images/occy/app:v1/tag?repo=127.0.0.1%3APORT%2Foccy%2Fapp&tag=v1",
				"POST /images/127.0.0.1:PORT/occy/app:v1/push",
				"DELETE /images/127.0.0.1:PORT/occy/app:v1?noprune=true",
			}
			fe.mu.Lock()
			defer fe.mu.Unlock()
			if d := cmp.Diff(want, fe.calls); d != "" {
				t.Errorf("engine calls (-want +got):\n%s", d)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("files left: %v", left)
			}
		})
	}
}
