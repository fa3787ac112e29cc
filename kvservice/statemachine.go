package kvservice

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Member is one member of the cluster as the service knows it: its raft ID
// and where to reach it. Members are part of the replicated state (they
// travel in conf change contexts and in snapshots), so every node learns the
// addresses of members added after it started.
type Member struct {
	ID uint64 `json:"id"`
	// PeerAddr is the host:port of the member's raft transport.
	PeerAddr string `json:"peer_addr"`
	// HTTPAddr is the host:port of the member's client API.
	HTTPAddr string `json:"http_addr"`
}

// Operations carried by log entries.
const (
	opPut    = "put"
	opDelete = "delete"
	opCAS    = "cas"
)

// command is the payload of a normal log entry. Node and Req identify the
// proposal so that the node that proposed it can answer its client when it
// applies the entry; other nodes ignore them.
type command struct {
	Node  uint64 `json:"node"`
	Req   uint64 `json:"req"`
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	// Expect is the value a compare-and-set requires; nil requires the
	// key to be absent.
	Expect *string `json:"expect,omitempty"`
}

// confContext is the Context of a conf change entry: the member being added
// (its addresses) and the proposal's identity, as in command.
type confContext struct {
	Node   uint64 `json:"node"`
	Req    uint64 `json:"req"`
	Member Member `json:"member"`
}

// kvState is the replicated state in the JSON form of the first snapshot of
// a new cluster (the members) and of snapshots written before the state
// moved to the store (see store.go), which it is imported from. In a
// running server, only Members and Removed are kept (the store has the
// keys); it is not safe for concurrent use, and the server guards it.
type kvState struct {
	KV      map[string]string `json:"kv"`
	Members map[uint64]Member `json:"members"`
	// Removed holds every ID ever removed from the cluster. An ID is never
	// given back: a removed member's data directory still holds a log and
	// a vote, and letting it in again under the same ID would let that
	// stale process rejoin as if nothing had happened. It is replicated
	// (applied from the log, carried in snapshots) so that every member,
	// and every future member, refuses the same IDs.
	Removed map[uint64]bool `json:"removed,omitempty"`
}

func newKVState() *kvState {
	return &kvState{KV: map[string]string{}, Members: map[uint64]Member{}, Removed: map[uint64]bool{}}
}

func (s *kvState) marshal() ([]byte, error) { return json.Marshal(s) }

func unmarshalKVState(data []byte) (*kvState, error) {
	s := newKVState()
	if len(data) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("kvservice: decoding snapshot data: %w", err)
	}
	if s.KV == nil {
		s.KV = map[string]string{}
	}
	if s.Members == nil {
		s.Members = map[uint64]Member{}
	}
	if s.Removed == nil {
		s.Removed = map[uint64]bool{}
	}
	return s, nil
}

// memberList returns the members sorted by ID.
func (s *kvState) memberList() []Member {
	out := make([]Member, 0, len(s.Members))
	for _, m := range s.Members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
