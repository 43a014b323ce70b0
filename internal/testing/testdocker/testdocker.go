package testdocker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
)

// EnvSocket names the environment variable holding the engine's socket path.
const EnvSocket = "OCCYSTRAP_TEST_DOCKER_SOCK"

// Engine is a client of a running Docker engine over its unix socket.
type Engine struct {
	Socket string
	client *http.Client
}

// Require returns the engine, or skips the test outside CI and fails it in CI
// when there is none.
func Require(t testing.TB) *Engine {
	t.Helper()
	sock := os.Getenv(EnvSocket)
	if sock == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: .ci/run must start dockerd for this test", EnvSocket)
		}
		t.Skipf("no Docker engine (%s unset); .ci/run starts one", EnvSocket)
	}
	e := &Engine{Socket: sock, client: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
	if err := e.Ping(context.Background()); err != nil {
		t.Fatalf("Docker engine at %s: %v", sock, err)
	}
	return e
}

func (e *Engine) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return e.client.Do(req)
}

// Ping checks that the engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	resp, err := e.do(ctx, http.MethodGet, "/_ping", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: %s", resp.Status)
	}
	return nil
}

// Load posts a docker-save archive to /images/load and returns the engine's
// answer (JSON lines).
func (e *Engine) Load(ctx context.Context, archive string) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	resp, err := e.do(ctx, http.MethodPost, "/images/load", f, "application/x-tar")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("load %s: %s: %s", archive, resp.Status, b)
	}
	return string(b), nil
}

// ImageID returns the Id of image ref ("name:tag").
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	resp, err := e.do(ctx, http.MethodGet, "/images/"+url.PathEscape(ref)+"/json", nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("inspect %s: %s: %s", ref, resp.Status, b)
	}
	var v struct{ Id string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", err
	}
	return v.Id, nil
}

// Remove deletes image ref.
func (e *Engine) Remove(ctx context.Context, ref string) error {
	resp, err := e.do(ctx, http.MethodDelete, "/images/"+url.PathEscape(ref)+"?force=1", nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
