package kvservice

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// The security model, for a member reachable beyond its own machine:
// members talk to each other over mutual TLS (both present a certificate
// from the cluster's CA); clients reach the API over HTTPS with a bearer
// token; the admin endpoints, which change who is in the cluster and who
// leads it, take a token of their own so that a client token leaking does
// not hand over the cluster.

// ErrInsecure is returned by New for a member that would listen beyond
// loopback without TLS and a token, unless Config.Insecure is set.
var ErrInsecure = errors.New("kvservice: refusing to listen beyond loopback without TLS and a token")

// isLoopback reports whether a listen address host:port only binds
// loopback. An empty host (all interfaces) does not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExposure refuses, unless Insecure, a configuration that listens
// beyond loopback without securing the listener that is exposed.
func (c Config) checkExposure() error {
	if c.Insecure {
		return nil
	}
	var missing []string
	if !isLoopback(c.PeerAddr) && (c.PeerServerTLS == nil || c.PeerClientTLS == nil) {
		missing = append(missing, fmt.Sprintf("peer address %s has no mutual TLS", c.PeerAddr))
	}
	if !isLoopback(c.HTTPAddr) {
		if c.HTTPTLS == nil {
			missing = append(missing, fmt.Sprintf("HTTP address %s has no TLS", c.HTTPAddr))
		}
		if c.ClientToken == "" || c.AdminToken == "" {
			missing = append(missing, fmt.Sprintf("HTTP address %s needs a client token and an admin token", c.HTTPAddr))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (secure them, or pass --insecure / Config.Insecure)", ErrInsecure, strings.Join(missing, "; "))
	}
	return nil
}

// access is what an endpoint requires.
type access int

const (
	clientAccess access = iota // ClientToken or AdminToken
	adminAccess                // AdminToken only
)

// authorize wraps h so that it runs only for a request with the token its
// access level needs. Without tokens configured, every request passes.
// A missing or unknown token is 401; a client token on an admin endpoint is
// 403: the caller is known but not allowed.
func (s *api) authorize(level access, h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.ClientToken == "" && s.cfg.AdminToken == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		isAdmin := ok && tokenIs(token, s.cfg.AdminToken)
		isClient := ok && tokenIs(token, s.cfg.ClientToken)
		switch {
		case !isAdmin && !isClient:
			w.Header().Set("WWW-Authenticate", `Bearer realm="raftkv"`)
			s.badRequest(w, http.StatusUnauthorized, "missing or unknown bearer token")
		case level == adminAccess && !isAdmin:
			s.badRequest(w, http.StatusForbidden, "this endpoint needs the admin token")
		default:
			h(w, r)
		}
	}
}

// tokenIs compares in constant time; an unset token matches nothing.
func tokenIs(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
