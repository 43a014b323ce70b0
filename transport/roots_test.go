package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert is a certificate and its key.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newTestCert makes a certificate for the names (IP addresses or DNS
// names), a CA if isCA, signed by parent (self-signed when nil).
func newTestCert(t *testing.T, cn string, isCA bool, parent *testCert, names ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{c, key}
}

// pemFile writes the certificates to a PEM file and returns its path.
func pemFile(t *testing.T, certs ...*testCert) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})...)
	}
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// protoServer is a TLS server (HTTP/2 enabled) presenting leaf and then
// chain, answering with the request's protocol.
func protoServer(t *testing.T, leaf *testCert, chain ...*testCert) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, r.Proto)
	}))
	tc := tls.Certificate{Certificate: [][]byte{leaf.cert.Raw}, PrivateKey: leaf.key}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.cert.Raw)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{tc}}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// getProto sends GET /v2/ to host and returns the protocol the server saw.
func getProto(tr *Transport, host string, ro RegistryOptions, bulk bool) (string, error) {
	reg := tr.Registry(host, ro)
	resp, err := reg.Do(context.Background(), Request{Method: http.MethodGet, URL: reg.URL("/v2/"), Bulk: bulk})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestVerifiedTLS: certificates are checked against the roots (here the CA
// in SSL_CERT_FILE, or in Options.CAFile) for the host dialled, IP
// addresses included, with the server's intermediates; HTTP/2 is
// negotiated on the main pool and HTTP/1.1 on the bulk one.
func TestVerifiedTLS(t *testing.T) {
	ca := newTestCert(t, "test CA", true, nil)
	inter := newTestCert(t, "test intermediate", true, ca)
	stranger := newTestCert(t, "other CA", true, nil)
	ipLeaf := newTestCert(t, "ip", false, ca, "127.0.0.1", "localhost")
	tests := []struct {
		name    string
		leaf    *testCert
		chain   []*testCert
		host    string // "localhost" or "127.0.0.1"
		caFile  bool   // the CA in Options.CAFile rather than SSL_CERT_FILE
		wantErr any    // nil or a pointer to the x509 error type wanted
	}{
		{name: "IP SAN, by IP", leaf: ipLeaf, host: "127.0.0.1"},
		{name: "IP SAN, by IP, --ca-file", leaf: ipLeaf, host: "127.0.0.1", caFile: true},
		{name: "DNS SAN, by name", leaf: newTestCert(t, "dns", false, ca, "localhost"), host: "localhost"},
		{name: "DNS SAN only, by IP", leaf: newTestCert(t, "dns", false, ca, "localhost"), host: "127.0.0.1", wantErr: new(x509.HostnameError)},
		{name: "other name, by IP", leaf: newTestCert(t, "other", false, ca, "other.example"), host: "127.0.0.1", wantErr: new(x509.HostnameError)},
		{name: "other name, by name", leaf: newTestCert(t, "other", false, ca, "other.example"), host: "localhost", wantErr: new(x509.HostnameError)},
		{name: "self-signed", leaf: newTestCert(t, "self", true, nil, "127.0.0.1"), host: "127.0.0.1", wantErr: new(x509.UnknownAuthorityError)},
		{name: "other CA", leaf: newTestCert(t, "stranger's", false, stranger, "127.0.0.1"), chain: []*testCert{stranger}, host: "127.0.0.1", wantErr: new(x509.UnknownAuthorityError)},
		{name: "via intermediate", leaf: newTestCert(t, "leaf", false, inter, "127.0.0.1"), chain: []*testCert{inter}, host: "127.0.0.1"},
		{name: "intermediate not sent", leaf: newTestCert(t, "leaf", false, inter, "127.0.0.1"), host: "127.0.0.1", wantErr: new(x509.UnknownAuthorityError)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := protoServer(t, tc.leaf, tc.chain...)
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			host := net.JoinHostPort(tc.host, port)
			var opts Options
			if tc.caFile {
				opts.CAFile = pemFile(t, ca)
				t.Setenv("SSL_CERT_FILE", "")
			} else {
				t.Setenv("SSL_CERT_FILE", pemFile(t, ca))
			}
			tr, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for _, bulk := range []bool{false, true} {
				want := "HTTP/2.0"
				if bulk {
					want = "HTTP/1.1"
				}
				proto, err := getProto(tr, host, RegistryOptions{}, bulk)
				if tc.wantErr != nil {
					var cve *tls.CertificateVerificationError
					if !errors.As(err, &cve) || !errors.As(cve.Err, tc.wantErr) {
						t.Fatalf("bulk %v: got %v, want a %T inside a *tls.CertificateVerificationError", bulk, err, tc.wantErr)
					}
					continue
				}
				if err != nil || proto != want {
					t.Fatalf("bulk %v: got %q, %v; want %s", bulk, proto, err, want)
				}
			}
			st := tr.Stats()
			wantHS := int64(2)
			if tc.wantErr != nil {
				wantHS = 0
			}
			if st.TLSHandshakes != wantHS || st.Retries != 0 {
				t.Errorf("handshakes %d, retries %d; want %d and 0", st.TLSHandshakes, st.Retries, wantHS)
			}
		})
	}
}

// TestInsecureHostNotVerified: a host whose certificate is not to be
// verified (?tls_verify=false, --tls-verify=false) is reached over the
// unverified pools whatever its certificate, and the others still are
// verified.
func TestInsecureHostNotVerified(t *testing.T) {
	t.Setenv("SSL_CERT_FILE", "")
	self := newTestCert(t, "self", true, nil, "other.example")
	srv := protoServer(t, self)
	host := strings.TrimPrefix(srv.URL, "https://")
	for _, tc := range []struct {
		name string
		opts Options
		ro   RegistryOptions
	}{
		{name: "RegistryOptions.SkipVerify", ro: RegistryOptions{SkipVerify: true}},
		{name: "Options.SkipVerify", opts: Options{SkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if tr.unverifiedRT.DialTLSContext != nil || tr.unverifiedBulkRT.DialTLSContext != nil {
				t.Fatal("an unverified pool has the verifying TLS dialer")
			}
			for bulk, want := range map[bool]string{false: "HTTP/2.0", true: "HTTP/1.1"} {
				if proto, err := getProto(tr, host, tc.ro, bulk); err != nil || proto != want {
					t.Errorf("bulk %v: got %q, %v; want %s", bulk, proto, err, want)
				}
			}
			if st := tr.Stats(); st.TLSHandshakes != 2 {
				t.Errorf("handshakes %d, want 2", st.TLSHandshakes)
			}
			// The same host verified (?tls_verify=true) fails.
			_, err = getProto(tr, host, RegistryOptions{ForceVerify: true}, false)
			var cve *tls.CertificateVerificationError
			if !errors.As(err, &cve) {
				t.Errorf("verified: got %v, want a certificate error", err)
			}
		})
	}
}

// TestProxyLoadsRootsEagerly: with a proxy in the environment net/http does
// the TLS itself (after CONNECT), so the roots are in TLSClientConfig and
// there is no TLS dialer; without one, the reverse.
func TestProxyLoadsRootsEagerly(t *testing.T) {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(v, "")
	}
	for _, proxy := range []string{"", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY"} {
		t.Run("proxy="+proxy, func(t *testing.T) {
			if proxy != "" {
				t.Setenv(proxy, "http://127.0.0.1:1")
			}
			tr, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for _, rt := range []*http.Transport{tr.rt, tr.bulkRT} {
				dialer, roots := rt.DialTLSContext != nil, rt.TLSClientConfig.RootCAs != nil
				if rt.TLSClientConfig.InsecureSkipVerify {
					t.Fatal("a verified pool skips verification")
				}
				if proxy != "" && (dialer || !roots) || proxy == "" && (!dialer || roots) {
					t.Errorf("TLS dialer %v, roots in TLSClientConfig %v", dialer, roots)
				}
			}
		})
	}
}

