package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts a CPU profile when OCCYSTRAP_CPUPROFILE names a file
// and an execution trace (`go tool trace`) when OCCYSTRAP_TRACE names one,
// and the returned stop writes them, plus a heap profile when
// OCCYSTRAP_MEMPROFILE names one. The benchmark harness (bench/) sets them
// for its --cpuprofile and --memprofile, so a slow stage can be found with
// `go tool pprof`.
func startProfiles(stderr io.Writer) (stop func()) {
	var cpu *os.File
	if p := os.Getenv("OCCYSTRAP_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "Warning: CPU profile: %v\n", err)
		} else {
			cpu = f
		}
	}
	var tr *os.File
	if p := os.Getenv("OCCYSTRAP_TRACE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			if err = trace.Start(f); err != nil {
				_ = f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "Warning: trace: %v\n", err)
		} else {
			tr = f
		}
	}
	return func() {
		if tr != nil {
			trace.Stop()
			_ = tr.Close()
		}
		if cpu != nil {
			pprof.StopCPUProfile()
			_ = cpu.Close()
		}
		if p := os.Getenv("OCCYSTRAP_MEMPROFILE"); p != "" {
			runtime.GC()
			f, err := os.Create(p)
			if err == nil {
				err = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
			if err != nil {
				fmt.Fprintf(stderr, "Warning: heap profile: %v\n", err)
			}
		}
	}
}
