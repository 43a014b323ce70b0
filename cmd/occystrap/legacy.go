package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	dirsrc "github.com/occystrap/occystrap/sources/dir"
)

// The original's deprecated commands, kept for the scripts that call them.
// Each takes the original's arguments and options, prints the original's
// (Click's) deprecation warning on stderr, and runs as the process or search
// command it maps to, so its output is that command's.

// legacyGroup is the help heading the deprecated commands are listed under,
// apart from the main list.
const legacyGroup = "deprecated"

// Legacy holds the deprecated commands; CLI embeds it.
type Legacy struct {
	FetchToExtracted    FetchToExtractedCmd    `cmd:"" group:"deprecated" help:"Use: occystrap process registry://REGISTRY/IMAGE:TAG dir://PATH"`
	FetchToOci          FetchToOCICmd          `cmd:"" name:"fetch-to-oci" group:"deprecated" help:"Use: occystrap process registry://REGISTRY/IMAGE:TAG oci://PATH"`
	FetchToTarfile      FetchToTarfileCmd      `cmd:"" group:"deprecated" help:"Use: occystrap process registry://REGISTRY/IMAGE:TAG tar://TARFILE"`
	FetchToMounts       FetchToMountsCmd       `cmd:"" group:"deprecated" help:"Use: occystrap process registry://REGISTRY/IMAGE:TAG mounts://PATH"`
	DockerToExtracted   DockerToExtractedCmd   `cmd:"" group:"deprecated" help:"Use: occystrap process docker://IMAGE:TAG dir://PATH"`
	DockerToOci         DockerToOCICmd         `cmd:"" name:"docker-to-oci" group:"deprecated" help:"Use: occystrap process docker://IMAGE:TAG oci://PATH"`
	DockerToTarfile     DockerToTarfileCmd     `cmd:"" group:"deprecated" help:"Use: occystrap process docker://IMAGE:TAG tar://TARFILE"`
	TarfileToExtracted  TarfileToExtractedCmd  `cmd:"" group:"deprecated" help:"Use: occystrap process tar://TARFILE dir://PATH"`
	SearchLayers        SearchLayersCmd        `cmd:"" group:"deprecated" help:"Use: occystrap search registry://REGISTRY/IMAGE:TAG PATTERN"`
	SearchLayersDocker  SearchLayersDockerCmd  `cmd:"" group:"deprecated" help:"Use: occystrap search docker://IMAGE:TAG PATTERN"`
	SearchLayersTarfile SearchLayersTarfileCmd `cmd:"" group:"deprecated" help:"Use: occystrap search tar://TARFILE PATTERN"`
	RecreateImage       RecreateImageCmd       `cmd:"" group:"deprecated" help:"Recreate image from shared directory: a dir:// output's IMAGE:TAG as a tar:// archive."`
}

// deprecated prints the warning Click prints for a deprecated command.
func deprecated(a *app, name string) {
	text := fmt.Sprintf("DeprecationWarning: The command '%s' is deprecated.", name)
	if a.out == nil { // not run through runIO
		fmt.Fprintln(a.stderr, text)
		return
	}
	a.out.printer.Status("Deprecated command", text, func(e *zerolog.Event) { e.Str("command", name).Str("text", text) })
}

// Options shared by several legacy commands, as the original spells them.
type (
	extractOpts struct {
		UseUniqueNames bool `name:"use-unique-names" help:"Name the manifest after the image (dir://?unique_names=true)."`
		Expand         bool `help:"Also write the merged filesystem (dir://?expand=true)."`
	}
	normalizeOpts struct {
		NormalizeTimestamps bool  `name:"normalize-timestamps" help:"Set every layer member's mtime (-f normalize-timestamps)."`
		Timestamp           int64 `default:"0" help:"The mtime --normalize-timestamps sets."`
	}
	searchOpts struct {
		Regex          bool `help:"Use regex pattern instead of glob pattern."`
		ScriptFriendly bool `name:"script-friendly" help:"Output in script-friendly format: image:tag:layer:path."`
	}
	socketOpt struct {
		Socket string `placeholder:"PATH" help:"Path to Docker socket (default: DOCKER_HOST's, else /var/run/docker.sock)."`
	}
)

func (o extractOpts) dir(path string) (string, error) {
	q := url.Values{}
	if o.UseUniqueNames {
		q.Set("unique_names", "true")
	}
	if o.Expand {
		q.Set("expand", "true")
	}
	return fileURI("dir", path, q)
}