// TestUnreadableRootsFailHandshake: a file SSL_CERT_FILE names that cannot
// be read fails the first verified handshake (it is read after New), with
// the file named, and is not retried.
func TestUnreadableRootsFailHandshake(t *testing.T) {
	srv := protoServer(t, newTestCert(t, "self", true, nil, "127.0.0.1"))
	dir := t.TempDir() // a directory: read fails
	t.Setenv("SSL_CERT_FILE", dir)
	tr, err := New(Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = getProto(tr, strings.TrimPrefix(srv.URL, "https://"), RegistryOptions{}, false)
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || !strings.Contains(err.Error(), "read trusted certificates "+dir) {
		t.Fatalf("got %v, want a certificate error naming %s", err, dir)
	}
	if st := tr.Stats(); st.Retries != 0 || st.TLSHandshakes != 0 {
		t.Errorf("retries %d, handshakes %d; want 0 and 0", st.Retries, st.TLSHandshakes)
	}
}

// TestTLSHandshakeTimeout: a server that accepts the connection and never
// answers fails the handshake after the handshake timeout, and the
// connection is closed.
func TestTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c) // the ClientHello, then EOF when the client gives up
		closed <- err
	}()
	tr, err := New(Options{NoRetries: true, RootCAs: x509.NewCertPool()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.handshakeTimeout = 50 * time.Millisecond
	_, err = getProto(tr, ln.Addr().String(), RegistryOptions{}, false)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("got %v, want a TLS handshake timeout", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("server side: %v, want the connection closed", err)
	}
}
