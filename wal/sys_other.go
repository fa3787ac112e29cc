//go:build !linux

package wal

import (
	"errors"
	"os"
	"sync/atomic"
)

// The package relies on flock, fallocate and fdatasync as Linux provides
// them; elsewhere Open refuses rather than run without the directory lock.
var errUnsupportedOS = errors.New("wal: only supported on Linux")

func lockDir(string) (*os.File, error)  { return nil, errUnsupportedOS }
func preallocate(*os.File, int64) error { return errUnsupportedOS }
func syncData(f *os.File) error         { return f.Sync() }
func syncDir(string) error              { return errUnsupportedOS }

// dirSyncs counts syncDir calls (sys_linux.go); none happen here.
var dirSyncs atomic.Uint64

// writtenPrefix: see sys_linux.go; unknown here.
func writtenPrefix(*os.File) (int64, error) { return 0, errUnsupportedOS }
