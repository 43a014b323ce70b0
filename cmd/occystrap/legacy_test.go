package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// legacyNames are the original's deprecated commands.
var legacyNames = []string{
	"fetch-to-extracted", "fetch-to-oci", "fetch-to-tarfile", "fetch-to-mounts",
	"docker-to-extracted", "docker-to-oci", "docker-to-tarfile", "tarfile-to-extracted",
	"search-layers", "search-layers-docker", "search-layers-tarfile", "recreate-image",
}

// The main help lists the five commands; the deprecated ones appear only
// under their own "Deprecated" heading, after it.
func TestLegacyHelp(t *testing.T) {
	out, _ := mustRun(t, "--help")
	main, dep, ok := strings.Cut(out, "\nDeprecated\n")
	if !ok {
		t.Fatalf("no Deprecated heading in --help:\n%s", out)
	}
	for _, n := range []string{"process", "search", "info", "check", "proxy"} {
		if !strings.Contains(main, "\n  "+n+" ") {
			t.Errorf("main list lacks %s", n)
		}
	}
	for _, n := range legacyNames {
		if strings.Contains(main, "\n  "+n+" ") {
			t.Errorf("%s is in the main command list", n)
		}
		if !strings.Contains(dep, "\n  "+n+" ") {
			t.Errorf("%s is not listed under Deprecated", n)
		}
	}
}

// legacyCase is a legacy command and the modern command it must equal.
type legacyCase struct {
	name           string
	legacy, modern []string
	// out, when set, names the outputs compared: legacy's and modern's
	// ("" compares stdout only).
	outLegacy, outModern string
	tar                  bool // compare the outputs' bytes (else the trees)
	root                 bool // needs root (mounts)
}

// runLegacyCases runs each legacy command and its modern form and compares
// their outputs and stdout; the legacy one must open its stderr with the
// original's deprecation warning, the modern one must not warn.
func runLegacyCases(t *testing.T, global []string, cases []legacyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testenv.RequireRoot(t)
				for _, o := range []string{tc.outLegacy, tc.outModern} {
					rootfs := filepath.Join(o, "rootfs")
					t.Cleanup(func() {
						for unix.Unmount(rootfs, 0) == nil {
						}
					})
				}
			}
			lout, lerr := mustRun(t, append(append([]string{}, global...), tc.legacy...)...)
			mout, merr := mustRun(t, append(append([]string{}, global...), tc.modern...)...)
			want := "DeprecationWarning: The command '" + tc.legacy[0] + "' is deprecated.\n"
			if !strings.HasPrefix(lerr, want) {
				t.Errorf("legacy stderr does not open with %q:\n%s", want, lerr)
			}
			if strings.Contains(merr, "DeprecationWarning") {
				t.Errorf("modern command warns:\n%s", merr)
			}
			if d := cmp.Diff(mout, lout); d != "" {
				t.Errorf("stdout (-modern +legacy):\n%s", d)
			}
			switch {
			case tc.outLegacy == "":
				if lout == "" {
					t.Error("the search printed nothing: nothing was compared")
				}
			case tc.tar:
				a, err := os.ReadFile(tc.outLegacy)
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(tc.outModern)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, b) {
					t.Errorf("%s and %s differ", tc.outLegacy, tc.outModern)
				}
			default:
				if d := cmp.Diff(stagetest.Listing(t, tc.outModern), stagetest.Listing(t, tc.outLegacy)); d != "" {
					t.Errorf("outputs differ (-modern +legacy):\n%s", d)
				}
			}
		})
	}
}

func TestLegacyRegistryCommands(t *testing.T) {
	src, _ := writeArchive(t, false)
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	g := []string{"--log-format", "console", "--insecure"}
	mustRun(t, append(g, "process", "tar://"+src, "registry://"+reg.Host+"/fixture/app:v1")...)
	r := "registry://" + reg.Host + "/fixture/app:v1"
	o := t.TempDir()
	p := func(n string) string { return filepath.Join(o, n) }
	runLegacyCases(t, g, []legacyCase{
		{name: "fetch-to-extracted",
			legacy:    []string{"fetch-to-extracted", reg.Host, "fixture/app", "v1", p("x1"), "--use-unique-names", "--expand"},
			modern:    []string{"process", r, "dir://" + p("x2") + "?unique_names=true&expand=true"},
			outLegacy: p("x1"), outModern: p("x2")},
		{name: "fetch-to-extracted plain",
			legacy:    []string{"fetch-to-extracted", reg.Host, "fixture/app", "v1", p("y1")},
			modern:    []string{"process", r, "dir://" + p("y2")},
			outLegacy: p("y1"), outModern: p("y2")},
		{name: "fetch-to-oci",
			legacy:    []string{"fetch-to-oci", reg.Host, "fixture/app", "v1", p("o1")},
			modern:    []string{"process", r, "oci://" + p("o2")},
			outLegacy: p("o1"), outModern: p("o2")},
		{name: "fetch-to-tarfile",
			legacy:    []string{"fetch-to-tarfile", reg.Host, "fixture/app", "v1", p("t1.tar")},
			modern:    []string{"process", r, "tar://" + p("t2.tar")},
			outLegacy: p("t1.tar"), outModern: p("t2.tar"), tar: true},
		{name: "fetch-to-tarfile normalized",
			legacy:    []string{"fetch-to-tarfile", "--normalize-timestamps", "--timestamp", "7", reg.Host, "fixture/app", "v1", p("n1.tar")},
			modern:    []string{"process", r, "tar://" + p("n2.tar"), "-f", "normalize-timestamps:ts=7"},
			outLegacy: p("n1.tar"), outModern: p("n2.tar"), tar: true},
		{name: "fetch-to-mounts", root: true,
			legacy:    []string{"fetch-to-mounts", reg.Host, "fixture/app", "v1", p("m1")},
			modern:    []string{"process", r, "mounts://" + p("m2")},
			outLegacy: p("m1"), outModern: p("m2")},
		{name: "search-layers",
			legacy: []string{"search-layers", reg.Host, "fixture/app", "v1", "*.conf"},
			modern: []string{"search", r, "*.conf"}},
		{name: "search-layers script-friendly regex",
			legacy: []string{"search-layers", "--script-friendly", "--regex", reg.Host, "fixture/app", "v1", `conf$`},
			modern: []string{"search", "--script-friendly", "--regex", r, `conf$`}},
	})
}

