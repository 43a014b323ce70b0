// Package platform parses and matches image platforms (os/arch[/variant])
// the way containerd does, so that a user asking for `linux/arm64` gets the
// `linux/arm64/v8` entry of an index, `arm` means `arm/v7`, and an
// `amd64/v3` machine may take an `amd64` (v1) image.
//
// Everything here is a pure function of its arguments and safe to call
// concurrently.
package platform
