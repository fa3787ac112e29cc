//go:build !unix

package testport

import "os"

// tryLock cannot lock across processes here: ports are unique within the
// process only.
func tryLock(*os.File) bool { return true }
