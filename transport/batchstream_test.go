package transport

import (
	"context"
	"errors"
	"net"
	"testing"
)

// accepted is the outcome of AcceptBatchStream in acceptOne.
type accepted struct {
	from uint64
	conn net.Conn
	err  error
}

// acceptOne accepts one connection on a fresh loopback listener and runs
// AcceptBatchStream on it, reporting the outcome on the returned channel.
func acceptOne(t *testing.T, cfg BatchStreamConfig, known func(uint64) bool) (string, <-chan accepted) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	out := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			out <- accepted{err: err}
			return
		}
		from, conn, err := AcceptBatchStream(context.Background(), c, cfg, known)
		if err != nil {
			_ = c.Close()
		}
		out <- accepted{from, conn, err}
	}()
	return ln.Addr().String(), out
}

// A batch stream over mutual TLS: the handshake names the sender and a
// frame arrives intact; an oversized frame is refused before writing.
func TestBatchStreamOverTLS(t *testing.T) {
	ca := testCA(t)
	srvTLS, cliTLS := MutualTLS(ca.leaf(t, "b"), ca.pool)
	server := BatchStreamConfig{ClusterID: cluster, ID: 2, ServerTLS: srvTLS, ClientTLS: cliTLS}
	addr, got := acceptOne(t, server, func(id uint64) bool { return id == 1 })
	srvTLS1, cliTLS1 := MutualTLS(ca.leaf(t, "a"), ca.pool)
	client := BatchStreamConfig{ClusterID: cluster, ID: 1, ServerTLS: srvTLS1, ClientTLS: cliTLS1}
	conn, err := DialBatchStream(context.Background(), client, 2, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame, err := AppendFrame(nil, []byte("batch"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || a.from != 1 {
		t.Fatalf("accept: from %d, %v", a.from, a.err)
	}
	defer a.conn.Close()
	payload, err := ReadFrame(a.conn, 64, nil)
	if err != nil || string(payload) != "batch" {
		t.Fatalf("read %q, %v", payload, err)
	}
	if _, err := AppendFrame(nil, make([]byte, 65), 64); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
}

// A plain dialer does not get through a TLS batch listener, and a
// Transport's own listener refuses a batch stream.
func TestBatchStreamRefusals(t *testing.T) {
	ca := testCA(t)
	srvTLS, cliTLS := MutualTLS(ca.leaf(t, "b"), ca.pool)
	server := BatchStreamConfig{ClusterID: cluster, ID: 2, ServerTLS: srvTLS, ClientTLS: cliTLS, IOTimeout: 2e9}
	addr, got := acceptOne(t, server, nil)
	if _, err := DialBatchStream(context.Background(), BatchStreamConfig{ClusterID: cluster, ID: 1, IOTimeout: 2e9}, 2, addr); err == nil {
		t.Fatal("a plain dialer got through a TLS listener")
	}
	if a := <-got; a.err == nil {
		t.Fatal("the TLS listener accepted a plain stream")
	}

	m := startMember(t, 2, nil)
	_ = m.AddPeer(1, "127.0.0.1:1")
	if _, err := DialBatchStream(context.Background(), BatchStreamConfig{ClusterID: cluster, ID: 1, IOTimeout: 2e9}, 2, m.Addr().String()); err == nil {
		t.Fatal("a Transport accepted a batch stream")
	}
}
