//go:build unix

package transport

import "syscall"

// writeNonblocking writes b to the socket with one write call that never
// waits (the runtime keeps sockets non-blocking) and returns how many
// bytes it took; on any error, including a full buffer, 0.
func writeNonblocking(raw syscall.RawConn, b []byte) int {
	n := 0
	_ = raw.Write(func(fd uintptr) bool {
		k, err := syscall.Write(int(fd), b)
		if err == nil && k > 0 {
			n = k
		}
		return true // never wait for the socket
	})
	return n
}
