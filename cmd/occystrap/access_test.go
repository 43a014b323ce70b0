package main

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// imageLine matches info's Image: line for ref.
func imageLine(ref string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^Image:\s+` + regexp.QuoteMeta(ref) + `$`)
}

// pushedRegistry starts a registry holding fixture/app:v1.
func pushedRegistry(t *testing.T, plain bool) *testregistry.Registry {
	t.Helper()
	reg := testregistry.Start(t, testregistry.Options{Plain: plain, Auth: testregistry.AuthToken})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 18, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestTLSVerifyAndCAFile reaches a registry with a self-signed certificate
// the ways skopeo and crane users expect, through the binary.
func TestTLSVerifyAndCAFile(t *testing.T) {
	reg := pushedRegistry(t, false)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "registry://" + reg.Host + "/fixture/app:v1"
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		wantErr string // empty: success
	}{
		{name: "verified by default", args: []string{"info", src}, wantErr: "certificate"},
		{name: "--ca-file", args: []string{"--ca-file", ca, "info", src}},
		{name: "OCCYSTRAP_CA_FILE", env: []string{"OCCYSTRAP_CA_FILE=" + ca}, args: []string{"info", src}},
		{name: "--ca-file without PEM", args: []string{"--ca-file", notPEM, "info", src}, wantErr: "holds no PEM certificate"},
		{name: "--tls-verify=false", args: []string{"--tls-verify=false", "info", src}},
		{name: "--no-tls-verify", args: []string{"--no-tls-verify", "info", src}},
		{name: "OCCYSTRAP_TLS_VERIFY=false", env: []string{"OCCYSTRAP_TLS_VERIFY=false"}, args: []string{"info", src}},
		{name: "?tls_verify=false", args: []string{"info", src + "?tls_verify=false"}},
		{name: "?tls_verify=true overrides the flag", args: []string{"--tls-verify=false", "info", src + "?tls_verify=true"}, wantErr: "certificate"},
		// Plain HTTP to a TLS registry: the environment variable is read.
		{name: "OCCYSTRAP_INSECURE", env: []string{"OCCYSTRAP_INSECURE=true"}, args: []string{"--ca-file", ca, "info", src}, wantErr: "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := binRun(t, tc.env, append([]string{"--log-format", "json"}, tc.args...)...)
			if tc.wantErr == "" {
				if code != 0 || !imageLine("fixture/app:v1").MatchString(out) {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
				return
			}
			if code != 1 || !strings.Contains(errs, tc.wantErr) {
				t.Fatalf("exit %d, want 1 and an error with %q\nstderr:\n%s", code, tc.wantErr, errs)
			}
		})
	}
}

// TestLoopbackPlainHTTP reaches a plain-HTTP registry on 127.0.0.1 and
// localhost with no flag, as docker and crane do; OCCYSTRAP_VERBOSE shows
// the switch.
func TestLoopbackPlainHTTP(t *testing.T) {
	reg := pushedRegistry(t, true)
	_, port, _ := strings.Cut(reg.Host, ":")
	for _, host := range []string{reg.Host, "localhost:" + port} {
		t.Run(host, func(t *testing.T) {
			out, errs := binMust(t, []string{"OCCYSTRAP_VERBOSE=1"}, "--log-format", "json", "info", "registry://"+host+"/fixture/app:v1")
			if !imageLine("fixture/app:v1").MatchString(out) {
				t.Errorf("stdout:\n%s", out)
			}
			if !strings.Contains(errs, `"level":"debug"`) || !strings.Contains(errs, "speaks plain HTTP") {
				t.Errorf("OCCYSTRAP_VERBOSE=1: no debug line about plain HTTP:\n%s", errs)
			}
		})
	}
	// A whole copy, uploads included, to and from plain loopback registries.
	dst := pushedRegistry(t, true)
	binMust(t, nil, "process", "registry://"+reg.Host+"/fixture/app:v1", "registry://"+dst.Host+"/copy/app:v2")
	out, _ := binMust(t, nil, "info", "registry://"+dst.Host+"/copy/app:v2")
	if !imageLine("copy/app:v2").MatchString(out) {
		t.Errorf("copy not readable:\n%s", out)
	}
}

// TestFlagValuesChecked: counts below 1 are refused with exit 2 and a
// message naming the flag, from the command line and the environment.
func TestFlagValuesChecked(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{args: []string{"-j", "0"}, want: "-j/--parallel must be at least 1, got 0"},
		{args: []string{"-j", "-1"}, want: "-j/--parallel must be at least 1, got -1"},
		{args: []string{"-J", "0"}, want: "-J/--image-parallel must be at least 1, got 0"},
		{env: []string{"OCCYSTRAP_IMAGE_PARALLEL=0"}, want: "-J/--image-parallel must be at least 1, got 0"},
		{args: []string{"--retries", "-2"}, want: "--retries must be 0 or more"},
	} {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			code, _, errs := binRun(t, tc.env, append(tc.args, "info", "tar:///nonexistent.tar")...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, want 2 and %q\nstderr:\n%s", code, tc.want, errs)
			}
		})
	}
}

// TestQuiet: --quiet leaves only errors and the summary on stderr.
func TestQuiet(t *testing.T) {
	archive, _ := writeArchive(t, false)
	_, loud := binMust(t, nil, "--log-format", "json", "process", "tar://"+archive, "dir://"+t.TempDir())
	if !strings.Contains(loud, "Processing image") {
		t.Fatalf("without --quiet, no info log:\n%s", loud)
	}
	_, quiet := binMust(t, nil, "--log-format", "json", "--quiet", "process", "tar://"+archive, "dir://"+t.TempDir())
	lines := strings.Split(strings.TrimSpace(quiet), "\n")
	if len(lines) != 1 || !summaryRE.MatchString(lines[0]) {
		t.Errorf("--quiet stderr is not the summary alone:\n%s", quiet)
	}
	code, _, errs := binRun(t, nil, "-q", "process", "tar://"+archive+".missing", "dir://"+t.TempDir())
	if code != 1 || !strings.Contains(errs, `"event":"error"`) {
		t.Errorf("-q hid the error: exit %d\n%s", code, errs)
	}
}
