package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/raftkit/raft/raftpb"
)

// testAuthority is a throwaway certificate authority, made in memory.
type testAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial int64

func testCA(t *testing.T) *testAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "raftkit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
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
	return &testAuthority{cert: cert, key: key, pool: pool}
}

// leaf issues a certificate good for both ends of a connection on loopback.
func (ca *testAuthority) leaf(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func withTLS(cert tls.Certificate, pool *x509.CertPool) func(*Config) {
	return func(c *Config) { c.ServerTLS, c.ClientTLS = MutualTLS(cert, pool) }
}

func TestMutualTLS(t *testing.T) {
	ca := testCA(t)
	a := startMember(t, 1, withTLS(ca.leaf(t, "m1"), ca.pool))
	b := startMember(t, 2, withTLS(ca.leaf(t, "m2"), ca.pool))
	connect(t, a, b)
	a.Send([]raftpb.Message{app(1, 2, 1, 100)})
	b.Send([]raftpb.Message{app(2, 1, 1, 100)})
	if m := b.recv(t); m.From != 1 {
		t.Fatalf("got %+v", m)
	}
	if m := a.recv(t); m.From != 2 {
		t.Fatalf("got %+v", m)
	}
}

// A member whose certificate comes from another CA is refused by both
// sides' TLS, and nothing it sends is processed.
func TestMutualTLSWrongCA(t *testing.T) {
	ca, rogue := testCA(t), testCA(t)
	a := startMember(t, 1, withTLS(ca.leaf(t, "m1"), ca.pool))
	// b trusts the right CA but presents a certificate of the rogue one.
	b := startMember(t, 2, withTLS(rogue.leaf(t, "m2"), ca.pool))
	if err := a.AddPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	b.Send([]raftpb.Message{app(2, 1, 1, 10)})
	a.log.waitLog(t, "refused inbound connection: TLS handshake failed", "error=certificate")
	b.log.waitLog(t, "cannot reach peer", "error=tls", "peer-id=1")
	a.log.waitLog(t, "cannot reach peer", "error=certificate signed by unknown authority")
	b.waitUnreachable(t, 1)
	select {
	case m := <-a.r.msgs:
		t.Fatalf("message over an untrusted connection: %+v", m)
	default:
	}
}

// A TLS listener does not speak to a plain TCP peer.
func TestPlainPeerRefusedByTLS(t *testing.T) {
	ca := testCA(t)
	a := startMember(t, 1, withTLS(ca.leaf(t, "m1"), ca.pool))
	b := startMember(t, 2, nil)
	if err := a.AddPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	a.log.waitLog(t, "refused inbound connection: TLS handshake failed")
	b.log.waitLog(t, "cannot reach peer", "peer-id=1")
}
