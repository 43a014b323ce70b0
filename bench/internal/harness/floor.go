package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Floor fetches each REPO@DIGEST blob from host once, all at once over one
// HTTP/2 transport, discarding the bytes; or, with file set, reads the file
// once. It is what `bench floor` runs.
func Floor(ctx context.Context, caFile, host, file string, blobs []string) error {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}
	cl := &http.Client{Transport: tr}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, b := range blobs {
		repo, dgst, ok := strings.Cut(b, "@")
		if !ok {
			return fmt.Errorf("floor: %q is not REPO@DIGEST", b)
		}
		g.Go(func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/"+repo+"/blobs/"+dgst, nil)
			if err != nil {
				return err
			}
			resp, err := cl.Do(req)
			if err != nil {
				return fmt.Errorf("floor: %s: %w", b, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("floor: %s: %s", b, resp.Status)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		})
	}
	return g.Wait()
}
