package raftpb

import (
	"fmt"
	"strconv"
	"strings"
)

// ConfChangeI is implemented by both configuration change formats, ConfChange
// (one operation) and ConfChangeV2 (several, possibly joint), so that callers
// can propose and apply either through one code path.
type ConfChangeI interface {
	// AsV2 expresses the change in the V2 format.
	AsV2() ConfChangeV2
	// AsV1 returns the change in the V1 format and true, or false when the
	// change has no V1 form (every ConfChangeV2, even a single-change one).
	AsV1() (ConfChange, bool)
}

// MarshalConfChange encodes c as the payload of a log entry and returns the
// entry type that says how to decode it. A nil c encodes as an empty
// ConfChangeV2 with nil data: it decodes to the zero ConfChangeV2 (the
// request to leave a joint configuration), and having no bytes it can never
// be refused for its size.
func MarshalConfChange(c ConfChangeI) (EntryType, []byte, error) {
	if c == nil {
		return EntryConfChangeV2, nil, nil
	}
	if v1, isV1 := c.AsV1(); isV1 {
		data, err := v1.Marshal()
		return EntryConfChange, data, err
	}
	v2 := c.AsV2()
	data, err := v2.Marshal()
	return EntryConfChangeV2, data, err
}

// AsV2 returns the equivalent single-operation ConfChangeV2. The ID field has
// no V2 counterpart and is dropped.
func (c ConfChange) AsV2() ConfChangeV2 {
	single := ConfChangeSingle{Type: c.Type, NodeID: c.NodeID}
	return ConfChangeV2{Changes: []ConfChangeSingle{single}, Context: c.Context}
}

// AsV1 returns c itself and true.
func (c ConfChange) AsV1() (ConfChange, bool) { return c, true }

// AsV2 returns c itself.
func (c ConfChangeV2) AsV2() ConfChangeV2 { return c }

// AsV1 returns false: a ConfChangeV2 is never downgraded.
func (c ConfChangeV2) AsV1() (ConfChange, bool) { return ConfChange{}, false }

// EnterJoint reports whether applying c enters a joint configuration (ok),
// and if so whether raft leaves it by itself (autoLeave). Joint consensus is
// used whenever c holds more than one operation or asks for it through its
// Transition. Some multi-operation changes could in principle be applied in
// one step, but that depends on the configuration they apply to, so any
// multi-operation change goes through the joint configuration.
//
// A Transition value outside the defined enum is treated as
// ConfChangeTransitionJointExplicit: joint, left only when the application
// asks. That is the choice that never moves membership further than asked.
func (c ConfChangeV2) EnterJoint() (autoLeave bool, ok bool) {
	switch {
	case c.Transition == ConfChangeTransitionAuto && len(c.Changes) <= 1:
		return false, false
	case c.Transition == ConfChangeTransitionAuto,
		c.Transition == ConfChangeTransitionJointImplicit:
		return true, true
	default:
		return false, true
	}
}

// LeaveJoint reports whether c is the request to leave a joint
// configuration: a ConfChangeV2 with no operations and the default
// Transition. Its Context may be anything.
func (c ConfChangeV2) LeaveJoint() bool {
	return c.Transition == ConfChangeTransitionAuto && len(c.Changes) == 0
}

// confChangeLetters maps each operation to the letter that names it in the
// textual form read by ConfChangesFromString.
var confChangeLetters = map[ConfChangeType]byte{
	ConfChangeAddNode:        'v',
	ConfChangeAddLearnerNode: 'l',
	ConfChangeRemoveNode:     'r',
	ConfChangeUpdateNode:     'u',
}

// ConfChangesFromString parses operations separated by single spaces, each a
// letter followed by a decimal node ID:
//
//	v3  make 3 a voter
//	l4  make 4 a learner
//	r5  remove 5
//	u6  update 6
//
// Leading and trailing white space is ignored; an empty string yields no
// operations.
func ConfChangesFromString(s string) ([]ConfChangeSingle, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []ConfChangeSingle
	for _, tok := range strings.Split(s, " ") {
		cc, err := parseConfChangeToken(tok)
		if err != nil {
			return nil, err
		}
		out = append(out, cc)
	}
	return out, nil
}

func parseConfChangeToken(tok string) (ConfChangeSingle, error) {
	if len(tok) < 2 {
		return ConfChangeSingle{}, fmt.Errorf("unknown token %s", tok)
	}
	var typ ConfChangeType
	switch tok[0] {
	case 'v':
		typ = ConfChangeAddNode
	case 'l':
		typ = ConfChangeAddLearnerNode
	case 'r':
		typ = ConfChangeRemoveNode
	case 'u':
		typ = ConfChangeUpdateNode
	default:
		return ConfChangeSingle{}, fmt.Errorf("unknown input: %s", tok)
	}
	id, err := strconv.ParseUint(tok[1:], 10, 64)
	if err != nil {
		return ConfChangeSingle{}, err
	}
	return ConfChangeSingle{Type: typ, NodeID: id}, nil
}

// ConfChangesToString renders operations in the form ConfChangesFromString
// reads. An operation type outside the enum renders as "unknown" followed by
// the node ID, which does not parse back.
func ConfChangesToString(ccs []ConfChangeSingle) string {
	var b strings.Builder
	for i, cc := range ccs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if letter, known := confChangeLetters[cc.Type]; known {
			b.WriteByte(letter)
		} else {
			b.WriteString("unknown")
		}
		b.WriteString(strconv.FormatUint(cc.NodeID, 10))
	}
	return b.String()
}