func TestLegacyTarfileCommands(t *testing.T) {
	src, _ := writeArchive(t, false)
	g := []string{"--log-format", "console"}
	o := t.TempDir()
	p := func(n string) string { return filepath.Join(o, n) }
	// recreate-image reads back what a dir:// output holds.
	shared := p("shared")
	mustRun(t, append(g, "process", "tar://"+src, "dir://"+shared+"?unique_names=true")...)
	runLegacyCases(t, g, []legacyCase{
		{name: "tarfile-to-extracted",
			legacy:    []string{"tarfile-to-extracted", src, p("x1"), "--expand"},
			modern:    []string{"process", "tar://" + src, "dir://" + p("x2") + "?expand=true"},
			outLegacy: p("x1"), outModern: p("x2")},
		{name: "tarfile-to-extracted unique names",
			legacy:    []string{"tarfile-to-extracted", "--use-unique-names", src, p("u1")},
			modern:    []string{"process", "tar://" + src, "dir://" + p("u2") + "?unique_names=true"},
			outLegacy: p("u1"), outModern: p("u2")},
		{name: "search-layers-tarfile",
			legacy: []string{"search-layers-tarfile", src, "*.conf"},
			modern: []string{"search", "tar://" + src, "*.conf"}},
		{name: "search-layers-tarfile script-friendly",
			legacy: []string{"search-layers-tarfile", src, "opt/app/*", "--script-friendly"},
			modern: []string{"search", "--script-friendly", "tar://" + src, "opt/app/*"}},
		{name: "recreate-image",
			legacy:    []string{"recreate-image", shared, "fixture/app", "v1", p("r1.tar")},
			modern:    []string{"process", "tar://" + src, "tar://" + p("r2.tar")},
			outLegacy: p("r1.tar"), outModern: p("r2.tar"), tar: true},
		{name: "recreate-image normalized",
			legacy:    []string{"recreate-image", "--normalize-timestamps", "--timestamp=3", shared, "fixture/app", "v1", p("rn1.tar")},
			modern:    []string{"process", "tar://" + src, "tar://" + p("rn2.tar"), "-f", "normalize-timestamps:ts=3"},
			outLegacy: p("rn1.tar"), outModern: p("rn2.tar"), tar: true},
	})
	code, _, stderr := occystrap(t, "recreate-image", shared, "fixture/app", "nope", p("none.tar"))
	if code != 1 || !strings.Contains(stderr, "fixture/app:nope") {
		t.Errorf("recreate-image of an image not in the catalog: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestLegacyDockerCommands(t *testing.T) {
	eng := testdocker.Require(t)
	img := appImage()
	img.Name = "occy-legacy/app"
	eng.Seed(t, img)
	g := []string{"--log-format", "console"}
	d := dockerURI(eng, "occy-legacy/app:v1")
	o := t.TempDir()
	p := func(n string) string { return filepath.Join(o, n) }
	runLegacyCases(t, g, []legacyCase{
		{name: "docker-to-extracted",
			legacy:    []string{"docker-to-extracted", "--socket", eng.Socket, "occy-legacy/app", "v1", p("x1"), "--expand", "--use-unique-names"},
			modern:    []string{"process", d, "dir://" + p("x2") + "?expand=true&unique_names=true"},
			outLegacy: p("x1"), outModern: p("x2")},
		{name: "docker-to-oci",
			legacy:    []string{"docker-to-oci", "--socket=" + eng.Socket, "occy-legacy/app", "v1", p("o1")},
			modern:    []string{"process", d, "oci://" + p("o2")},
			outLegacy: p("o1"), outModern: p("o2")},
		{name: "docker-to-tarfile",
			legacy:    []string{"docker-to-tarfile", "--socket", eng.Socket, "--normalize-timestamps", "occy-legacy/app", "v1", p("t1.tar")},
			modern:    []string{"process", d, "tar://" + p("t2.tar"), "-f", "normalize-timestamps:ts=0"},
			outLegacy: p("t1.tar"), outModern: p("t2.tar"), tar: true},
		{name: "search-layers-docker",
			legacy: []string{"search-layers-docker", "--socket", eng.Socket, "occy-legacy/app", "v1", "*.conf", "--script-friendly"},
			modern: []string{"search", "--script-friendly", d, "*.conf"}},
	})
}
