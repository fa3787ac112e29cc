package sim

import (
	"encoding/json"
	"fmt"
	"sort"
)

// opKind is what a client asks of the key-value store.
type opKind uint8

const (
	opPut opKind = iota
	opGet
	opDelete
	opCAS
)

var opKindNames = [...]string{opPut: "put", opGet: "get", opDelete: "delete", opCAS: "cas"}

func (k opKind) String() string { return opKindNames[k] }

// command is a write as it travels through the log. Client and Seq make
// it idempotent: a command re-proposed by its client, or duplicated by the
// network, takes effect at most once.
type command struct {
	Client int    `json:"c"`
	Seq    uint64 `json:"s"`
	Kind   opKind `json:"k"`
	Key    string `json:"key"`
	Value  string `json:"v,omitempty"`
	Expect string `json:"e,omitempty"`
}

func (c command) encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of plain fields always encodes
	}
	return b
}

func decodeCommand(b []byte) (command, bool) {
	var c command
	if len(b) == 0 || json.Unmarshal(b, &c) != nil {
		return command{}, false
	}
	return c, true
}

// result is the store's answer to an operation.
type result struct {
	Value string `json:"v,omitempty"`
	OK    bool   `json:"ok,omitempty"`
}

// session remembers a client's last applied command and its answer, so
// that a duplicate gets the original answer instead of a second effect.
type session struct {
	Seq    uint64 `json:"s"`
	Result result `json:"r"`
}

// kvStore is the replicated state machine: a map with per-client sessions.
// Invariant: applied is the index of the last log entry folded in.
type kvStore struct {
	Data     map[string]string `json:"d"`
	Sessions map[int]session   `json:"ss"`
	Applied  uint64            `json:"a"`
}

func newKVStore() *kvStore {
	return &kvStore{Data: map[string]string{}, Sessions: map[int]session{}}
}

// apply folds in the command at index, returning its answer and whether
// it took effect (false for duplicates and foreign payloads).
func (s *kvStore) apply(index uint64, data []byte) (command, result, bool) {
	s.Applied = index
	c, ok := decodeCommand(data)
	if !ok {
		return command{}, result{}, false
	}
	if sess, seen := s.Sessions[c.Client]; seen && c.Seq <= sess.Seq {
		if c.Seq == sess.Seq {
			return c, sess.Result, false
		}
		return c, result{}, false
	}
	var r result
	switch c.Kind {
	case opPut:
		s.Data[c.Key] = c.Value
		r.OK = true
	case opDelete:
		delete(s.Data, c.Key)
		r.OK = true
	case opCAS:
		if v, ok := s.Data[c.Key]; ok && v == c.Expect {
			s.Data[c.Key] = c.Value
			r.OK = true
		}
	}
	s.Sessions[c.Client] = session{Seq: c.Seq, Result: r}
	return c, r, true
}

func (s *kvStore) get(key string) result {
	v, ok := s.Data[key]
	return result{Value: v, OK: ok}
}

// encode is deterministic: encoding/json sorts map keys.
func (s *kvStore) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeKVStore(b []byte) (*kvStore, error) {
	s := newKVStore()
	if len(b) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decoding a snapshot of the store: %w", err)
	}
	return s, nil
}

func (s *kvStore) String() string {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := "{"
	for i, k := range keys {
		if i > 0 {
			out += " "
		}
		out += k + "=" + s.Data[k]
	}
	return out + "}"
}
