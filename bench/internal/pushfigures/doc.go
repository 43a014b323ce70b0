// Package pushfigures holds the registry push measurements (tests and
// benchmarks only, no API): a registry-to-registry copy side by side with
// `crane copy`, and the requests and bytes of a first push and of a rerun.
//
//	go test ./bench/internal/pushfigures -run TestPushFigures -v
//	go test ./bench/internal/pushfigures -bench BenchmarkRegistryToRegistry -benchtime=5x -run '^$'
package pushfigures
