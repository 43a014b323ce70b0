package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/sourcegraph/conc"
)

// Loading the trusted roots costs ~40 ms of CPU (Go reads the system bundle
// and every file of /etc/ssl/certs and parses ~280 certificates), 12 % of a
// single-image copy. New therefore starts it in the background, and a
// verified connection waits for it only when the server's certificate has
// arrived (after the TCP connect and the first TLS round trip): a
// DialTLSContext does the handshake with crypto/tls's built-in check turned
// off and the same check done by VerifyConnection once the roots are there.
//
// net/http calls DialTLSContext only when the first hop is TLS to the
// registry. Through a proxy it does the TLS itself with TLSClientConfig, so
// when the environment names a proxy New waits for the roots and puts them
// in TLSClientConfig as before (no DialTLSContext). Otherwise
// TLSClientConfig keeps RootCAs nil and verifies: were it used after all (a
// proxy variable set after New), it would trust the system roots alone, a
// subset of ours, and never less than verify.

// tlsHandshakeTimeout bounds a TLS handshake (http.Transport's
// TLSHandshakeTimeout, which it does not apply to a DialTLSContext).
const tlsHandshakeTimeout = 15 * time.Second

// rootsLoader holds the trusted roots, loaded once by a goroutine it owns.
type rootsLoader struct {
	wg   conc.WaitGroup
	done chan struct{} // closed when pool and err are set
	pool *x509.CertPool
	err  error
}

// loadRoots starts loading the trusted roots: the system's (or rootCAs when
// not nil) plus the certificates in the PEM bytes caPEM.
func loadRoots(rootCAs *x509.CertPool, caPEM []byte) *rootsLoader {
	r := &rootsLoader{done: make(chan struct{})}
	load := func() (*x509.CertPool, error) {
		pool := rootCAs
		if pool == nil {
			var err error
			if pool, err = systemRoots(); err != nil {
				return nil, err
			}
		}
		if caPEM != nil {
			pool = pool.Clone()
			pool.AppendCertsFromPEM(caPEM)
		}
		return pool, nil
	}
	if rootCAs != nil {
		// Given by a test: nothing to read, nothing to wait for.
		r.pool, r.err = load()
		close(r.done)
		return r
	}
	r.wg.Go(func() {
		defer close(r.done)
		r.pool, r.err = load()
	})
	return r
}

// get waits for the roots, or for ctx.
func (r *rootsLoader) get(ctx context.Context) (*x509.CertPool, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.pool == nil && r.err == nil { // the loader panicked (re-raised by wait)
		return nil, errors.New("trusted certificates not loaded")
	}
	return r.pool, r.err
}

// wait waits for the loading goroutine to end.
func (r *rootsLoader) wait() { r.wg.Wait() }

// systemRoots is the system pool plus what SSL_CERT_FILE and SSL_CERT_DIR
// name.
func systemRoots() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	var files []string
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		for _, dir := range filepath.SplitList(d) {
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !e.IsDir() {
					files = append(files, filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read trusted certificates %s: %w", f, err)
		}
		pool.AppendCertsFromPEM(b)
	}
	return pool, nil
}

// proxyInEnvironment reports whether the environment names a proxy, by the
// variables http.ProxyFromEnvironment reads (it ignores ALL_PROXY).
func proxyInEnvironment() bool {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// dialTLS returns a DialTLSContext for a pool whose connections offer the
// ALPN protocols protos: dial (TCP, counted), then a TLS handshake with a
// clone of base that checks the server's chain against the roots as
// crypto/tls does, waiting for them only at that point.
func (t *Transport) dialTLS(dial func(context.Context, string, string) (net.Conn, error), base *tls.Config, protos []string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithTimeout(ctx, t.handshakeTimeout)
		defer cancel()
		cfg := base.Clone()
		cfg.ServerName = host
		cfg.NextProtos = protos
		// Only turns off the built-in check, which would need the roots
		// before the handshake starts; VerifyConnection does the same check
		// (it is called on every handshake, resumed ones included).
		cfg.InsecureSkipVerify = true //nolint:gosec // verified below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := t.verifyServer(hctx, cs, host); err != nil {
				return err
			}
			t.c.handshakes.Add(1)
			return nil
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = conn.Close()
			if ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("TLS handshake with %s timed out after %s: %w", addr, t.handshakeTimeout, context.DeadlineExceeded)
			}
			// Unwrapped: the retry policy and the plain-HTTP fallback
			// look at its type.
			return nil, err
		}
		return tc, nil
	}
}

// verifyServer checks the server's chain for name (the host dialled, not
// cs.ServerName: that is the SNI, empty for an IP address) against the
// roots, as crypto/tls's verifyServerCertificate does, and fails the same
// way: a *tls.CertificateVerificationError wrapping x509's error.
func (t *Transport) verifyServer(ctx context.Context, cs tls.ConnectionState, name string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("tls: server sent no certificate")
	}
	pool, err := t.roots.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	opts := x509.VerifyOptions{Roots: pool, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	return nil
}
