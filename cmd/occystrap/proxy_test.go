package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

func TestProxyFlagParsing(t *testing.T) {
	// The listen and upstream forms themselves: sources/proxy's
	// TestListenAddr and TestParseUpstream.
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"proxy", "-d", "127.0.0.1:1", "-l", "127.0.0.1:abc"}, 1, "Error: invalid port: abc\n"},
		{[]string{"proxy", "-d", "127.0.0.1:1", "--listen", "127.0.0.1:99999"}, 1, "Error: invalid port: 99999\n"},
		{[]string{"proxy", "-l", "127.0.0.1:0"}, 2, "Error: missing flags: --downstream=HOST[/PREFIX]\n"},
	} {
		code, _, stderr := occystrap(t, append([]string{"--log-format", "console"}, tc.args...)...)
		if code != tc.code || !strings.HasPrefix(stderr, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.code, tc.err)
		}
	}
}

// proxyRun is a proxy command running in the test.
type proxyRun struct {
	Host string
	logs *lockedBuffer
	stop func() error
}

// startProxyCmd parses args as the command line does and runs the proxy
// command on a free port until the test ends (or Stop).
func startProxyCmd(t *testing.T, args ...string) *proxyRun {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var cli CLI
	parser, err := kong.New(&cli, kong.Vars{"version": version}, kong.Exit(func(code int) { t.Fatalf("exit %d", code) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(append(args, "-l", addr)); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(zerolog.New(logs).WithContext(context.Background()))
	a := &app{g: &cli.Globals, stdout: logs, stderr: logs}
	p := pool.New().WithErrors()
	p.Go(func() error { return cli.Proxy.Run(ctx, a) })
	var once sync.Once
	var runErr error
	r := &proxyRun{Host: addr, logs: logs, stop: func() error {
		once.Do(func() { cancel(); runErr = p.Wait() })
		return runErr
	}}
	t.Cleanup(func() { _ = r.stop() })
	for i := 0; ; i++ { // until it answers
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 500 {
			t.Fatalf("proxy never answered: %v\n%s", err, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// TestProxyPush pushes an archive into the proxy with our own registry://
// output and reads the image back from the downstream: unfiltered, the
// layers are the archive's; filtered, they carry the filters' changes. The
// filtered run decompresses the pushed blobs: it runs with each inflater.
func TestProxyPush(t *testing.T) {
	testenv.Igzip(t)
	archive, _ := writeArchive(t, true)
	want := tarLayers(t, func() string {
		out := filepath.Join(t.TempDir(), "plain.tar")
		mustRun(t, "--log-format", "console", "process", "tar://"+archive, "tar://"+out)
		return out
	}())
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	filtered := []string{"-f", "exclude:pattern=opt/app/old*", "-f", "normalize-timestamps:ts=1700000000"}
	for _, tc := range []struct {
		name    string
		filters []string
		inflate string
	}{
		{"plain", nil, "auto"},
		{"filtered", filtered, "go"},
		{"filtered-isal", filtered, "isal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OCCYSTRAP_INFLATE", tc.inflate)
			args := append([]string{"--insecure", "proxy", "-d", down.Host + "/" + tc.name, "-c", "2"}, tc.filters...)
			pr := startProxyCmd(t, args...)
			_, stderr := mustRun(t, "--insecure", "--log-format", "console", "process", "tar://"+archive, "registry://"+pr.Host+"/fixture/app:v1")
			if !strings.Contains(stderr, "verified OK") {
				t.Errorf("push into the proxy not verified:\n%s", stderr)
			}
			out := filepath.Join(t.TempDir(), "out")
			mustRun(t, "--insecure", "--log-format", "console", "process", "registry://"+down.Host+"/"+tc.name+"/fixture/app:v1", "dir://"+out)
			if tc.filters != nil {
				checkFiltered(t, out)
			} else {
				_, got := dirLayers(t, out, "manifest.json")
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("downstream DiffIDs (-archive +downstream):\n%s", diff)
				}
			}
			if err := pr.stop(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(pr.logs.String(), "Proxy stopped. Pushed 1 images (0 failed). Pulled 0 images (0 cache hits, 0 misses).") {
				t.Errorf("no stop line in the logs:\n%s", pr.logs.String())
			}
		})
	}
}

// TestProxyPullThrough pulls an image that exists only upstream through
// the proxy, twice: the second pull never reaches the upstream. The
// upstream wants credentials: the environment's password overrides the
// wrong one embedded in --upstream.
func TestProxyPullThrough(t *testing.T) {
	archive, _ := writeArchive(t, true)
	var mu sync.Mutex
	upstreamGets := map[string]int{}
	up := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthBasic, Username: "u", Password: "p",
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.Header.Get("Authorization") != "" {
					mu.Lock()
					upstreamGets[strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v2/fixture/app/"), "/", 2)[0]]++
					mu.Unlock()
				}
				h.ServeHTTP(w, r)
			})
		}})
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	mustRun(t, "--insecure", "--username", "u", "--password", "p", "--log-format", "console", "process", "tar://"+archive, "registry://"+up.Host+"/fixture/app:v1")
	mu.Lock()
	clear(upstreamGets)
	mu.Unlock()

	t.Setenv("OCCYSTRAP_UPSTREAM_PASSWORD", "p")
	pr := startProxyCmd(t, "--insecure", "proxy", "-d", down.Host+"/cache", "-u", "u:wrong@"+up.Host)
	var first map[string]int
	for i := range 2 {
		out := filepath.Join(t.TempDir(), fmt.Sprint("out", i))
		mustRun(t, "--insecure", "--log-format", "console", "process", "registry://"+pr.Host+"/fixture/app:v1", "dir://"+out)
		_, got := dirLayers(t, out, "manifest.json")
		if len(got) != 3 {
			t.Fatalf("pull %d: %d layers", i, len(got))
		}
		mu.Lock()
		if i == 0 {
			first = map[string]int{}
			for k, v := range upstreamGets {
				first[k] = v
			}
		} else if diff := cmp.Diff(first, upstreamGets); diff != "" {
			t.Errorf("second pull reached the upstream (-first +now):\n%s", diff)
		}
		mu.Unlock()
	}
	if first["manifests"] != 1 || first["blobs"] != 4 {
		t.Errorf("upstream GETs on the first pull: %v, want 1 manifest and 4 blobs", first)
	}
	if err := pr.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pr.logs.String(), "Pulled 2 images (1 cache hits, 1 misses).") {
		t.Errorf("stop line:\n%s", pr.logs.String())
	}
}

// String is what was written so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProxyPushWithCrane pushes into the proxy with crane (another client's
// upload pattern) and reads the image back from the downstream.
func TestProxyPushWithCrane(t *testing.T) {
	craneBin := testenv.Crane(t)
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 21, Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := origin.Push(ctx, "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	pr := startProxyCmd(t, "--insecure", "proxy", "-d", down.Host)
	out, err := exec.Command(craneBin, "copy", "--insecure", origin.Host+"/base/app:v1", pr.Host+"/base/app:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("crane copy into the proxy: %v\n%s\n%s", err, out, pr.logs.String())
	}
	dir := filepath.Join(t.TempDir(), "out")
	mustRun(t, "--insecure", "--log-format", "console", "process", "registry://"+down.Host+"/base/app:v1", "dir://"+dir)
	_, got := dirLayers(t, dir, "manifest.json")
	var want []digest.Digest
	for _, l := range img.Layers {
		want = append(want, l.DiffID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("downstream DiffIDs (-pushed +downstream):\n%s", diff)
	}
	// crane reads the manifest back from the proxy by digest.
	out, err = exec.Command(craneBin, "manifest", "--insecure", pr.Host+"/base/app@"+img.Digest.String()).Output()
	if err != nil || !bytes.Equal(out, img.Manifest) {
		t.Errorf("crane manifest by digest from the proxy: %v\n%s", err, out)
	}
}