func (o normalizeOpts) filters() []string {
	if !o.NormalizeTimestamps {
		return nil
	}
	return []string{fmt.Sprintf("normalize-timestamps:ts=%d", o.Timestamp)}
}

func (o socketOpt) docker(image, tag string) string {
	u := "docker://" + image + ":" + tag
	if o.Socket != "" {
		u += "?" + url.Values{"socket": {o.Socket}}.Encode()
	}
	return u
}

// fileURI is scheme:// for the file path p (made absolute, so that no part
// of it reads as a host), with query q.
func fileURI(scheme, p string, q url.Values) (string, error) {
	if strings.ContainsAny(p, "?#") {
		return "", fmt.Errorf("path %q: a legacy command cannot take a path with '?' or '#'; use process with a %s:// URI", p, scheme)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", p, err)
	}
	u := scheme + "://" + abs
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u, nil
}

func registryURI(registry, image, tag string) string {
	return "registry://" + registry + "/" + image + ":" + tag
}

// process runs `process src dst -f filters...`.
func process(ctx context.Context, a *app, src, dst string, filters []string) error {
	return (&ProcessCmd{Source: src, Destination: dst, Filter: filters}).Run(ctx, a)
}

// search runs `search src pattern`.
func search(ctx context.Context, a *app, src, pattern string, o searchOpts) error {
	return (&SearchCmd{Source: src, Pattern: pattern, Regex: o.Regex, ScriptFriendly: o.ScriptFriendly}).Run(ctx, a)
}

// FetchToExtractedCmd is `fetch-to-extracted REGISTRY IMAGE TAG PATH`.
type FetchToExtractedCmd struct {
	Registry string `arg:""`
	Image    string `arg:""`
	Tag      string `arg:""`
	Path     string `arg:""`
	extractOpts
}

// Run maps to process registry:// dir://.
func (c *FetchToExtractedCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "fetch-to-extracted")
	dst, err := c.dir(c.Path)
	if err != nil {
		return err
	}
	return process(ctx, a, registryURI(c.Registry, c.Image, c.Tag), dst, nil)
}

// FetchToOCICmd is `fetch-to-oci REGISTRY IMAGE TAG PATH`.
type FetchToOCICmd struct {
	Registry string `arg:""`
	Image    string `arg:""`
	Tag      string `arg:""`
	Path     string `arg:""`
}

// Run maps to process registry:// oci://.
func (c *FetchToOCICmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "fetch-to-oci")
	dst, err := fileURI("oci", c.Path, nil)
	if err != nil {
		return err
	}
	return process(ctx, a, registryURI(c.Registry, c.Image, c.Tag), dst, nil)
}

// FetchToTarfileCmd is `fetch-to-tarfile REGISTRY IMAGE TAG TARFILE`.
type FetchToTarfileCmd struct {
	Registry string `arg:""`
	Image    string `arg:""`
	Tag      string `arg:""`
	Tarfile  string `arg:""`
	normalizeOpts
}

// Run maps to process registry:// tar:// [-f normalize-timestamps:ts=N].
func (c *FetchToTarfileCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "fetch-to-tarfile")
	dst, err := fileURI("tar", c.Tarfile, nil)
	if err != nil {
		return err
	}
	return process(ctx, a, registryURI(c.Registry, c.Image, c.Tag), dst, c.filters())
}

// FetchToMountsCmd is `fetch-to-mounts REGISTRY IMAGE TAG PATH`.
type FetchToMountsCmd struct {
	Registry string `arg:""`
	Image    string `arg:""`
	Tag      string `arg:""`
	Path     string `arg:""`
}

// Run maps to process registry:// mounts://.
func (c *FetchToMountsCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "fetch-to-mounts")
	dst, err := fileURI("mounts", c.Path, nil)
	if err != nil {
		return err
	}
	return process(ctx, a, registryURI(c.Registry, c.Image, c.Tag), dst, nil)
}

// DockerToExtractedCmd is `docker-to-extracted IMAGE TAG PATH`.
type DockerToExtractedCmd struct {
	Image string `arg:""`
	Tag   string `arg:""`
	Path  string `arg:""`
	socketOpt
	extractOpts
}

