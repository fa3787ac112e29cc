package shared

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestTransportDeliversInOrder checks that frames of every size arrive
// whole and in the order sent.
func TestTransportDeliversInOrder(t *testing.T) {
	var (
		mu  sync.Mutex
		got [][]byte
		all = make(chan struct{})
	)
	const n = 500
	recv := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, b)
		if len(got) == n {
			close(all)
		}
	}
	b, err := NewTransport(2, "127.0.0.1:0", recv, func(uint64) {})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := NewTransport(1, "127.0.0.1:0", func([]byte) {}, func(uint64) {})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.AddPeer(2, b.ln.Addr().String())
	var want [][]byte
	for i := 0; i < n; i++ {
		m := bytes.Repeat([]byte{byte(i)}, i*37%5000)
		m = append(m, []byte(fmt.Sprint(i))...)
		want = append(want, m)
	}
	// Send waits for nothing; wait for the stream before sending so no
	// frame is dropped for want of a connection.
	waitStream(t, a, 2)
	for _, m := range want {
		a.Send(2, bytesOf(m))
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("got %d of %d frames", len(got), n)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}

// waitStream waits until t has a connection open, which for a transport
// with one peer and no inbound streams is its stream to that peer.
func waitStream(t *testing.T, tr *Transport, _ uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tr.mu.Lock()
		n := len(tr.conns)
		tr.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no stream")
}

// TestTransportDropsWhenPeerDown checks that Send to a peer with no stream
// never blocks and reports the drops, as raft needs to fall back to probing.
func TestTransportDropsWhenPeerDown(t *testing.T) {
	var (
		mu      sync.Mutex
		dropped int
	)
	a, err := NewTransport(1, "127.0.0.1:0", func([]byte) {}, func(to uint64) {
		mu.Lock()
		dropped++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.AddPeer(2, freeAddr(t))
	for i := 0; i < QueueSize+10; i++ {
		a.Send(2, bytesOf([]byte("x"))) // must not block with the queue full
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped < 10 {
		t.Fatalf("dropped %d, want at least the 10 over the queue", dropped)
	}
}

func bytesOf(b []byte) Encoder { return func() ([]byte, error) { return b, nil } }
