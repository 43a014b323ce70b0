package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/transport"
)

// TestLsRegistryTags lists a repository's tags through the binary, in text
// and JSON, on a plain loopback registry without --insecure.
func TestLsRegistryTags(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 5, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	tags := []string{"1.0", "1.1", "2.0", "latest"}
	for _, tag := range tags {
		if err := reg.Push(context.Background(), "fixture/app", tag, img); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := binMust(t, nil, "ls", "registry://"+reg.Host+"/fixture/app")
	if d := cmp.Diff(strings.Join(tags, "\n")+"\n", out); d != "" {
		t.Errorf("ls text (-want +got):\n%s", d)
	}
	out, _ = binMust(t, nil, "-O", "json", "ls", "registry://"+reg.Host+"/fixture/app")
	var got []listed
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var want []listed
	for _, tag := range tags {
		want = append(want, listed{Registry: reg.Host, Repository: "fixture/app", Tag: tag, Reference: reg.Host + "/fixture/app:" + tag})
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ls -O json (-want +got):\n%s", d)
	}
	dest := filepath.Join(t.TempDir(), "out")
	out, _ = binMust(t, nil, "process", "--dry-run", "registry://"+reg.Host+"/fixture/app:1.1", "dir://"+dest)
	want1 := fmt.Sprintf("Would fetch 1 distinct layers of 1 (shared layers counted once), %s compressed.", formatSize(int64(len(img.Layers[0].Blob))))
	if !strings.Contains(out, reg.Host+"/fixture/app:1.1 -> dir://"+dest+": 1 layers") || !strings.Contains(out, want1) {
		t.Errorf("single-image dry run:\n%s", out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("dry run made %s: %v", dest, err)
	}
	code, _, errs := binRun(t, nil, "process", "--dry-run", "tar:///x.tar", "dir://"+dest)
	if code != 1 || !strings.Contains(errs, "--dry-run takes registry:// and quay:// sources") {
		t.Errorf("dry run of tar://: exit %d\n%s", code, errs)
	}
	code, _, errs = binRun(t, nil, "ls", "tar:///x.tar")
	if code != 1 || !strings.Contains(errs, "ls lists registry:// repositories and quay:// organisations") {
		t.Errorf("ls tar://: exit %d\n%s", code, errs)
	}
}

// TestRegistryTagsPaged follows the registry's Link header page by page.
func TestRegistryTagsPaged(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 6, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		tag := fmt.Sprintf("t%d", i)
		want = append(want, tag)
		if err := reg.Push(context.Background(), "paged/app", tag, img); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := transport.New(transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := tr.Registry(reg.Host, transport.RegistryOptions{Insecure: true})
	got, err := r.TagsPaged(context.Background(), "paged/app", 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tags over pages of 2 (-want +got):\n%s", d)
	}
	if n := tr.Stats().Requests; n < 3 {
		t.Errorf("%d requests for 5 tags in pages of 2, want 3 at least", n)
	}
}

// TestLsQuayAndDryRun lists what a quay:// spec resolves to (since, glob and
// tag applied), then dry-runs process on it: every image and the bytes of
// its layers, shared layers counted once, and nothing written.
func TestLsQuayAndDryRun(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{PageSize: 3}, testregistry.Options{Plain: true})
	want := kollaCorpus(t, q, reg, 10) // since=2026-03-01 drops every fifth
	env := []string{quayHostEnv + "=" + reg.Host}
	src := "quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01"

	out, _ := binMust(t, env, "ls", src)
	var wantRefs []string
	for _, im := range want {
		wantRefs = append(wantRefs, reg.Host+"/"+im.Repo+":"+im.Tag)
	}
	if d := cmp.Diff(strings.Join(wantRefs, "\n")+"\n", out); d != "" {
		t.Errorf("ls quay:// (-want +got):\n%s", d)
	}
	out, _ = binMust(t, env, "-O", "json", "ls", "quay://openstack.kolla/svc-0*:2025.1-debian-bookworm?since=2026-03-01")
	var got []listed
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var globbed []string
	for _, im := range want {
		if strings.HasPrefix(im.Name, "svc-0") {
			globbed = append(globbed, im.Repo)
		}
	}
	var gotRepos []string
	for _, l := range got {
		gotRepos = append(gotRepos, l.Repository)
		if l.Tag != "2025.1-debian-bookworm" || l.Registry != reg.Host {
			t.Errorf("listed %+v", l)
		}
	}
	if d := cmp.Diff(globbed, gotRepos); d != "" || len(globbed) == 0 {
		t.Errorf("ls with glob svc-0* (-want +got):\n%s", d)
	}
	out, errs := binMust(t, env, "ls", "quay://openstack.kolla/*:no-such-tag")
	if out != "" || !strings.Contains(errs, "No images found matching") {
		t.Errorf("ls of nothing: stdout %q stderr %q", out, errs)
	}

	// Dry run: what the images hold, shared layers once.
	var total int64
	distinct := map[string]bool{}
	layers := 0
	for _, im := range want {
		for _, l := range im.Image.Layers {
			layers++
			if !distinct[l.Digest.String()] {
				distinct[l.Digest.String()] = true
				total += int64(len(l.Blob))
			}
		}
	}
	if len(distinct) == layers {
		t.Fatal("the corpus shares no layer; the test would prove nothing")
	}
	dest := filepath.Join(t.TempDir(), "mirror")
	before := q.AllBlobGets()
	out, _ = binMust(t, env, "-O", "json", "process", "--dry-run", src, "dir://"+dest+"?unique_names=true")
	var p dryRunPlan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if p.LayersTotal != layers || p.LayersDistinct != len(distinct) || p.BytesToFetch != total || len(p.Images) != len(want) {
		t.Errorf("dry run: %d images, %d layers, %d distinct, %d bytes; want %d, %d, %d, %d\n%s",
			len(p.Images), p.LayersTotal, p.LayersDistinct, p.BytesToFetch, len(want), layers, len(distinct), total, out)
	}
	for i, im := range p.Images {
		if i < len(wantRefs) && im.Reference != wantRefs[i] || im.Error != "" {
			t.Errorf("image %d: %+v, want %s", i, im, wantRefs[i])
		}
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("dry run made %s: %v", dest, err)
	}
	after := q.AllBlobGets()
	for d, n := range after {
		if n != before[d] && distinct[d.String()] {
			t.Errorf("dry run fetched layer %s", d)
		}
	}
	out, _ = binMust(t, env, "process", "--dry-run", src, "registry://127.0.0.1:1/mirror")
	if !strings.Contains(out, fmt.Sprintf("Would fetch %d distinct layers of %d (shared layers counted once)", len(distinct), layers)) ||
		!strings.Contains(out, "-> registry://127.0.0.1:1/mirror/"+want[0].Name+":2025.1-debian-bookworm") {
		t.Errorf("dry run text:\n%s", out)
	}
}

// TestHostileListings: a Quay listing and a registry tags list that name
// repositories and tags no registry can hold (control characters, path
// escapes) are skipped with a warning; nothing of them reaches stdout raw,
// and the good entries are still listed.
func TestHostileListings(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{PageSize: 3}, testregistry.Options{Plain: true, Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/tags/list") {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"name":"openstack.kolla/svc-00","tags":["good","evil\u001b[2J\nforged line","../../x"]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	want := kollaCorpus(t, q, reg, 5)
	pushed := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"evil\x1b]0;owned\x07", "../../etc", "ok\nforged"} {
		q.AddRepo(testquay.Repo{Namespace: "openstack.kolla", Name: name, LastModified: &pushed,
			Tags: []testquay.Tag{{Name: "2025.1-debian-bookworm", StartTS: pushed}}})
	}
	env := []string{quayHostEnv + "=" + reg.Host}
	for _, args := range [][]string{
		{"ls", "quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01"},
		{"process", "--dry-run", "quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01", "dir://" + t.TempDir() + "?unique_names=true"},
		{"ls", "registry://" + reg.Host + "/" + want[0].Repo},
	} {
		out, errs := binMust(t, env, args...)
		for _, bad := range []string{"\x1b", "\x07", "forged", "../"} {
			if strings.Contains(out, bad) {
				t.Errorf("%v: stdout carries %q from a hostile listing:\n%s", args, bad, out)
			}
			if strings.Contains(errs, "\x1b") || strings.Contains(errs, "\x07") {
				t.Errorf("%v: stderr carries a raw control character:\n%q", args, errs)
			}
		}
		if !strings.Contains(errs, "invalid name skipped") {
			t.Errorf("%v: no warning for the skipped names:\n%s", args, errs)
		}
		if args[0] == "ls" && strings.HasPrefix(args[1], "registry://") {
			if out != "good\n" {
				t.Errorf("ls registry:// = %q, want the one valid tag", out)
			}
		} else if !strings.Contains(out, want[0].Repo) {
			t.Errorf("%v: the valid images are gone:\n%s", args, out)
		}
	}
}
