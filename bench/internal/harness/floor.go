package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
)

// Floor fetches each REPO@DIGEST blob from host once, all at once over one
// HTTP/2 transport, discarding the bytes; or, with file set, reads the file
// once. With gunzip, each gzip blob is also decompressed into nothing with
// Go's fastest inflater (klauspost/compress): the floor of a run that must
// inflate every layer in Go. With uploadTo, each blob is instead streamed
// as it comes into one upload to that registry (POST over HTTP/2, then
// one PUT ?digest= over HTTP/1.1, into repository floor/REPO): the floor
// of a copy between registries, which moves every byte down and up once.
// It is what `bench floor` runs.
func Floor(ctx context.Context, caFile, host, file string, gunzip bool, uploadTo string, blobs []string) error {
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
	// Uploads over HTTP/1.1, a connection each: over one HTTP/2 connection
	// the server's connection-level window (1 MiB in Go's) would throttle
	// them.
	up := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}, MaxIdleConnsPerHost: 64}}
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
			if uploadTo != "" {
				return upload(ctx, cl, up, uploadTo, "floor/"+repo, dgst, resp)
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

// upload streams the blob resp is fetching into repo of host: POST (cl),
// then one PUT ?digest= (up) whose body is resp's.
func upload(ctx context.Context, cl, up *http.Client, host, repo, dgst string, resp *http.Response) error {
	what := "floor: upload " + repo + "@" + dgst
	base, err := url.Parse("https://" + host + "/v2/" + repo + "/blobs/uploads/")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String(), nil)
	if err != nil {
		return err
	}
	post, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s: POST: %s", what, post.Status)
	}
	loc, err := base.Parse(post.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("%s: Location: %w", what, err)
	}
	q := loc.Query()
	q.Set("digest", dgst)
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), resp.Body)
	if err != nil {
		return err
	}
	req.ContentLength = resp.ContentLength
	req.Header.Set("Content-Type", "application/octet-stream")
	put, err := up.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	put.Body.Close()
	if put.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s: PUT: %s", what, put.Status)
	}
	return nil
}
