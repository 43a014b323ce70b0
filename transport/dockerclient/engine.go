package dockerclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/stage"
)

// DefaultSocket is the engine's socket when neither ?socket= nor DOCKER_HOST
// names one.
const DefaultSocket = "/var/run/docker.sock"

// maxError bounds how much of an error answer is read.
const maxError = 64 << 10

// ResolveSocket returns the socket to use: opt (the URI's ?socket=) when
// set, else the path of dockerHost (DOCKER_HOST) when it is unix://PATH, else
// DefaultSocket. Another DOCKER_HOST scheme is an error: only unix sockets
// are supported.
func ResolveSocket(opt, dockerHost string) (string, error) {
	if opt != "" {
		return opt, nil
	}
	if dockerHost == "" {
		return DefaultSocket, nil
	}
	if p, ok := strings.CutPrefix(dockerHost, "unix://"); ok && p != "" {
		return p, nil
	}
	return "", fmt.Errorf("DOCKER_HOST=%q: only unix:// sockets are supported (or give ?socket=PATH)", dockerHost)
}

// Client talks to one engine over its unix socket.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the engine at socket.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Clients keeps one Client per socket, for a process that opens several
// docker:// inputs and outputs. Safe for concurrent use.
type Clients struct {
	mu sync.Mutex
	m  map[string]*Client
}

// Get returns the client of socket, making it on first use.
func (cs *Clients) Get(socket string) *Client {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m == nil {
		cs.m = map[string]*Client{}
	}
	c, ok := cs.m[socket]
	if !ok {
		c = New(socket)
		cs.m[socket] = c
	}
	return c
}

// Socket is the socket the client dials.
func (c *Client) Socket() string { return c.socket }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	// The image reference goes into the path as it is: the engine's router
	// takes names with '/' in them.
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return c.send(ctx, req)
}

// send sends req (made with ctx) and classes a failure to connect.
func (c *Client) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		method, path := req.Method, req.URL.RequestURI()
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("docker %s %s at %s: %w: %w", method, path, c.socket, ErrConnect, err)
		}
		return nil, fmt.Errorf("docker %s %s at %s: %w", method, path, c.socket, err)
	}
	return resp, nil
}

// answerError turns a non-2xx answer into an error carrying the engine's
// message ({"message": "..."}).
func answerError(what string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxError))
	var m struct{ Message string }
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w: %s", what, ErrNotFound, msg)
	}
	return fmt.Errorf("%s: %w: %s: %s", what, ErrEngine, resp.Status, msg)
}

// Image is what Inspect returns of an image.
type Image struct {
	ID       digest.Digest `json:"Id"`
	RepoTags []string
	Size     int64
	RootFS   struct {
		Type   string
		Layers []digest.Digest
	}
}

// Inspect returns image ref ("name:tag" or an id). An unknown image gives
// ErrNotFound.
func (c *Client) Inspect(ctx context.Context, ref string) (Image, error) {
	what := "inspect image " + ref
	resp, err := c.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, "")
	if err != nil {
		return Image{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Image{}, answerError(what, resp)
	}
	var img Image
	if err := json.NewDecoder(resp.Body).Decode(&img); err != nil {
		return Image{}, fmt.Errorf("%s: decode answer: %w", what, err)
	}
	return img, nil
}

// InspectImage is Inspect of an image by NAME:TAG, whose Id must then be a
// valid digest. An unknown image gives ErrNotFound.
func (c *Client) InspectImage(ctx context.Context, ref string) (Image, error) {
	info, err := c.Inspect(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	if err := info.ID.Validate(); err != nil {
		return Image{}, fmt.Errorf("inspect image %s: Id %q: %w", ref, info.ID, err)
	}
	return info, nil
}

// ParseImage splits IMAGE[:TAG] at the tag's ':' (one after the last '/');
// the tag defaults to "latest".
func ParseImage(s string) stage.Image {
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return stage.Image{Name: s[:i], Tag: s[i+1:]}
	}
	return stage.Image{Name: s, Tag: "latest"}
}

// Save streams image ref as a docker-save archive. The caller closes it.
func (c *Client) Save(ctx context.Context, ref string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/images/"+ref+"/get", nil, "")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, answerError("save image "+ref, resp)
	}
	return resp.Body, nil
}

// Load posts a docker-save archive read from r to /images/load and reads
// the engine's JSON-lines answer to its end. A line with an error is a
// failure carrying the engine's message. It returns the answer's "stream"
// texts (for example "Loaded image: NAME:TAG").
func (c *Client) Load(ctx context.Context, r io.Reader) ([]string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/load?quiet=0", r, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, answerError("load image", resp)
	}
	var out []string
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var line struct {
			Stream      string
			Error       string
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
		}
		err := dec.Decode(&line)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("load image: read answer: %w", err)
		}
		if line.ErrorDetail != nil && line.ErrorDetail.Message != "" {
			return out, fmt.Errorf("load image: %w: %s", ErrEngine, line.ErrorDetail.Message)
		}
		if line.Error != "" {
			return out, fmt.Errorf("load image: %w: %s", ErrEngine, line.Error)
		}
		if s := strings.TrimSpace(line.Stream); s != "" {
			out = append(out, s)
		}
	}
}

// Remove deletes image ref (force, keeping untagged parents is not asked).
func (c *Client) Remove(ctx context.Context, ref string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/images/"+ref+"?force=1", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError("remove image "+ref, resp)
	}
	return nil
}

// CloseIdle closes the client's idle connections (for tests and the end of
// a run).
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }
