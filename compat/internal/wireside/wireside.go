// Package wireside lets the wire tests run the same operations on etcd's
// raftpb and on raftkit's and compare the answers.
//
// The two packages cannot be linked into one binary: both register the
// protobuf names raftpb.* and the second registration panics at init. So
// the tests link etcd's raftpb and run raftkit's in a separate process (the
// wirepeer command); requests and responses travel as JSON, messages as
// wiretree trees. Both processes answer a Request with the same code,
// Handle, over their own Side, so that the responses can be compared field
// by field.
package wireside

import (
	"encoding/json"
	"fmt"

	"github.com/raftkit/raft/compat/internal/wiretree"
)

// Message is what both libraries' generated message types offer.
type Message interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
	Size() int
	String() string
}

// Side gives access to one library's raftpb. Values travel as wiretree
// trees; every method decodes its arguments itself because only it knows
// the concrete types.
type Side interface {
	// New returns a new zero message of the named type (Entry, Message, ...).
	New(typ string) (Message, bool)
	// EnumString returns String() of value v of the named enum type.
	EnumString(typ string, v int32) (string, bool)
	// EnumUnmarshalJSON runs the named enum type's UnmarshalJSON.
	EnumUnmarshalJSON(typ string, data []byte) (int32, error)
	// EnumMaps returns the generated X_name and X_value maps by variable
	// name.
	EnumMaps() map[string]any
	// ConfChangesFromString returns the parsed operations as a tree.
	ConfChangesFromString(s string) (tree []byte, err error)
	// ConfChangesToString renders a tree of []ConfChangeSingle.
	ConfChangesToString(tree []byte) (string, error)
	// ConfChange decodes a ConfChange or ConfChangeV2 (by typ) and returns
	// its AsV2 and AsV1 results.
	ConfChange(typ string, tree []byte) (v2, v1 []byte, v1ok bool, err error)
	// JointOps decodes a ConfChangeV2 and returns EnterJoint and
	// LeaveJoint.
	JointOps(tree []byte) (autoLeave, ok, leave bool, err error)
	// MarshalConfChange runs raftpb.MarshalConfChange on a ConfChange or a
	// ConfChangeV2 (by typ), or on nil when typ is empty.
	MarshalConfChange(typ string, tree []byte) (entryType int32, data []byte, err error)
	// Equivalent decodes two ConfStates and returns the first's
	// Equivalent(second) result, or an error if decoding failed.
	Equivalent(a, b []byte) (result error, err error)
}

// Request is one operation. Op names it; which other fields matter depends
// on Op (see Handle).
type Request struct {
	Op    string          `json:"op"`
	Type  string          `json:"type,omitempty"`
	Tree  json.RawMessage `json:"tree,omitempty"`
	Tree2 json.RawMessage `json:"tree2,omitempty"`
	Bytes []byte          `json:"bytes"` // null and "" stay apart
	Str   string          `json:"str,omitempty"`
	Num   int64           `json:"num,omitempty"`
}

// Response is one answer. Err holds an error text produced by the library
// under test (nil when it returned none); Fail reports a broken request or
// harness and is never compared, only shown.
type Response struct {
	Fail  string          `json:"fail,omitempty"`
	Err   *string         `json:"err"`
	Tree  json.RawMessage `json:"tree,omitempty"`
	Tree2 json.RawMessage `json:"tree2,omitempty"`
	JSON  json.RawMessage `json:"json,omitempty"`
	Bytes []byte          `json:"bytes"`
	Size  int             `json:"size"`
	Str   string          `json:"str"`
	Num   int64           `json:"num"`
	Bools []bool          `json:"bools,omitempty"`
}

func errText(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

func failed(format string, args ...any) Response {
	return Response{Fail: fmt.Sprintf(format, args...)}
}

// Handle answers req using side. The operations:
//
//	encode  Type, Tree: decode the tree, then Marshal (Bytes, Err), Size,
//	        encoding/json (JSON), the tree again (Tree) and String (Str)
//	decode  Type, Bytes: Unmarshal (Err); on success as for encode, with
//	        Bytes re-marshaled from the decoded value
//	enum    Type, Num: String of the enum value (Str)
//	enumjson Type, Str: UnmarshalJSON of Str (Num, Err)
//	enummaps: the generated name/value maps (JSON)
//	fromstring Str: ConfChangesFromString (Tree, Err)
//	tostring Tree: ConfChangesToString (Str)
//	asv     Type, Tree: AsV2 (Tree), AsV1 (Tree2, Bools[0])
//	joint   Tree: EnterJoint (Bools[0:2]) and LeaveJoint (Bools[2])
//	marshalcc Type, Tree: MarshalConfChange (Num, Bytes, Err)
//	equivalent Tree, Tree2: ConfState.Equivalent (Err)
func Handle(side Side, req Request) Response {
	switch req.Op {
	case "encode":
		m, ok := side.New(req.Type)
		if !ok {
			return failed("unknown message type %q", req.Type)
		}
		if err := wiretree.Unmarshal(req.Tree, m); err != nil {
			return failed("decoding tree of %s: %v", req.Type, err)
		}
		return describe(m)
	case "decode":
		m, ok := side.New(req.Type)
		if !ok {
			return failed("unknown message type %q", req.Type)
		}
		if err := m.Unmarshal(req.Bytes); err != nil {
			return Response{Err: errText(err)}
		}
		return describe(m)
	case "enum":
		s, ok := side.EnumString(req.Type, int32(req.Num))
		if !ok {
			return failed("unknown enum type %q", req.Type)
		}
		return Response{Str: s}
	case "enumjson":
		v, err := side.EnumUnmarshalJSON(req.Type, []byte(req.Str))
		return Response{Num: int64(v), Err: errText(err)}
	case "enummaps":
		data, err := json.Marshal(side.EnumMaps())
		if err != nil {
			return failed("%v", err)
		}
		return Response{JSON: data}
	case "fromstring":
		tree, err := side.ConfChangesFromString(req.Str)
		return Response{Tree: tree, Err: errText(err)}
	case "tostring":
		s, err := side.ConfChangesToString(req.Tree)
		if err != nil {
			return failed("%v", err)
		}
		return Response{Str: s}
	case "asv":
		v2, v1, ok, err := side.ConfChange(req.Type, req.Tree)
		if err != nil {
			return failed("%v", err)
		}
		return Response{Tree: v2, Tree2: v1, Bools: []bool{ok}}
	case "joint":
		autoLeave, ok, leave, err := side.JointOps(req.Tree)
		if err != nil {
			return failed("%v", err)
		}
		return Response{Bools: []bool{autoLeave, ok, leave}}
	case "marshalcc":
		typ, data, err := side.MarshalConfChange(req.Type, req.Tree)
		return Response{Num: int64(typ), Bytes: data, Err: errText(err)}
	case "equivalent":
		res, err := side.Equivalent(req.Tree, req.Tree2)
		if err != nil {
			return failed("%v", err)
		}
		return Response{Err: errText(res)}
	default:
		return failed("unknown op %q", req.Op)
	}
}

// describe reports everything observable about a message value.
func describe(m Message) Response {
	data, err := m.Marshal()
	if err != nil {
		return Response{Err: errText(err)}
	}
	tree, err := wiretree.Marshal(m)
	if err != nil {
		return failed("%v", err)
	}
	js, err := json.Marshal(m)
	if err != nil {
		return failed("encoding/json: %v", err)
	}
	return Response{Bytes: data, Size: m.Size(), Tree: tree, JSON: js, Str: m.String()}
}
