// Package bundle writes the two configuration files of an OCI runtime bundle
// the way the original occystrap's oci:// and mounts:// outputs do:
//
//	container-config.json   the image's config
//	config.json             a runc spec made from the runc default template
//
// RuntimeConfig fills the template (ociVersion 1.0.2-dev, read-only root
// "rootfs", the template's environment, user 0:0, capabilities, mounts and
// namespaces) with what the image says: process.cwd is its WorkingDir (or
// "/"), process.args its Entrypoint followed by its Cmd; process.terminal is
// false and the hostname "occystrap". It is written as Python's
// json.dumps(indent=4, sort_keys=True) writes it.
//
// Everything here is a pure function or writes only the files it is given;
// it is safe for concurrent use.
package bundle
