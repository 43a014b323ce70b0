package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestFilterChainsEverywhere runs a chain of content-changing filters from
// each source (tar://, registry://) to each destination (dir://, tar://,
// registry://), in both orders, reads every result back as a dir://, and
// checks what the filters promise: no member matches the excluded patterns,
// every mtime is the normalized one, and the config's diff_ids are the
// sha256 of the layers written.
func TestFilterChainsEverywhere(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)

	archive, _ := writeArchive(t, true)
	// The same image in the registry: push it from the archive, unfiltered.
	mustRun(t, "--log-format", "console", "process", "tar://"+archive, "registry://"+reg.Host+"/fixture/app:v1")

	sources := map[string]string{
		"tar":      "tar://" + archive,
		"registry": "registry://" + reg.Host + "/fixture/app:v1",
	}
	chains := map[string][]string{
		"exclude-then-normalize": {"-f", "exclude:pattern=*.conf.bak,opt/app/old*", "-f", "normalize-timestamps:ts=1700000000"},
		"normalize-then-exclude": {"-f", "normalize_timestamps:timestamp=1700000000", "-f", "EXCLUDE:pattern=opt/app/old*,*.conf.bak"},
	}
	for sname, src := range sources {
		for _, dname := range []string{"dir", "tar", "registry"} {
			for cname, chain := range chains {
				t.Run(sname+"-to-"+dname+"/"+cname, func(t *testing.T) {
					var dst string
					switch dname {
					case "dir":
						dst = "dir://" + filepath.Join(t.TempDir(), "out")
					case "tar":
						dst = "tar://" + filepath.Join(t.TempDir(), "out.tar")
					case "registry":
						dst = "registry://" + reg.Host + "/filtered/app:" + strings.ReplaceAll(sname+"-"+cname, "_", "-")
					}
					args := append([]string{"--log-format", "console", "process"}, chain...)
					mustRun(t, append(args, src, dst)...)
					out := strings.TrimPrefix(dst, "dir://")
					if dname != "dir" {
						out = filepath.Join(t.TempDir(), "readback")
						mustRun(t, "--log-format", "console", "process", dst, "dir://"+out)
					}
					checkFiltered(t, out)
				})
			}
		}
	}
}

func checkFiltered(t *testing.T, dir string) {
	t.Helper()
	var manifest []struct {
		Config string
		Layers []string
	}
	stagetest.ReadJSON(t, filepath.Join(dir, "manifest.json"), &manifest)
	if len(manifest) != 1 || len(manifest[0].Layers) != 3 {
		t.Fatalf("manifest: %+v", manifest)
	}
	var cfg v1.Image
	stagetest.ReadJSON(t, filepath.Join(dir, manifest[0].Config), &cfg)
	sawOpt := false
	for i, l := range manifest[0].Layers {
		f, err := os.Open(filepath.Join(dir, l))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		tr := tar.NewReader(io.TeeReader(f, h))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			if strings.HasPrefix(hdr.Name, "opt/app/old") {
				t.Errorf("%s: excluded member %s is still there", l, hdr.Name)
			}
			if strings.HasPrefix(hdr.Name, "opt/") {
				sawOpt = true
			}
			if hdr.ModTime.Unix() != 1700000000 {
				t.Errorf("%s: %s has mtime %d, want 1700000000", l, hdr.Name, hdr.ModTime.Unix())
			}
		}
		_, _ = io.Copy(h, f)
		f.Close()
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); i >= len(cfg.RootFS.DiffIDs) || got != cfg.RootFS.DiffIDs[i].String() {
			t.Errorf("layer %d: sha256 %s, config says %v", i, got, cfg.RootFS.DiffIDs)
		}
	}
	if !sawOpt {
		t.Error("no member under opt/: the check above proved nothing")
	}
}

// TestSearchOnRegistry runs the search command on a registry:// source.
func TestSearchOnRegistry(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	archive, _ := writeArchive(t, false)
	mustRun(t, "--log-format", "console", "--insecure", "process", "tar://"+archive, "registry://"+reg.Host+"/fixture/app:v1")
	out, _ := mustRun(t, "--log-format", "console", "--insecure", "search", "registry://"+reg.Host+"/fixture/app:v1", "new.conf")
	if !strings.Contains(out, "  opt/app/new.conf (file, 4 bytes)") || !strings.Contains(out, "Found 1 match in 1 layer.") {
		t.Errorf("search output:\n%s", out)
	}
}
