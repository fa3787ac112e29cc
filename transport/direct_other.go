//go:build !unix

package transport

import "syscall"

// writeNonblocking writes nothing where sockets are not file descriptors:
// the writer writes every message.
func writeNonblocking(syscall.RawConn, []byte) int { return 0 }
