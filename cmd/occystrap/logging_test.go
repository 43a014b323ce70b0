package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/transport"
)

// loadSchema compiles docs/logging.schema.json.
func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	path, err := filepath.Abs("../../docs/logging.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(path, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jqPath finds Debian's jq; .ci/run installs it.
func jqPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("jq")
	if err == nil {
		return p
	}
	const msg = "jq not found on PATH: apt-get install jq (as .ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// checkObject decodes one JSON value strictly: it fails on a key given
// twice in any object, and on anything after the value.
func checkObject(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				ks := k.(string)
				if seen[ks] {
					return fmt.Errorf("key %q given twice", ks)
				}
				seen[ks] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	first, err := dec.Token()
	if err != nil || first != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	dec = json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := walk(); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// checkStream checks every line of a JSON-mode stderr: one object per line,
// no key twice, valid against the schema, and the same through `jq -c .`.
// It returns the events.
func checkStream(t *testing.T, schema *jsonschema.Schema, jq, stderr string) []map[string]any {
	t.Helper()
	if stderr == "" {
		return nil
	}
	if !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr does not end with a newline: %q", stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var events []map[string]any
	for i, line := range lines {
		if err := checkObject(line); err != nil {
			t.Errorf("stderr line %d: %v: %q", i+1, err, line)
			continue
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err != nil {
			t.Errorf("stderr line %d: %v", i+1, err)
			continue
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("stderr line %d does not match docs/logging.schema.json: %v\n%s", i+1, err, line)
		}
		var ev map[string]any
		_ = json.Unmarshal([]byte(line), &ev)
		events = append(events, ev)
	}
	cmd := exec.Command(jq, "-c", ".")
	cmd.Stdin = strings.NewReader(stderr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq -c .: %v", err)
	}
	jl := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(jl) != len(lines) {
		t.Errorf("jq gave %d lines for %d", len(jl), len(lines))
		return events
	}
	for i := range jl {
		var a, b any
		da, db := json.NewDecoder(strings.NewReader(lines[i])), json.NewDecoder(strings.NewReader(jl[i]))
		da.UseNumber()
		db.UseNumber()
		if err := da.Decode(&a); err != nil {
			continue
		}
		if err := db.Decode(&b); err != nil {
			t.Errorf("jq line %d: %v", i+1, err)
			continue
		}
		if d := cmp.Diff(a, b); d != "" {
			t.Errorf("line %d changed through jq (-ours +jq):\n%s", i+1, d)
		}
	}
	return events
}

func eventsNamed(evs []map[string]any, name string) []map[string]any {
	var out []map[string]any
	for _, e := range evs {
		if e["event"] == name {
			out = append(out, e)
		}
	}
	return out
}

// TestJSONEventStream runs the CLI matrix (every command, one image and
// many, success and failure) with --log-format json and checks every line
// of stderr against docs/logging.schema.json, for duplicate keys and
// non-JSON lines, and through Debian's jq; and checks the events each run
// must give (the summary with its bytes and digest, the error with its hint
// and exit code).
func TestJSONEventStream(t *testing.T) {
	schema := loadSchema(t)
	jq := jqPath(t)
	ctx := context.Background()

	plain := testregistry.Start(t, testregistry.Options{Plain: true})
	tlsReg := testregistry.Start(t, testregistry.Options{})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 14, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*testregistry.Registry{plain, tlsReg} {
		if err := r.Push(ctx, "fixture/app", "v1", img); err != nil {
			t.Fatal(err)
		}
	}
	q, qreg := testquay.Start(t, testquay.Options{}, testregistry.Options{Plain: true})
	kollaCorpus(t, q, qreg, 3)
	archive, _ := writeArchive(t, false)
	ociArchive, _ := writeArchive(t, true)
	quaySrc := "quay://openstack.kolla/*:2025.1-debian-bookworm?host=" + qreg.Host
	reg := "registry://" + plain.Host
	dir := func() string { return "dir://" + t.TempDir() }
	aDir := t.TempDir()

	type want struct {
		code    int
		summary bool // a summary event with bytes > 0 and a digest
		events  []string
		hint    string // in the error event
	}
	cases := []struct {
		name string
		args []string
		want want
	}{
		{"tar to dir", []string{"process", "tar://" + archive, dir()}, want{summary: true}},
		{"oci tar to tar", []string{"process", "tar://" + ociArchive, "tar://" + filepath.Join(t.TempDir(), "o.tar")}, want{summary: true}},
		{"tar to registry", []string{"--insecure", "process", "tar://" + archive, reg + "/pushed/app:v1"}, want{summary: true}},
		{"registry to dir", []string{"--insecure", "process", reg + "/fixture/app:v1", dir()}, want{summary: true, events: []string{"processing_image", "processing_complete"}}},
		{"registry passthrough", []string{"--insecure", "process", reg + "/fixture/app:v1", reg + "/copy/app:v1"}, want{summary: true, events: []string{"push_complete"}}},
		{"registry filtered", []string{"--insecure", "process", "-f", "normalize-timestamps", reg + "/fixture/app:v1", reg + "/norm/app:v1"}, want{summary: true}},
		{"many images", []string{"--insecure", "process", quaySrc, dir() + "?unique_names=true"}, want{events: []string{"processing_images", "image_complete", "summary"}}},
		{"many, none found", []string{"--insecure", "process", "quay://openstack.kolla/zzz*:x?host=" + qreg.Host, dir()}, want{events: []string{"no_images"}}},
		{"many, tar refused", []string{"--insecure", "process", quaySrc, "tar://x.tar"}, want{code: 1, events: []string{"error"}}},
		{"info", []string{"--insecure", "info", reg + "/fixture/app:v1"}, want{}},
		{"info many", []string{"--insecure", "info", quaySrc}, want{}},
		{"info many, none found", []string{"--insecure", "info", "quay://openstack.kolla/zzz*:x?host=" + qreg.Host}, want{events: []string{"no_images"}}},
		{"check", []string{"check", "tar://" + archive}, want{}},
		{"search", []string{"--insecure", "search", reg + "/fixture/app:v1", "*"}, want{}},
		{"version", []string{"version"}, want{}},
		{"ls tags", []string{"--insecure", "ls", reg + "/fixture/app"}, want{}},
		{"ls many", []string{"--insecure", "ls", quaySrc}, want{}},
		{"ls many, none found", []string{"--insecure", "ls", "quay://openstack.kolla/zzz*:x?host=" + qreg.Host}, want{events: []string{"no_images"}}},
		{"help", []string{"help", "process"}, want{}},
		{"help of an unknown command", []string{"help", "nosuch"}, want{code: 2, events: []string{"usage_error"}}},
		{"completion", []string{"completion", "bash"}, want{}},
		{"quiet", []string{"--quiet", "process", "tar://" + archive, dir()}, want{summary: true}},
		{"dry run", []string{"--insecure", "process", "--dry-run", quaySrc, dir() + "?unique_names=true"}, want{}},
		{"plan", []string{"--insecure", "plan", "--shards", "2", quaySrc}, want{}},
		{"many into shards", []string{"--insecure", "process", "--shard", "1/2", quaySrc, dir() + "?unique_names=true"}, want{events: []string{"shard", "summary"}}},
		{"proxy, bad listen port", []string{"proxy", "-d", "127.0.0.1:1", "-l", "127.0.0.1:abc"}, want{code: 1, events: []string{"error"}}},
		{"check many refused", []string{"check", quaySrc}, want{code: 1, events: []string{"error"}}},
		{"missing tag", []string{"--insecure", "--retries", "0", "process", reg + "/fixture/app:nope", dir()}, want{code: 1, hint: "no such tag"}},
		{"missing repository", []string{"--insecure", "--retries", "0", "process", reg + "/fixture/nope:v1", dir()}, want{code: 1, hint: "no repository of that name"}},
		{"--insecure to a TLS registry", []string{"--insecure", "--retries", "0", "process", "registry://" + tlsReg.Host + "/fixture/app:v1", dir()}, want{code: 1, hint: "drop --insecure"}},
		{"tar destination is a directory", []string{"process", "tar://" + archive, "tar://" + aDir}, want{code: 1, events: []string{"error"}}},
		{"bad filter", []string{"process", "-f", "exclude:bogus=1", "tar://" + archive, dir()}, want{code: 2, events: []string{"usage_error"}}},
		{"bad uri", []string{"process", "tar://" + archive, "nope://x"}, want{code: 2, events: []string{"usage_error"}}},
		{"no arguments", []string{"process"}, want{code: 2, events: []string{"usage_error"}}},
		{"unknown flag", []string{"--bogus", "process", "a", "b"}, want{code: 2, events: []string{"usage_error"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--log-format", "json", "--debug", "--progress-interval", "1ms"}, tc.args...)
			code, stdout, stderr := runCLI(args...)
			if code != tc.want.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tc.want.code, stderr)
			}
			evs := checkStream(t, schema, jq, stderr)
			for _, name := range tc.want.events {
				if len(eventsNamed(evs, name)) == 0 {
					t.Errorf("no %s event in:\n%s", name, stderr)
				}
			}
			if tc.want.summary {
				sums := eventsNamed(evs, "summary")
				if len(sums) != 1 {
					t.Fatalf("%d summary events", len(sums))
				}
				s := sums[0]
				if b, _ := s["bytes"].(float64); b <= 0 {
					t.Errorf("summary bytes %v, want > 0: %v", s["bytes"], s)
				}
				d, _ := s["digest"].(string)
				if !strings.HasPrefix(d, "sha256:") || strings.TrimSpace(stdout) != d {
					t.Errorf("digest %q in the summary, stdout %q", d, stdout)
				}
			}
			if code != 0 {
				errs := append(eventsNamed(evs, "error"), eventsNamed(evs, "usage_error")...)
				if len(errs) != 1 {
					t.Fatalf("%d error events in:\n%s", len(errs), stderr)
				}
				if ec, _ := errs[0]["exit_code"].(float64); int(ec) != code {
					t.Errorf("exit_code %v, exit %d", errs[0]["exit_code"], code)
				}
				if h, _ := errs[0]["hint"].(string); !strings.Contains(h, tc.want.hint) {
					t.Errorf("hint %q, want it to hold %q (error %v)", h, tc.want.hint, errs[0]["error"])
				}
			}
		})
	}
}

// TestDigestFile: --digest-file gets the manifest digest of a registry push
// (the one the registry serves) and the config digest otherwise.
func TestDigestFile(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 15, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "digest")
	out, _ := mustRun(t, "--insecure", "process", "--digest-file", file, "registry://"+reg.Host+"/fixture/app:v1", "registry://"+reg.Host+"/copy/app:v1")
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != img.Digest.String() || strings.TrimSpace(out) != img.Digest.String() {
		t.Errorf("digest file %q, stdout %q; want the manifest's %s", got, out, img.Digest)
	}
	out, _ = mustRun(t, "--insecure", "process", "--digest-file", file, "registry://"+reg.Host+"/fixture/app:v1", "dir://"+t.TempDir())
	got, _ = os.ReadFile(file)
	if !bytes.Equal(got, []byte(img.ConfigDigest.String())) || strings.TrimSpace(out) != string(got) {
		t.Errorf("digest file %q, stdout %q; want the config's %s", got, out, img.ConfigDigest)
	}
}

// TestPasswordStdin: --password-stdin reads the password from stdin; the
// run authenticates with it and never prints it.
func TestPasswordStdin(t *testing.T) {
	const user, secret = "alice", "st1n-Secret-77"
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken, Username: user, Password: secret})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 16, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for _, format := range []string{"json", "console"} {
		var o, e bytes.Buffer
		code := runIO([]string{"--log-format", format, "--debug", "--insecure", "--username", user, "--password-stdin", "process",
			"registry://" + reg.Host + "/fixture/app:v1", "dir://" + t.TempDir()}, strings.NewReader(secret+"\n"), &o, &e)
		if code != 0 {
			t.Errorf("%s: exit %d\n%s", format, code, e.String())
		}
		if strings.Contains(o.String()+e.String(), secret) {
			t.Errorf("%s: the password was printed", format)
		}
	}
	var o, e bytes.Buffer
	code := runIO([]string{"--log-format", "console", "--insecure", "--username", user, "--password", "x", "--password-stdin", "process",
		"registry://" + reg.Host + "/fixture/app:v1", "dir://" + t.TempDir()}, strings.NewReader(secret+"\n"), &o, &e)
	if code != 2 {
		t.Errorf("--password with --password-stdin: exit %d, want 2\n%s", code, e.String())
	}
	// Without credentials the 401's hint says none were found.
	code, _, stderr := runCLI("--log-format", "console", "--insecure", "--retries", "0", "process", "registry://"+reg.Host+"/fixture/app:v1", "dir://"+t.TempDir())
	if code != 1 || !strings.Contains(stderr, "Hint: no credentials were found for "+reg.Host) {
		t.Errorf("401 without credentials: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runCLI("--log-format", "console", "--insecure", "--retries", "0", "--username", user, "--password", "wrong", "process", "registry://"+reg.Host+"/fixture/app:v1", "dir://"+t.TempDir())
	if code != 1 || !strings.Contains(stderr, "Hint: credentials for") {
		t.Errorf("401 with wrong credentials: exit %d\n%s", code, stderr)
	}
}

// TestVersion: `occystrap version` and --version print the version, the
// commit and the Go version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(args...)
		if code != 0 || !strings.HasPrefix(out, "occystrap ") || !strings.Contains(out, "\ncommit: ") || !strings.Contains(out, "\ngo: go1.") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// TestHints: the hints for errors the matrix cannot provoke here (a
// loopback registry is spoken to over plain HTTP without --insecure).
func TestHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("fetch manifest: Get \"https://reg.example:5000/v2/\": %w", errors.New("http: server gave HTTP response to HTTPS client")), "add --insecure"},
		{&transport.Error{What: "fetch manifest", StatusCode: 400, Status: "400 Bad Request", Body: "Client sent an HTTP request to an HTTPS server."}, "drop --insecure"},
		{&transport.Error{What: "fetch manifest", StatusCode: 404, Status: "404 Not Found", Errors: []transport.ErrorDetail{{Code: "NAME_UNKNOWN"}}}, "no repository of that name"},
		{fmt.Errorf("x: %w", errors.New("plain")), ""},
	} {
		if got := hint(tc.err, nil); !strings.Contains(got, tc.want) || (tc.want == "" && got != "") {
			t.Errorf("hint(%v) = %q, want it to hold %q", tc.err, got, tc.want)
		}
	}
}
