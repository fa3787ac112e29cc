package kvservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// maxKeyLen bounds keys, which travel in URLs.
const maxKeyLen = 4096

// Handler returns the HTTP API:
//
//	GET    /v1/kv/{key}[?serializable]  read (linearizable unless ?serializable)
//	PUT    /v1/kv/{key}                 {"value": "..."}
//	DELETE /v1/kv/{key}
//	POST   /v1/cas/{key}                {"expect": "old" | null, "value": "new"}
//	GET    /v1/members
//	POST   /v1/members                  {"id": 4, "peer_addr": "...", "http_addr": "..."}
//	DELETE /v1/members/{id}
//	POST   /v1/members/{id}/promote     learner to voter (ask the leader; with shards, any member: the learner decides)
//	POST   /v1/leader                   {"to": 2}; with shards, optionally "shards": [0, 3] (default:
//	                                    the shards this member leads): see ShardedServer.TransferShards
//	GET    /v1/status
//	GET    /metrics                     Prometheus exposition (client_golang)
//
// With tokens configured (Config.ClientToken, AdminToken), every request
// needs "Authorization: Bearer <token>"; the member changes and the leader
// transfer need the admin token.
//
// Answers are JSON. Errors are {"error": "..."} with a 4xx status for a bad
// request and 5xx when the cluster could not serve it; a 503 says whether the
// write was certainly not applied ("applied": false) or might have been
// ("outcome": "unknown").
func (s *Server) Handler() http.Handler {
	return newAPI(s, &s.cfg, s.m).handler()
}

// handler builds the mux of the API; see Server.Handler.
func (s *api) handler() http.Handler {
	mux := http.NewServeMux()
	client := func(h http.HandlerFunc) http.HandlerFunc { return s.authorize(clientAccess, h) }
	admin := func(h http.HandlerFunc) http.HandlerFunc { return s.authorize(adminAccess, h) }
	mux.HandleFunc("/v1/kv/", client(s.serveKV))
	mux.HandleFunc("/v1/cas/", client(s.serveCAS))
	mux.HandleFunc("GET /v1/members", client(s.serveMembers))
	mux.HandleFunc("POST /v1/members", admin(s.serveAddMember))
	mux.HandleFunc("DELETE /v1/members/{id}", admin(s.serveRemoveMember))
	mux.HandleFunc("POST /v1/members/{id}/promote", admin(s.servePromoteMember))
	mux.HandleFunc("POST /v1/leader", admin(s.serveTransfer))
	mux.HandleFunc("GET /v1/status", client(s.serveStatus))
	mux.Handle("GET /metrics", client(promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}).ServeHTTP))
	return mux
}

