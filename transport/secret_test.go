package transport

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestSecretHook: the passwords the Transport finds in Docker's
// config.json and the tokens it fetches are handed to Options.Secret.
func TestSecretHook(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken, Username: "alice", Password: "from-config"})
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:from-config"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	tr, err := New(Options{DockerConfig: dir, Secret: func(s string) { mu.Lock(); got = append(got, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := tr.Registry(reg.Host, RegistryOptions{Insecure: true})
	resp, err := r.Do(context.Background(), Request{Method: http.MethodGet, URL: r.URL("/v2/fixture/app/tags/list"), Scope: "repository:fixture/app:pull"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(got, "from-config") || !slices.Contains(got, auth) || len(got) < 3 {
		t.Errorf("secrets handed over: %q; want the password, its Basic form and the token", got)
	}
}
