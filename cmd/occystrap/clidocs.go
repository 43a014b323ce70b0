package main

// The words help, the man page and the completion scripts share beside
// kong's model: examples per command and what each scheme and filter takes.
// A test fails when a command, scheme or filter has none.

// example is one command line shown in help and the man page.
type example struct {
	What string // a comment line
	Line string // what to type
}

// examples holds each command's examples, the two most useful first.
var examples = map[string][]example{
	"version": {
		{"The module version, the commit and the Go version, from the build info", "occystrap version"},
		{"Just the version line, for a script", "occystrap version | head -n 1"},
	},
	"process": {
		{"An image from a registry into a directory, layers shared between images",
			"occystrap process registry://quay.io/openstack.kolla/nova-api:2025.1-debian-bookworm 'dir://kolla?unique_names=true'"},
		{"Every Kolla image of a release, each shared layer fetched once (--dry-run first to see what it takes)",
			"occystrap process 'quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01' 'dir://kolla?unique_names=true'"},
		{"Registry to registry with timestamps normalized",
			"occystrap process registry://busybox registry://localhost:5000/tools/busybox:1 -f normalize-timestamps"},
	},
	"search": {
		{"Which layers hold a file", "occystrap search registry://busybox 'bin/sh'"},
		{"The same, one JSON object per match", "occystrap -O json search tar://image.tar '*.conf' | jq -r .path"},
	},
	"info": {
		{"An image's manifest and config, without its layers", "occystrap info registry://quay.io/openstack.kolla/nova-api:2025.1-debian-bookworm"},
		{"The same as JSON", "occystrap -O json info tar://image.tar"},
	},
	"check": {
		{"Every check, reading every layer", "occystrap check tar://image.tar"},
		{"Manifest and config checks only", "occystrap check --fast registry://busybox:latest"},
	},
	"proxy": {
		{"A push-only proxy filtering into a downstream registry",
			"occystrap proxy -d registry.example.com:5000/filtered -f normalize-timestamps"},
		{"A pull-through cache of Docker Hub",
			"occystrap proxy -d localhost:5000/hub -u registry-1.docker.io -l 0.0.0.0:5050"},
	},
	"ls": {
		{"A repository's tags", "occystrap ls registry://busybox"},
		{"The images a bulk source would take", "occystrap -O json ls 'quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01'"},
	},
	"plan": {
		{"Split a bulk source into 4 shards sharing as few layers as possible",
			"occystrap plan 'quay://openstack.kolla/*:2025.1-debian-bookworm' --shards 4 --out plan.json"},
		{"Run shard 2 of 4 on one machine (the plan computed the same everywhere, or given with --plan FILE)",
			"occystrap process 'quay://openstack.kolla/*:2025.1-debian-bookworm' 'dir://mirror?unique_names=true' --shard 2/4"},
	},
	"help": {
		{"A command's flags and examples", "occystrap help process"},
		{"The same as --help", "occystrap process --help"},
	},
	"completion": {
		{"Completion in the current bash (add it to ~/.bashrc to keep it)", "source <(occystrap completion bash)"},
		{"Completion for fish", "occystrap completion fish > ~/.config/fish/completions/occystrap.fish"},
	},
}

// schemeDoc describes a URI scheme for help and the man page.
type schemeDoc struct {
	Scheme  string
	Form    string
	What    string
	Options string // the query options it takes
}

var inputDocs = []schemeDoc{
	{"registry", "registry://[HOST/]IMAGE[:TAG|@DIGEST]", "an image in a registry; Docker Hub when HOST is left out (registry://busybox)",
		"os, arch (architecture), variant, platform (os/arch[/variant]), all_platforms, username, password, insecure, tls_verify, max_workers"},
	{"quay", "quay://ORG[/GLOB[:TAG]]", "every repository of a Quay organisation matching GLOB (default *) with TAG (default latest)",
		"since=YYYY-MM-DD, token, host (self-hosted Quay), insecure"},
	{"docker", "docker://IMAGE[:TAG]", "an image of a Docker engine", "socket"},
	{"dockerpush", "dockerpush://IMAGE[:TAG]", "an image of a Docker engine, pushed by the engine to occystrap", "socket"},
	{"tar", "tar://PATH", "a docker save archive (legacy or OCI layout; crane, skopeo, regctl archives too)", ""},
}

var outputDocs = []schemeDoc{
	{"dir", "dir://PATH", "layers, config, manifest and catalog.json in a directory", "unique_names, expand"},
	{"tar", "tar://PATH", "a docker save archive (docker load takes it)", ""},
	{"oci", "oci://PATH", "an OCI runtime bundle for runc", ""},
	{"mounts", "mounts://PATH", "per-layer trees and an overlay mount (needs root)", ""},
	{"docker", "docker://IMAGE[:TAG]", "loaded into a Docker engine", "socket"},
	{"registry", "registry://[HOST/]IMAGE[:TAG]", "pushed to a registry, only the blobs it lacks",
		"insecure, tls_verify, compression (gzip, zstd), max_workers, username, password"},
}

// filterDoc describes a -f filter.
type filterDoc struct {
	Name, Form, What string
}

var filterDocs = []filterDoc{
	{"normalize-timestamps", "normalize-timestamps[:ts=N]", "set every member's mtime to N (default 0)"},
	{"exclude", "exclude:pattern=GLOB[,GLOB...]", "drop the members matching any GLOB (* crosses /)"},
	{"search", "search:pattern=P[,regex=true][,script_friendly=true]", "print the matching members of every layer"},
	{"inspect", "inspect:file=PATH", "append a JSON line describing the image's layers to PATH"},
}