// Run maps to process docker:// dir://.
func (c *DockerToExtractedCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "docker-to-extracted")
	dst, err := c.dir(c.Path)
	if err != nil {
		return err
	}
	return process(ctx, a, c.docker(c.Image, c.Tag), dst, nil)
}

// DockerToOCICmd is `docker-to-oci IMAGE TAG PATH`.
type DockerToOCICmd struct {
	Image string `arg:""`
	Tag   string `arg:""`
	Path  string `arg:""`
	socketOpt
}

// Run maps to process docker:// oci://.
func (c *DockerToOCICmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "docker-to-oci")
	dst, err := fileURI("oci", c.Path, nil)
	if err != nil {
		return err
	}
	return process(ctx, a, c.docker(c.Image, c.Tag), dst, nil)
}

// DockerToTarfileCmd is `docker-to-tarfile IMAGE TAG TARFILE`.
type DockerToTarfileCmd struct {
	Image   string `arg:""`
	Tag     string `arg:""`
	Tarfile string `arg:""`
	socketOpt
	normalizeOpts
}

// Run maps to process docker:// tar:// [-f normalize-timestamps:ts=N].
func (c *DockerToTarfileCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "docker-to-tarfile")
	dst, err := fileURI("tar", c.Tarfile, nil)
	if err != nil {
		return err
	}
	return process(ctx, a, c.docker(c.Image, c.Tag), dst, c.filters())
}

// TarfileToExtractedCmd is `tarfile-to-extracted TARFILE PATH`.
type TarfileToExtractedCmd struct {
	Tarfile string `arg:""`
	Path    string `arg:""`
	extractOpts
}

// Run maps to process tar:// dir://.
func (c *TarfileToExtractedCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "tarfile-to-extracted")
	src, err := fileURI("tar", c.Tarfile, nil)
	if err != nil {
		return err
	}
	dst, err := c.dir(c.Path)
	if err != nil {
		return err
	}
	return process(ctx, a, src, dst, nil)
}

// SearchLayersCmd is `search-layers REGISTRY IMAGE TAG PATTERN`.
type SearchLayersCmd struct {
	Registry string `arg:""`
	Image    string `arg:""`
	Tag      string `arg:""`
	Pattern  string `arg:""`
	searchOpts
}

// Run maps to search registry://.
func (c *SearchLayersCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "search-layers")
	return search(ctx, a, registryURI(c.Registry, c.Image, c.Tag), c.Pattern, c.searchOpts)
}

// SearchLayersDockerCmd is `search-layers-docker IMAGE TAG PATTERN`.
type SearchLayersDockerCmd struct {
	Image   string `arg:""`
	Tag     string `arg:""`
	Pattern string `arg:""`
	socketOpt
	searchOpts
}

// Run maps to search docker://.
func (c *SearchLayersDockerCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "search-layers-docker")
	return search(ctx, a, c.docker(c.Image, c.Tag), c.Pattern, c.searchOpts)
}

// SearchLayersTarfileCmd is `search-layers-tarfile TARFILE PATTERN`.
type SearchLayersTarfileCmd struct {
	Tarfile string `arg:""`
	Pattern string `arg:""`
	searchOpts
}

// Run maps to search tar://.
func (c *SearchLayersTarfileCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "search-layers-tarfile")
	src, err := fileURI("tar", c.Tarfile, nil)
	if err != nil {
		return err
	}
	return search(ctx, a, src, c.Pattern, c.searchOpts)
}

// RecreateImageCmd is `recreate-image PATH IMAGE TAG TARFILE`: the image
// IMAGE:TAG of the dir:// output at PATH, as a tar:// archive.
type RecreateImageCmd struct {
	Path    string `arg:""`
	Image   string `arg:""`
	Tag     string `arg:""`
	Tarfile string `arg:""`
	normalizeOpts
}

// Run reads the image back from the directory (its catalog, manifest,
// config and layer.tar files) and writes it as process writes tar://.
func (c *RecreateImageCmd) Run(ctx context.Context, a *app) error {
	deprecated(a, "recreate-image")
	src, err := dirsrc.Open(c.Path, c.Image, c.Tag)
	if err != nil {
		return err
	}
	dst, err := fileURI("tar", c.Tarfile, nil)
	if err != nil {
		return err
	}
	return (&ProcessCmd{Source: "dir://" + c.Path, Destination: dst, Filter: c.filters(), input: src}).Run(ctx, a)
}
