package kvservice

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
)

// Client calls the HTTP API of raftkv members. Each call names the member
// (its HTTP host:port); the client does not follow leaders, since any member
// serves every request.
type Client struct {
	// HTTP is the client used for requests; nil means http.DefaultClient,
	// or, with TLS set, a client using TLS.
	HTTP *http.Client
	// TLS, when set, makes the client speak HTTPS; its RootCAs name the
	// CA that signed the members' certificates (see NewClientTLS).
	TLS *tls.Config
	// Token, when set, is sent as "Authorization: Bearer <Token>". Use
	// the admin token for AddMember, RemoveMember, PromoteMember and
	// TransferLeader.
	Token string

	once sync.Once
	tlsc *http.Client
}

// NewClientTLS returns a TLS configuration that trusts the CA certificates
// in caFile (PEM) and, if certFile is not empty, presents that certificate.
func NewClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kvservice: no certificate in %s", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (c *Client) httpClient() (*http.Client, string) {
	switch {
	case c.HTTP != nil && c.TLS != nil:
		return c.HTTP, "https://"
	case c.HTTP != nil:
		return c.HTTP, "http://"
	case c.TLS == nil:
		return http.DefaultClient, "http://"
	}
	c.once.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = c.TLS
		c.tlsc = &http.Client{Transport: tr}
	})
	return c.tlsc, "https://"
}

// APIError is an error answer from a member.
type APIError struct {
	Code int
	ErrorResponse
}

func (e *APIError) Error() string {
	if e.Outcome != "" {
		return fmt.Sprintf("HTTP %d: %s (outcome: %s)", e.Code, e.ErrorResponse.Error, e.Outcome)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.ErrorResponse.Error)
}

// NotApplied reports whether err says for certain that a write did not
// happen (as opposed to a timeout or a transport error, after which it may
// have).
func NotApplied(err error) bool {
	e, ok := err.(*APIError)
	return ok && (e.Code < 500 || e.Outcome == "not-applied")
}

func (c *Client) do(ctx context.Context, method, addr, path string, body any, out any, okCodes ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	hc, scheme := c.httpClient()
	req, err := http.NewRequestWithContext(ctx, method, scheme+addr+path, rd)
	if err != nil {
		return 0, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	for _, code := range append(okCodes, http.StatusOK) {
		if resp.StatusCode == code {
			if out != nil {
				if err := json.Unmarshal(b, out); err != nil {
					return resp.StatusCode, fmt.Errorf("decoding answer: %w", err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	e := &APIError{Code: resp.StatusCode}
	if json.Unmarshal(b, &e.ErrorResponse) != nil || e.ErrorResponse.Error == "" {
		e.ErrorResponse.Error = string(b)
	}
	return resp.StatusCode, e
}

func kvPath(prefix, key string) string { return prefix + url.PathEscape(key) }

// Put sets key to value through member addr.
func (c *Client) Put(ctx context.Context, addr, key, value string) error {
	_, err := c.do(ctx, http.MethodPut, addr, kvPath("/v1/kv/", key), map[string]string{"value": value}, nil)
	return err
}

// Get reads key through member addr; found is false for an absent key.
func (c *Client) Get(ctx context.Context, addr, key string, serializable bool) (value string, found bool, err error) {
	p := kvPath("/v1/kv/", key)
	if serializable {
		p += "?serializable"
	}
	var r KVResponse
	code, err := c.do(ctx, http.MethodGet, addr, p, nil, &r, http.StatusNotFound)
	if err != nil {
		return "", false, err
	}
	return r.Value, code == http.StatusOK, nil
}

// Delete removes key through member addr.
func (c *Client) Delete(ctx context.Context, addr, key string) error {
	_, err := c.do(ctx, http.MethodDelete, addr, kvPath("/v1/kv/", key), nil, nil)
	return err
}

// CompareAndSet sets key to value if it holds *expect (absent for nil), and
// reports whether it did.
func (c *Client) CompareAndSet(ctx context.Context, addr, key string, expect *string, value string) (bool, error) {
	var r KVResponse
	_, err := c.do(ctx, http.MethodPost, addr, kvPath("/v1/cas/", key),
		map[string]any{"expect": expect, "value": value}, &r, http.StatusConflict)
	if err != nil {
		return false, err
	}
	return r.Succeeded != nil && *r.Succeeded, nil
}

// Status returns member addr's view of the cluster.
func (c *Client) Status(ctx context.Context, addr string) (Status, error) {
	var st Status
	_, err := c.do(ctx, http.MethodGet, addr, "/v1/status", nil, &st)
	return st, err
}

// AddMember asks member addr to add m to the cluster, as a learner that the
// leader promotes to voter once it has caught up.
func (c *Client) AddMember(ctx context.Context, addr string, m Member) error {
	_, err := c.do(ctx, http.MethodPost, addr, "/v1/members", m, nil)
	return err
}

// RemoveMember asks member addr to remove member id.
func (c *Client) RemoveMember(ctx context.Context, addr string, id uint64) error {
	_, err := c.do(ctx, http.MethodDelete, addr, "/v1/members/"+strconv.FormatUint(id, 10), nil, nil)
	return err
}

// TransferLeader asks member addr to move leadership to member to.
func (c *Client) TransferLeader(ctx context.Context, addr string, to uint64) error {
	_, err := c.do(ctx, http.MethodPost, addr, "/v1/leader", map[string]uint64{"to": to}, nil)
	return err
}

// TransferShards asks member addr, which hosts shards, to move the
// leadership of the shards listed to member to (see
// ShardedServer.TransferShards).
func (c *Client) TransferShards(ctx context.Context, addr string, to uint64, shards []int) error {
	if shards == nil {
		shards = []int{}
	}
	_, err := c.do(ctx, http.MethodPost, addr, "/v1/leader", map[string]any{"to": to, "shards": shards}, nil)
	return err
}

// PromoteMember asks the member at addr, which must be the leader, to make
// learner id a voter.
func (c *Client) PromoteMember(ctx context.Context, addr string, id uint64) error {
	_, err := c.do(ctx, http.MethodPost, addr, "/v1/members/"+strconv.FormatUint(id, 10)+"/promote", nil, nil)
	return err
}
