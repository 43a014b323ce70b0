package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
)

// Floor fetches each REPO@DIGEST blob from host once, all at once over one
// HTTP/2 transport, discarding the bytes; or, with file set, reads the file
// once. With gunzip, each gzip blob is also decompressed into nothing with
// Go's fastest inflater (klauspost/compress): the floor of a run that must
// inflate every layer in Go. It is what `bench floor` runs.
func Floor(ctx context.Context, caFile, host, file string, gunzip bool, blobs []string) error {
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
			if !gunzip {
				_, err = io.Copy(io.Discard, resp.Body)
				return err
			}
			br := bufio.NewReaderSize(resp.Body, 256<<10)
			if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
				zr, err := gzip.NewReader(br)
				if err != nil {
					return fmt.Errorf("floor: %s: %w", b, err)
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					return fmt.Errorf("floor: %s: %w", b, err)
				}
			}
			_, err = io.Copy(io.Discard, br)
			return err
		})
	}
	return g.Wait()
}
