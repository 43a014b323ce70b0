// Package dir reads back an image that a dir:// output wrote: catalog.json
// names the image's manifest file, whose Config and Layers give the config
// file and the <name>/layer.tar files. It is the source of the deprecated
// recreate-image command (the original's DirReader); it is no input scheme.
//
// Layer bodies are the output's own files, never removed. A Source is used
// by one goroutine.
package dir
