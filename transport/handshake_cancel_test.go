package transport

import (
	"context"
	"net"
	"testing"
	"time"
)

// Close does not wait out IOTimeout for a peer stuck in its handshake: a
// listener that accepts and never answers holds the dialing goroutine
// until the transport's context ends it.
func TestCloseEndsAHandshakeInProgress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // hold it open, say nothing
		}
	}()
	m := startMember(t, 1, func(c *Config) { c.IOTimeout = 10 * time.Minute })
	if err := m.AddPeer(2, ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	c := <-accepted // the dial is through: the handshake waits for a reply
	defer c.Close()
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // IOTimeout is 10 minutes
		t.Fatal("Close waited for a handshake the peer never answers")
	}
}

// DialBatchStream's context ends a handshake the peer never answers.
func TestDialBatchStreamContextEndsTheHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, err := DialBatchStream(ctx, BatchStreamConfig{ClusterID: cluster, ID: 1, IOTimeout: 10 * time.Minute}, 2, ln.Addr().String())
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a handshake nobody answered succeeded")
		}
	case <-time.After(30 * time.Second): // IOTimeout is 10 minutes
		t.Fatal("DialBatchStream outlived its context in the handshake")
	}
}