// KVResponse is the body of a successful key operation.
type KVResponse struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	// Found (reads) says whether the key has a value.
	Found bool `json:"found,omitempty"`
	// Existed and Prev (writes) describe the value before the write.
	Existed bool   `json:"existed,omitempty"`
	Prev    string `json:"prev,omitempty"`
	// Succeeded (compare-and-set) says whether the value was written.
	Succeeded *bool `json:"succeeded,omitempty"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Outcome is "not-applied" when a write certainly did not happen and
	// "unknown" when it may have; empty for reads and bad requests.
	Outcome string `json:"outcome,omitempty"`
	// ShardsDone and ShardsPending (a membership change with shards cut
	// short, see ShardsError) list the shards where the change holds and
	// those where it does not yet (each left out when empty); repeating
	// the request finishes it.
	ShardsDone    []int `json:"shards_done,omitempty"`
	ShardsPending []int `json:"shards_pending,omitempty"`
}

func (s *api) keyFrom(w http.ResponseWriter, r *http.Request, prefix string) (string, bool) {
	key := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case key == "":
		s.badRequest(w, http.StatusBadRequest, "missing key in the URL: "+prefix+"{key}")
		return "", false
	case len(key) > maxKeyLen:
		s.badRequest(w, http.StatusBadRequest, fmt.Sprintf("key longer than %d bytes", maxKeyLen))
		return "", false
	}
	return key, true
}

func (s *api) serveKV(w http.ResponseWriter, r *http.Request) {
	key, ok := s.keyFrom(w, r, "/v1/kv/")
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet:
		_, serializable := r.URL.Query()["serializable"]
		v, found, err := s.svc.Get(r.Context(), key, serializable)
		if err != nil {
			s.writeError(w, err)
			return
		}
		if !found {
			writeJSON(w, http.StatusNotFound, KVResponse{Key: key})
			return
		}
		writeJSON(w, http.StatusOK, KVResponse{Key: key, Value: v, Found: true})
	case http.MethodPut:
		var body struct {
			Value *string `json:"value"`
		}
		if !s.decode(w, r, &body) {
			return
		}
		if body.Value == nil {
			s.badRequest(w, http.StatusBadRequest, `missing "value" in the body`)
			return
		}
		res, err := s.svc.Put(r.Context(), key, *body.Value)
		s.writeResult(w, key, *body.Value, res, err, false)
	case http.MethodDelete:
		res, err := s.svc.Delete(r.Context(), key)
		s.writeResult(w, key, "", res, err, false)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		s.badRequest(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on /v1/kv/")
	}
}

func (s *api) serveCAS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.badRequest(w, http.StatusMethodNotAllowed, "use POST for compare-and-set")
		return
	}
	key, ok := s.keyFrom(w, r, "/v1/cas/")
	if !ok {
		return
	}
	// "expect" must be present: null means "the key must be absent", and
	// a forgotten field must not silently mean that.
	var body struct {
		Expect json.RawMessage `json:"expect"`
		Value  *string         `json:"value"`
	}
	if !s.decode(w, r, &body) {
		return
	}
	if body.Value == nil || body.Expect == nil {
		s.badRequest(w, http.StatusBadRequest, `compare-and-set needs "expect" (a string, or null for an absent key) and "value"`)
		return
	}
	var expect *string
	if err := json.Unmarshal(body.Expect, &expect); err != nil {
		s.badRequest(w, http.StatusBadRequest, `"expect" must be a string or null`)
		return
	}
	res, err := s.svc.CompareAndSet(r.Context(), key, expect, *body.Value)
	s.writeResult(w, key, *body.Value, res, err, true)
}

func (s *api) writeResult(w http.ResponseWriter, key, value string, res Result, err error, cas bool) {
	if err != nil {
		s.writeError(w, err)
		return
	}
	resp := KVResponse{Key: key, Existed: res.Existed, Prev: res.Prev}
	code := http.StatusOK
	if cas {
		ok := res.Succeeded
		resp.Succeeded = &ok
		if ok {
			resp.Value = value
		} else {
			code = http.StatusConflict
		}
	} else if value != "" {
		resp.Value = value
	}
	writeJSON(w, code, resp)
}

func (s *api) serveMembers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"members": s.svc.Members()})
}

func (s *api) serveAddMember(w http.ResponseWriter, r *http.Request) {
	var m Member
	if !s.decode(w, r, &m) {
		return
	}
	ms, err := s.svc.AddMember(r.Context(), m)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

func (s *api) serveRemoveMember(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		s.badRequest(w, http.StatusBadRequest, "member ID must be a positive integer")
		return
	}
	ms, err := s.svc.RemoveMember(r.Context(), id)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

func (s *api) servePromoteMember(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		s.badRequest(w, http.StatusBadRequest, "member ID must be a positive integer")
		return
	}
	ms, err := s.svc.PromoteMember(r.Context(), id)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

func (s *api) serveTransfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To     uint64 `json:"to"`
		Shards []int  `json:"shards"`
	}
	if !s.decode(w, r, &body) {
		return
	}
	if body.To == 0 {
		s.badRequest(w, http.StatusBadRequest, `missing "to": the member to transfer leadership to`)
		return
	}
	var err error
	if sh, ok := s.svc.(shardTransferer); ok {
		err = sh.TransferShards(r.Context(), body.To, body.Shards)
	} else if body.Shards != nil {
		s.badRequest(w, http.StatusBadRequest, `"shards" given to a member without shards`)
		return
	} else {
		err = s.svc.TransferLeader(r.Context(), body.To)
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader": body.To})
}

// shardTransferer is a service whose leader transfers can name shards
// (ShardedServer).
type shardTransferer interface {
	TransferShards(ctx context.Context, to uint64, shards []int) error
}

func (s *api) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.svc.Status())
}

// decode reads a JSON body of at most MaxRequestBytes into v, refusing
// unknown fields and trailing data, and answers the client itself when it
// fails.
func (s *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, err2 := io.Copy(io.Discard, body); err2 != nil {
			err = err2
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		s.badRequest(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		s.badRequest(w, http.StatusBadRequest, "empty body: a JSON object is required")
	default:
		s.badRequest(w, http.StatusBadRequest, "bad JSON: "+err.Error())
	}
	return false
}

func (s *api) badRequest(w http.ResponseWriter, code int, msg string) {
	s.m.httpBadRequests.Inc()
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func (s *api) writeError(w http.ResponseWriter, err error) {
	code, outcome := http.StatusInternalServerError, ""
	resp := ErrorResponse{Error: err.Error()}
	var se *ShardsError
	if errors.As(err, &se) {
		resp.ShardsDone, resp.ShardsPending = se.Done, se.Pending
	}
	bad := true // a request this member refuses as made (counted as such)
	switch {
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrUnsupported):
		code = http.StatusNotImplemented
	case errors.Is(err, ErrUnknownMember):
		code = http.StatusNotFound
	case errors.Is(err, ErrMemberExists), errors.Is(err, ErrMemberRemoved), errors.Is(err, ErrNotCaughtUp):
		code = http.StatusConflict
	case errors.Is(err, ErrAskMember):
		code = http.StatusMisdirectedRequest
	default:
		bad = false
	}
	switch {
	case bad:
	case errors.Is(err, ErrRemoved):
		code, outcome = http.StatusGone, "not-applied"
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrStopped), errors.Is(err, ErrNotLeader):
		code, outcome = http.StatusServiceUnavailable, "not-applied"
	case errors.Is(err, ErrReadTimeout):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrLeaderChanged):
		code, outcome = http.StatusServiceUnavailable, "unknown"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		code, outcome = http.StatusGatewayTimeout, "unknown"
	}
	if bad {
		s.m.httpBadRequests.Inc()
	}
	resp.Outcome = outcome
	writeJSON(w, code, resp)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteMetrics writes the member's metrics (the same as GET /metrics) in
// the Prometheus text exposition format.
func (s *Server) WriteMetrics(w io.Writer) error {
	mfs, err := s.m.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
