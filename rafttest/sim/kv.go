package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// KeyValue returns the built-in workload: clients put, get, delete and
// compare-and-set three keys of a replicated map, and the history is
// checked against a map's sequential specification, one key at a time.
// It is what Options.Workload defaults to, and an example of the
// interface: it goes through the same code path as a user's workload.
func KeyValue() Workload { return kvWorkload{} }

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

// kvInput is one client operation on the store. Value is what put and cas
// write; Expect is the value cas requires.
type kvInput struct {
	Kind   opKind
	Key    string
	Value  string
	Expect string
}

func (in kvInput) String() string {
	switch in.Kind {
	case opGet, opDelete:
		return in.Kind.String() + " " + in.Key
	case opCAS:
		return fmt.Sprintf("cas %s=%q if %q", in.Key, in.Value, in.Expect)
	}
	return fmt.Sprintf("%s %s=%q", in.Kind, in.Key, in.Value)
}

// kvOutput is the store's answer: a get's value and whether the key was
// there; for writes, whether they took effect (a cas may not).
type kvOutput struct {
	Value string
	OK    bool
}

func (out kvOutput) String() string { return fmt.Sprintf("%q,%v", out.Value, out.OK) }

// keys are few on purpose: operations on one key contend, which is where
// linearizability bugs show.
var keys = []string{"a", "b", "c"}

type kvWorkload struct{}

func (kvWorkload) NewStateMachine() StateMachine { return &kvStore{data: map[string]string{}} }

func (kvWorkload) Model() porcupine.Model { return kvModel }

// Next draws a key, then a kind (puts and deletes one time in six each,
// gets and cas two), then for cas a value some client may really have
// written. The order of the draws is part of every recorded seed.
func (kvWorkload) Next(rng *rand.Rand, c ClientState) Op {
	in := kvInput{Key: keys[rng.Intn(len(keys))]}
	in.Kind = []opKind{opPut, opGet, opGet, opDelete, opCAS, opCAS}[rng.Intn(6)]
	switch in.Kind {
	case opPut:
		in.Value = fmt.Sprintf("%d.%d", c.ID, c.Seq)
	case opCAS:
		in.Value = fmt.Sprintf("%d.%d", c.ID, c.Seq)
		in.Expect = fmt.Sprintf("%d.%d", 1+rng.Intn(c.Clients), 1+rng.Intn(int(c.Seq)+1))
	}
	return Op{Input: in, Read: in.Kind == opGet}
}

func (kvWorkload) LivenessWrite(seed int64) interface{} {
	return kvInput{Kind: opPut, Key: "live", Value: fmt.Sprint(seed)}
}

// command is a write as it travels through the log, in JSON.
type command struct {
	Client int    `json:"c"`
	Seq    uint64 `json:"s"`
	Kind   opKind `json:"k"`
	Key    string `json:"key"`
	Value  string `json:"v,omitempty"`
	Expect string `json:"e,omitempty"`
}

func (kvWorkload) Encode(c Call) []byte {
	in := c.Input.(kvInput)
	b, err := json.Marshal(command{Client: c.Client, Seq: c.Seq, Kind: in.Kind, Key: in.Key, Value: in.Value, Expect: in.Expect})
	if err != nil {
		panic(err) // a struct of plain fields always encodes
	}
	return b
}

var errNotCommand = errors.New("not a key-value command")

func (kvWorkload) Decode(data []byte) (Call, error) {
	var c command
	if err := json.Unmarshal(data, &c); err != nil {
		return Call{}, fmt.Errorf("%w: %v", errNotCommand, err)
	}
	if c.Kind == opGet || int(c.Kind) >= len(opKindNames) {
		return Call{}, fmt.Errorf("%w: kind %d is not a write", errNotCommand, c.Kind)
	}
	return Call{Client: c.Client, Seq: c.Seq, Input: kvInput{Kind: c.Kind, Key: c.Key, Value: c.Value, Expect: c.Expect}}, nil
}

// kvStore is the replicated map.
type kvStore struct {
	data map[string]string
}

func (s *kvStore) Apply(input interface{}) interface{} {
	in := input.(kvInput)
	switch in.Kind {
	case opPut:
		s.data[in.Key] = in.Value
		return kvOutput{OK: true}
	case opDelete:
		delete(s.data, in.Key)
		return kvOutput{OK: true}
	case opCAS:
		if v, ok := s.data[in.Key]; ok && v == in.Expect {
			s.data[in.Key] = in.Value
			return kvOutput{OK: true}
		}
	}
	return kvOutput{}
}

func (s *kvStore) Read(input interface{}) interface{} {
	v, ok := s.data[input.(kvInput).Key]
	return kvOutput{Value: v, OK: ok}
}

// Snapshot is deterministic: encoding/json sorts map keys.
func (s *kvStore) Snapshot() []byte {
	b, err := json.Marshal(s.data)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	return b
}

func (s *kvStore) Restore(data []byte) error {
	m := map[string]string{}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("decoding a snapshot of the store: %w", err)
	}
	s.data = m
	return nil
}

func (s *kvStore) String() string {
	ks := make([]string, 0, len(s.data))
	for k := range s.data {
		ks = append(ks, k+"="+s.data[k])
	}
	sort.Strings(ks)
	return "{" + strings.Join(ks, " ") + "}"
}

// kvState is the value of one key (the model is partitioned by key).
type kvState struct {
	Value   string
	Present bool
}

// kvModel is the sequential specification of the store, one key at a time.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return kvState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.Kind {
		case opPut:
			return true, kvState{Value: in.Value, Present: true}
		case opDelete:
			return true, kvState{}
		case opCAS:
			swapped := st.Present && st.Value == in.Expect
			if out.OK != swapped {
				return false, st
			}
			if swapped {
				return true, kvState{Value: in.Value, Present: true}
			}
			return true, st
		}
		return out.OK == st.Present && out.Value == st.Value, st
	},
	DescribeOperation: func(input, output interface{}) string {
		return fmt.Sprintf("%v -> %v", input, output)
	},
}
