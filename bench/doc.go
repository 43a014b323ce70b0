// Package bench holds end-to-end measurements of occystrap against other
// tools on the same images in the same run (its tests and benchmarks only;
// no API). The registry push figures compare a registry-to-registry copy
// with `crane copy`, and count the requests and bytes of a first push and
// of a rerun.
package bench
