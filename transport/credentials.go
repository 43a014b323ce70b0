package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// credentialStore reads Docker's config.json once and asks credential
// helpers on demand, remembering their answers per host.
type credentialStore struct {
	dir string

	once sync.Once
	cfg  dockerConfig
	err  error

	mu     sync.Mutex
	helped map[string]cred
}

type cred struct {
	user, pass string
	ok         bool
}

type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

func newCredentialStore(dir string) *credentialStore {
	return &credentialStore{dir: dir, helped: map[string]cred{}}
}

func (s *credentialStore) load() {
	dir := s.dir
	if dir == "" {
		dir = os.Getenv("DOCKER_CONFIG")
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		if !os.IsNotExist(err) {
			s.err = err
		}
		return
	}
	if err := json.Unmarshal(b, &s.cfg); err != nil {
		s.err = fmt.Errorf("parse %s: %w", filepath.Join(dir, "config.json"), err)
	}
}

// normalizeHost turns a config.json auths key into a host[:port].
func normalizeHost(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	if k == "index.docker.io" || k == "registry-1.docker.io" {
		k = "docker.io"
	}
	return k
}

// lookup returns the credentials Docker's config holds for host.
func (s *credentialStore) lookup(ctx context.Context, host string) (user, pass string, ok bool, err error) {
	s.once.Do(s.load)
	if s.err != nil {
		return "", "", false, s.err
	}
	want := normalizeHost(host)
	helper := s.cfg.CredHelpers[host]
	if helper == "" {
		for k, v := range s.cfg.CredHelpers {
			if normalizeHost(k) == want {
				helper = v
			}
		}
	}
	if helper == "" {
		for k, a := range s.cfg.Auths {
			if normalizeHost(k) != want {
				continue
			}
			if a.Auth != "" {
				raw, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return "", "", false, fmt.Errorf("docker config auth for %s: %w", host, err)
				}
				u, p, found := strings.Cut(string(raw), ":")
				if found {
					return u, p, true, nil
				}
			}
			if a.Username != "" {
				return a.Username, a.Password, true, nil
			}
		}
		helper = s.cfg.CredsStore
	}
	if helper == "" {
		return "", "", false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, done := s.helped[host]; done {
		return c.user, c.pass, c.ok, nil
	}
	server := host
	if want == "docker.io" {
		// Docker stores Docker Hub's credentials under its v1 index URL,
		// and asks helpers for that.
		server = "https://index.docker.io/v1/"
	}
	c, err := runHelper(ctx, helper, server)
	if err != nil {
		return "", "", false, err
	}
	s.helped[host] = c
	return c.user, c.pass, c.ok, nil
}

// runHelper asks docker-credential-<helper> for host's credentials. A helper
// that knows nothing of the host is not an error.
func runHelper(ctx context.Context, helper, host string) (cred, error) {
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(host)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String() + errOut.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return cred{}, nil
		}
		return cred{}, fmt.Errorf("credential helper docker-credential-%s for %s: %w", helper, host, err)
	}
	var r struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return cred{}, fmt.Errorf("credential helper docker-credential-%s for %s: bad reply: %w", helper, host, err)
	}
	if r.Username == "<token>" {
		// An identity token; registries accept it as a password with any
		// user name in the token request.
		r.Username = "oauth2accesstoken"
	}
	return cred{user: r.Username, pass: r.Secret, ok: r.Secret != ""}, nil
}
