package dockerpush

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
)

// testRegistry serves a registry over TLS with its own certificate, as
// Emit does, and returns it with a client that trusts that certificate.
func testRegistry(t *testing.T) (*registry, *httptest.Server, *http.Client) {
	t.Helper()
	reg := newRegistry(t.TempDir(), zerolog.Nop())
	cfg, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(reg)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(cfg.Certificates[0].Leaf)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}}
	t.Cleanup(hc.CloseIdleConnections)
	return reg, srv, hc
}

func do(t *testing.T, hc *http.Client, method, url string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t *testing.T, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

func TestCertificate(t *testing.T) {
	now := time.Now()
	cfg, err := selfSigned(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cfg.Certificates[0].Leaf
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: roots, CurrentTime: now}); err != nil {
		t.Errorf("certificate does not verify for 127.0.0.1: %v", err)
	}
	if d := leaf.NotAfter.Sub(now); d > 25*time.Hour || d < 23*time.Hour {
		t.Errorf("certificate valid for %s after now, want a day", d)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", cfg.MinVersion)
	}
}

func TestVersionCheck(t *testing.T) {
	_, srv, hc := testRegistry(t)
	for _, p := range []string{"/v2/", "/v2"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "{}" || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("GET %s: %s %q %v", p, resp.Status, b, resp.Header)
		}
	}
}

