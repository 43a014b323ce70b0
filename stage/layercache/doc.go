// Package layercache is the --layer-cache file of the original occystrap
// (its format version 1): for each layer key (the name the source gives a
// layer: a DiffID hex, or a registry layer's compressed digest hex), the
// compressed blob a registry push made of it, under a hash of the filters
// and compression used.
//
// The file is JSON with an indent of 2:
//
//	{"version": 1, "layers": {KEY: {"compressed_digest": "sha256:..",
//	 "compressed_size": N, "media_type": "..", "filters_hash": "..",
//	 "timestamp": "<UTC ISO 8601>"}}}
//
// One entry per key; recording a new entry replaces the old one, and a
// lookup with another filters hash misses. Save writes atomically (a
// temporary file in the same folder, then a rename), only when something
// changed, creating missing folders. A corrupt file or another version is
// ignored (Open reports it as a warning, and starts empty).
//
// Its companion FILE.digests (Digests), also the original's, maps the
// compressed blobs a Docker engine pushed to dockerpush:// to their DiffIDs:
//
//	{"version": 1, "mappings": {COMPRESSED_HEX: DIFFID_HEX}}
//
// Both files get the mode a new file gets under the umask.
//
// A Cache and a Digests are safe for concurrent use.
package layercache
