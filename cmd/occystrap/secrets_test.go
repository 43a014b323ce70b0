package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestSecretsNeverPrinted gives the CLI a known secret in every way
// credentials can be given (URI options, --password, the environment,
// Docker's config.json, a Quay token), on runs that succeed and runs that
// fail, with debug logs on, and checks that the secret (and the Basic
// header made from it) appears on no line of stdout or stderr.
func TestSecretsNeverPrinted(t *testing.T) {
	const user, secret = "alice", "s3cret-Zq9xW"
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken, Username: user, Password: secret})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 3, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	q, qreg := testquay.Start(t, testquay.Options{Token: secret}, testregistry.Options{Plain: true})
	kollaCorpus(t, q, qreg, 1)

	dockerCfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))
	if err := os.WriteFile(filepath.Join(dockerCfg, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyCfg := t.TempDir()

	src := "registry://" + reg.Host + "/fixture/app:v1"
	missing := "registry://" + reg.Host + "/fixture/app:nope"
	withOpts := "?username=" + user + "&password=" + secret
	quay := "quay://openstack.kolla/*:2025.1-debian-bookworm?host=" + qreg.Host
	dir := func() string { return "dir://" + t.TempDir() }
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
	}{
		{"uri options", nil, []string{"process", src + withOpts, dir()}, 0},
		{"uri options, percent-encoded", nil, []string{"process", src + "?username=" + user + "&password=s3cret%2DZq9xW", dir()}, 0},
		{"flag", nil, []string{"--username", user, "--password", secret, "process", src, dir()}, 0},
		{"flag=", nil, []string{"--username=" + user, "--password=" + secret, "process", src, dir()}, 0},
		{"environment", map[string]string{"OCCYSTRAP_USERNAME": user, "OCCYSTRAP_PASSWORD": secret}, []string{"process", src, dir()}, 0},
		{"docker config", map[string]string{"DOCKER_CONFIG": dockerCfg}, []string{"process", src, dir()}, 0},
		{"info", nil, []string{"info", src + withOpts}, 0},
		{"check", nil, []string{"check", src + withOpts}, 0},
		{"search", nil, []string{"search", src + withOpts, "*"}, 0},
		{"quay token", nil, []string{"process", quay + "&token=" + secret, dir() + "?unique_names=true"}, 0},
		{"plan, quay token", nil, []string{"-O", "json", "plan", quay + "&token=" + secret, "--shards", "2"}, 0},
		{"sharded run, quay token", nil, []string{"process", quay + "&token=" + secret, dir() + "?unique_names=true", "--shard", "1/2"}, 0},
		{"shard of a single image", nil, []string{"process", src + withOpts, dir(), "--shard", "0/2"}, 2},
		{"dry run, quay token", nil, []string{"process", "--dry-run", quay + "&token=" + secret, dir() + "?unique_names=true"}, 0},

		{"missing tag, uri options", nil, []string{"process", missing + withOpts, dir()}, 1},
		{"missing tag, flag", nil, []string{"--username", user, "--password", secret, "process", missing, dir()}, 1},
		{"missing tag, environment", map[string]string{"OCCYSTRAP_USERNAME": user, "OCCYSTRAP_PASSWORD": secret}, []string{"process", missing, dir()}, 1},
		{"missing tag, docker config", map[string]string{"DOCKER_CONFIG": dockerCfg}, []string{"process", missing, dir()}, 1},
		{"wrong user", nil, []string{"process", src + "?username=bob&password=" + secret, dir()}, 1},
		{"unknown option", nil, []string{"process", src + withOpts + "&bogus=1", dir()}, 2},
		{"unknown scheme", nil, []string{"process", "bogus://" + user + ":" + secret + "@h/x", dir()}, 2},
		{"bad destination", nil, []string{"process", src + withOpts, "registry://127.0.0.1:1/x:y" + withOpts}, 1},
		{"quay wrong token", nil, []string{"process", quay + "&token=" + secret + "x", dir() + "?unique_names=true"}, 1},
		{"usage error", nil, []string{"--password", secret, "process"}, 2},
	}
	forbidden := []string{secret, "s3cret%2DZq9xW", auth, base64.StdEncoding.EncodeToString([]byte("bob:" + secret))}
	for _, tc := range cases {
		for _, format := range []string{"json", "console"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				t.Setenv("DOCKER_CONFIG", emptyCfg)
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				args := append([]string{"--insecure", "--debug", "--retries", "0", "--log-format", format}, tc.args...)
				code, stdout, stderr := runCLI(args...)
				if code != tc.wantCode {
					t.Errorf("exit %d, want %d\nstderr:\n%s", code, tc.wantCode, stderr)
				}
				for name, text := range map[string]string{"stdout": stdout, "stderr": stderr} {
					for i, line := range strings.Split(text, "\n") {
						for _, f := range forbidden {
							if strings.Contains(line, f) {
								t.Errorf("%s line %d holds the secret %q: %s", name, i+1, f, line)
							}
						}
					}
				}
			})
		}
	}
}
