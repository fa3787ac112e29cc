package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
)

// startProfile writes a CPU profile of this member to
// $RAFTKV_CPUPROFILE_DIR/cpu-<id>.pprof when that variable is set (for
// profiling the members `load` starts), and returns the function that
// ends it; without the variable it does nothing.
//
// The profile covers the member's life, unless it is told otherwise:
// SIGUSR1 starts it again from empty (dropping what came before, such as
// the cluster's start), SIGUSR2 ends it early. `load` sends them around
// its measured run, so that the profile holds what the run's numbers
// count and nothing else.
func startProfile(id uint64) (stop func(), err error) {
	dir := os.Getenv("RAFTKV_CPUPROFILE_DIR")
	if dir == "" {
		return func() {}, nil
	}
	p := &windowProfile{path: filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", id))}
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("RAFTKV_CPUPROFILE_DIR: %w", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGUSR1 {
					p.end()
					_ = p.begin()
				} else {
					p.end()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		p.end()
	}, nil
}

// windowProfile is a CPU profile into one file that can be started over.
type windowProfile struct {
	path string
	mu   sync.Mutex
	f    *os.File // nil while not profiling
}

// begin starts profiling into a truncated file.
func (p *windowProfile) begin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.Create(p.path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.f = f
	return nil
}

// end stops profiling, if it runs, and closes the file.
func (p *windowProfile) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return
	}
	pprof.StopCPUProfile()
	p.f.Close()
	p.f = nil
}
