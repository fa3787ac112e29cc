package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// startProfile writes a CPU profile of this member to
// $RAFTKV_CPUPROFILE_DIR/cpu-<id>.pprof when that variable is set (for
// profiling the members `load` starts), and returns the function that
// ends it; without the variable it does nothing.
func startProfile(id uint64) (stop func(), err error) {
	dir := os.Getenv("RAFTKV_CPUPROFILE_DIR")
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", id)))
	if err != nil {
		return nil, fmt.Errorf("RAFTKV_CPUPROFILE_DIR: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("RAFTKV_CPUPROFILE_DIR: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