func TestUploads(t *testing.T) {
	layer := bytes.Repeat([]byte("occystrap layer content\n"), 50000)
	config := []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`)
	tests := []struct {
		name     string
		blob     []byte   // what is pushed
		chunks   [][]byte // PATCH bodies; the rest goes in the PUT
		chunked  bool     // send bodies with Transfer-Encoding: chunked
		digest   string   // PUT ?digest=; default the blob's
		wantPut  int
		wantComp string
		wantRaw  []byte // the uncompressed content
	}{
		{name: "monolithic gzip", blob: gz(t, layer), wantPut: 201, wantComp: compGzip, wantRaw: layer},
		{name: "patch then put gzip", blob: gz(t, layer), chunks: [][]byte{nil}, wantPut: 201, wantComp: compGzip, wantRaw: layer},
		{name: "three patches chunked", blob: gz(t, layer), chunks: [][]byte{nil, nil, nil}, chunked: true, wantPut: 201, wantComp: compGzip, wantRaw: layer},
		{name: "zstd", blob: zst(t, layer), chunks: [][]byte{nil}, wantPut: 201, wantComp: compZstd, wantRaw: layer},
		{name: "uncompressed config", blob: config, chunks: [][]byte{nil}, wantPut: 201, wantComp: compNone, wantRaw: config},
		{name: "digest mismatch", blob: gz(t, layer), chunks: [][]byte{nil}, digest: digest.FromString("other").String(), wantPut: 400},
		{name: "digest missing", blob: gz(t, layer), chunks: [][]byte{nil}, digest: "-", wantPut: 400},
		{name: "corrupt gzip", blob: append([]byte{0x1f, 0x8b}, layer[:1000]...), wantPut: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, srv, hc := testRegistry(t)
			d := digest.FromBytes(tc.blob)
			if resp := do(t, hc, http.MethodHead, srv.URL+"/v2/occy/app/blobs/"+d.String(), nil); resp.StatusCode != 404 {
				t.Errorf("HEAD before upload: %s, want 404", resp.Status)
			}
			resp := do(t, hc, http.MethodPost, srv.URL+"/v2/occy/app/blobs/uploads/", nil)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != 202 || !strings.HasPrefix(loc, "/v2/occy/app/blobs/uploads/") ||
				resp.Header.Get("Docker-Upload-UUID") == "" || resp.Header.Get("Range") != "0-0" {
				t.Fatalf("POST: %s %v", resp.Status, resp.Header)
			}
			rest := tc.blob
			if k := len(tc.chunks); k > 0 {
				size := (len(rest) + k - 1) / k
				var sent int
				for range k {
					part := rest[:min(size, len(rest))]
					rest = rest[len(part):]
					sent += len(part)
					var body io.Reader = bytes.NewReader(part)
					if tc.chunked {
						body = io.MultiReader(body) // no length: chunked
					}
					resp := do(t, hc, http.MethodPatch, srv.URL+loc, body)
					if want := "0-" + strconv.Itoa(sent-1); resp.StatusCode != 202 || resp.Header.Get("Range") != want {
						t.Fatalf("PATCH: %s Range %q, want 202 %q", resp.Status, resp.Header.Get("Range"), want)
					}
					loc = resp.Header.Get("Location")
				}
			}
			q := "?digest=" + d.String()
			switch tc.digest {
			case "":
			case "-":
				q = ""
			default:
				q = "?digest=" + tc.digest
			}
			resp = do(t, hc, http.MethodPut, srv.URL+loc+q, bytes.NewReader(rest))
			if resp.StatusCode != tc.wantPut {
				t.Fatalf("PUT: %s, want %d", resp.Status, tc.wantPut)
			}
			blobs, _, _ := reg.Take()
			head := do(t, hc, http.MethodHead, srv.URL+"/v2/occy/app/blobs/"+d.String(), nil)
			if tc.wantPut != 201 {
				if len(blobs) != 0 || head.StatusCode != 404 {
					t.Errorf("after a refused upload: blobs %v, HEAD %s", blobs, head.Status)
				}
				if left, _ := os.ReadDir(reg.tempDir); len(left) != 0 {
					t.Errorf("files left after a refused upload: %v", left)
				}
				return
			}
			if resp.Header.Get("Docker-Content-Digest") != d.String() || resp.Header.Get("Location") != "/v2/occy/app/blobs/"+d.String() {
				t.Errorf("PUT headers: %v", resp.Header)
			}
			if head.StatusCode != 200 || head.Header.Get("Docker-Content-Digest") != d.String() || head.ContentLength != int64(len(tc.blob)) {
				t.Errorf("HEAD after upload: %s %v", head.Status, head.Header)
			}
			if len(blobs) != 1 {
				t.Fatalf("Take gave %d blobs, want 1", len(blobs))
			}
			b := blobs[0]
			got, err := os.ReadFile(b.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer os.Remove(b.Path)
			if !bytes.Equal(got, tc.wantRaw) {
				t.Errorf("spooled content differs: %d bytes, want %d", len(got), len(tc.wantRaw))
			}
			wantBlob := blob{Digest: d, Size: int64(len(tc.blob)), DiffID: digest.FromBytes(tc.wantRaw),
				USize: int64(len(tc.wantRaw)), Comp: tc.wantComp, Path: b.Path}
			if diff := cmp.Diff(wantBlob, *b); diff != "" {
				t.Errorf("blob (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownUpload(t *testing.T) {
	_, srv, hc := testRegistry(t)
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		if resp := do(t, hc, m, srv.URL+"/v2/occy/app/blobs/uploads/nope?digest="+digest.FromString("x").String(), strings.NewReader("x")); resp.StatusCode != 404 {
			t.Errorf("%s of an unknown upload: %s, want 404", m, resp.Status)
		}
	}
}

func TestManifest(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantStatus  int
		wantFailure error
	}{
		{name: "image manifest", body: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}`, wantStatus: 201},
		{name: "manifest list", body: `{"schemaVersion":2,"manifests":[]}`, wantStatus: 400, wantFailure: ErrManifestList},
		{name: "not JSON", body: `nope`, wantStatus: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, srv, hc := testRegistry(t)
			resp := do(t, hc, http.MethodPut, srv.URL+"/v2/occy/app/manifests/v1", strings.NewReader(tc.body))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("PUT manifest: %s, want %d", resp.Status, tc.wantStatus)
			}
			_, m, failure := reg.Take()
			if failure != tc.wantFailure {
				t.Errorf("failure %v, want %v", failure, tc.wantFailure)
			}
			if tc.wantStatus != 201 {
				if m != nil {
					t.Errorf("refused manifest kept: %s", m)
				}
				return
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != digest.FromString(tc.body).String() {
				t.Errorf("Docker-Content-Digest %s, want %s", got, digest.FromString(tc.body))
			}
			if string(m) != tc.body {
				t.Errorf("manifest %q, want %q", m, tc.body)
			}
			select {
			case <-reg.Changed():
			default:
				t.Error("no change signalled for the manifest")
			}
		})
	}
}

// TestCloseRemovesUploads: an upload left unfinished is ended and its file
// removed by Close.
func TestCloseRemovesUploads(t *testing.T) {
	dir := t.TempDir()
	reg := newRegistry(dir, zerolog.Nop())
	srv := httptest.NewServer(reg)
	resp := do(t, srv.Client(), http.MethodPost, srv.URL+"/v2/occy/app/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	do(t, srv.Client(), http.MethodPatch, srv.URL+loc, bytes.NewReader(gz(t, []byte("partial"))))
	srv.Close()
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left after Close: %v", left)
	}
}

func TestCompressionOf(t *testing.T) {
	for mt, want := range map[string]string{
		"application/vnd.docker.image.rootfs.diff.tar.gzip":         compGzip,
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": compGzip,
		"application/vnd.oci.image.layer.v1.tar+gzip":               compGzip,
		"application/vnd.oci.image.layer.v1.tar+zstd":               compZstd,
		"application/vnd.docker.image.rootfs.diff.tar.zstd":         compZstd,
		"application/vnd.oci.image.layer.v1.tar":                    compNone,
		"application/octet-stream":                                  "",
	} {
		if got := compressionOf(mt); got != want {
			t.Errorf("compressionOf(%s) = %q, want %q", mt, got, want)
		}
	}
}
