package kvservice

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raft/transport"
)

// testCA is a certificate authority made in memory for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a certificate for 127.0.0.1 usable by servers and clients.
func (ca *testCA) leaf(t *testing.T, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial + 10), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

const (
	clientToken = "client-secret"
	adminToken  = "admin-secret"
)

// TestSecuredCluster runs three members over mutual TLS between them, with
// HTTPS and tokens for clients, and checks who gets in: peers without a
// certificate or with one from another CA are refused, and so are clients
// without the CA, without a token, with a wrong token, or with the client
// token on an admin endpoint.
func TestSecuredCluster(t *testing.T) {
	ca, other := newTestCA(t, "cluster CA"), newTestCA(t, "another CA")
	serial := int64(0)
	c := newLocalCluster(t, 3, func(cfg *Config) {
		serial++
		cfg.PeerServerTLS, cfg.PeerClientTLS = transport.MutualTLS(ca.leaf(t, serial), ca.pool)
		cfg.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, serial+100)}}
		cfg.ClientToken, cfg.AdminToken = clientToken, adminToken
	})
	ctx := context.Background()
	addr := c.srv[1].HTTPAddr()
	good := &Client{TLS: &tls.Config{RootCAs: ca.pool}, Token: clientToken}
	if err := good.Put(ctx, addr, "k", "v"); err != nil {
		t.Fatalf("write with the CA and the client token: %v", err)
	}
	if v, ok, err := good.Get(ctx, c.srv[2].HTTPAddr(), "k", false); err != nil || !ok || v != "v" {
		t.Fatalf("read through another member: %q %v %v", v, ok, err)
	}

	wantCode := func(what string, err error, code int) {
		t.Helper()
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != code {
			t.Errorf("%s: got %v, want HTTP %d", what, err, code)
		}
	}
	wantCode("no token", (&Client{TLS: good.TLS}).Put(ctx, addr, "k", "v"), http.StatusUnauthorized)
	wantCode("wrong token", (&Client{TLS: good.TLS, Token: "guess"}).Put(ctx, addr, "k", "v"), http.StatusUnauthorized)
	wantCode("client token on an admin endpoint", good.RemoveMember(ctx, addr, 3), http.StatusForbidden)
	admin := &Client{TLS: good.TLS, Token: adminToken}
	if _, err := admin.Status(ctx, addr); err != nil {
		t.Errorf("admin token on a client endpoint: %v", err)
	}
	if err := admin.PromoteMember(ctx, addr, 1); err != nil && !strings.Contains(err.Error(), "leader") {
		t.Errorf("admin token on an admin endpoint: %v", err)
	}
	if err := (&Client{Token: clientToken}).Put(ctx, addr, "k", "v"); err == nil {
		t.Error("plain HTTP to the HTTPS API was served")
	}
	if err := (&Client{TLS: &tls.Config{RootCAs: other.pool}, Token: clientToken}).Put(ctx, addr, "k", "v"); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("client trusting another CA: %v", err)
	}

	// Peers: a connection without a client certificate, or with one from
	// another CA, is refused by the TLS handshake.
	peer := c.srv[1].PeerAddr()
	refused := func(what string, cfg *tls.Config) {
		t.Helper()
		conn, err := tls.Dial("tcp", peer, cfg)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the refusal arrives after the handshake
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v", what, err)
		}
	}
	refused("peer without a client certificate", &tls.Config{RootCAs: ca.pool})
	refused("peer with another CA's certificate", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{other.leaf(t, 99)}})
}

// TestExposureNeedsSecurity checks the secure default: listening beyond
// loopback needs TLS and tokens, or an explicit Insecure.
func TestExposureNeedsSecurity(t *testing.T) {
	base := Config{ID: 1, ClusterID: 1, Dir: t.TempDir(), PeerAddr: "127.0.0.1:0", HTTPAddr: "localhost:0"}
	if _, err := base.withDefaults(); err != nil {
		t.Fatalf("loopback only: %v", err)
	}
	for _, tc := range []struct{ peer, http string }{{"0.0.0.0:7001", "127.0.0.1:0"}, {"127.0.0.1:0", ":8001"}, {"10.1.2.3:1", "[::1]:1"}} {
		cfg := base
		cfg.PeerAddr, cfg.HTTPAddr = tc.peer, tc.http
		if _, err := cfg.withDefaults(); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%s/%s without TLS: %v", tc.peer, tc.http, err)
		}
		cfg.Insecure = true
		if _, err := cfg.withDefaults(); err != nil {
			t.Errorf("%s/%s with Insecure: %v", tc.peer, tc.http, err)
		}
	}
	cfg := base
	cfg.PeerAddr, cfg.HTTPAddr = "0.0.0.0:1", "0.0.0.0:2"
	cfg.PeerServerTLS, cfg.PeerClientTLS, cfg.HTTPTLS = &tls.Config{}, &tls.Config{}, &tls.Config{}
	cfg.ClientToken = "c"
	if _, err := cfg.withDefaults(); !errors.Is(err, ErrInsecure) {
		t.Errorf("no admin token: %v", err)
	}
	cfg.AdminToken = "a"
	if _, err := cfg.withDefaults(); err != nil {
		t.Errorf("fully secured: %v", err)
	}
}

// TestSecuredShardedCluster: sharded members talk over mutual TLS on their
// batch streams (a peer without the cluster CA's certificate is refused)
// and serve the API over HTTPS with tokens, as single-group members do.
func TestSecuredShardedCluster(t *testing.T) {
	ca, other := newTestCA(t, "cluster CA"), newTestCA(t, "another CA")
	serial := int64(0)
	c := newShardedCluster(t, 3, 4, func(cfg *Config) {
		serial++
		cfg.PeerServerTLS, cfg.PeerClientTLS = transport.MutualTLS(ca.leaf(t, serial), ca.pool)
		cfg.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, serial+100)}}
		cfg.ClientToken, cfg.AdminToken = clientToken, adminToken
	})
	ctx := context.Background()
	good := &Client{TLS: &tls.Config{RootCAs: ca.pool}, Token: clientToken}
	for i := 0; i < 8; i++ {
		k := fmt.Sprintf("k%d", i)
		if err := retryRequest(func() error { return good.Put(ctx, c.srv[1].HTTPAddr(), k, "v") }); err != nil {
			t.Fatalf("write %s over HTTPS with the client token: %v", k, err)
		}
		if v, ok, err := good.Get(ctx, c.srv[2].HTTPAddr(), k, false); err != nil || !ok || v != "v" {
			t.Fatalf("read %s through another member: %q %v %v", k, v, ok, err)
		}
	}
	if err := (&Client{TLS: good.TLS}).Put(ctx, c.srv[1].HTTPAddr(), "k", "v"); err == nil {
		t.Error("a write without a token was served")
	}
	conn, err := tls.Dial("tcp", c.srv[1].PeerAddr(), &tls.Config{RootCAs: ca.pool,
		Certificates: []tls.Certificate{other.leaf(t, 99)}})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("peer with another CA's certificate: %v", err)
	}
}
