package wire

import (
	"fmt"

	"github.com/raftkit/raft/compat/internal/wireside"
	"github.com/raftkit/raft/compat/internal/wiretree"
	pb "go.etcd.io/raft/v3/raftpb"
)

// etcdSide implements wireside.Side over etcd's raftpb, in this process. It
// is the mirror image of internal/wirepeer's side over raftkit's; keep the
// two alike, so that any difference in answers comes from the libraries.
// EnterJoint is only ever asked about defined transitions: etcd's panics
// on others.
type etcdSide struct{}

func (etcdSide) New(typ string) (wireside.Message, bool) {
	switch typ {
	case "Entry":
		return new(pb.Entry), true
	case "SnapshotMetadata":
		return new(pb.SnapshotMetadata), true
	case "Snapshot":
		return new(pb.Snapshot), true
	case "Message":
		return new(pb.Message), true
	case "HardState":
		return new(pb.HardState), true
	case "ConfState":
		return new(pb.ConfState), true
	case "ConfChange":
		return new(pb.ConfChange), true
	case "ConfChangeSingle":
		return new(pb.ConfChangeSingle), true
	case "ConfChangeV2":
		return new(pb.ConfChangeV2), true
	}
	return nil, false
}

func (etcdSide) EnumString(typ string, v int32) (string, bool) {
	switch typ {
	case "EntryType":
		return pb.EntryType(v).String(), true
	case "MessageType":
		return pb.MessageType(v).String(), true
	case "ConfChangeTransition":
		return pb.ConfChangeTransition(v).String(), true
	case "ConfChangeType":
		return pb.ConfChangeType(v).String(), true
	}
	return "", false
}

func (etcdSide) EnumUnmarshalJSON(typ string, data []byte) (int32, error) {
	switch typ {
	case "EntryType":
		var v pb.EntryType
		err := v.UnmarshalJSON(data)
		return int32(v), err
	case "MessageType":
		var v pb.MessageType
		err := v.UnmarshalJSON(data)
		return int32(v), err
	case "ConfChangeTransition":
		var v pb.ConfChangeTransition
		err := v.UnmarshalJSON(data)
		return int32(v), err
	case "ConfChangeType":
		var v pb.ConfChangeType
		err := v.UnmarshalJSON(data)
		return int32(v), err
	}
	return 0, fmt.Errorf("unknown enum type %q", typ)
}

func (etcdSide) EnumMaps() map[string]any {
	return map[string]any{
		"EntryType_name": pb.EntryType_name, "EntryType_value": pb.EntryType_value,
		"MessageType_name": pb.MessageType_name, "MessageType_value": pb.MessageType_value,
		"ConfChangeTransition_name": pb.ConfChangeTransition_name, "ConfChangeTransition_value": pb.ConfChangeTransition_value,
		"ConfChangeType_name": pb.ConfChangeType_name, "ConfChangeType_value": pb.ConfChangeType_value,
	}
}

func (etcdSide) ConfChangesFromString(s string) ([]byte, error) {
	ccs, err := pb.ConfChangesFromString(s)
	tree, terr := wiretree.Marshal(ccs)
	if terr != nil {
		panic(terr) // []ConfChangeSingle always encodes
	}
	return tree, err
}

func (etcdSide) ConfChangesToString(tree []byte) (string, error) {
	var ccs []pb.ConfChangeSingle
	if err := wiretree.Unmarshal(tree, &ccs); err != nil {
		return "", err
	}
	return pb.ConfChangesToString(ccs), nil
}

func (s etcdSide) ConfChange(typ string, tree []byte) (v2, v1 []byte, v1ok bool, err error) {
	var cc pb.ConfChangeI
	switch typ {
	case "ConfChange":
		var c pb.ConfChange
		err = wiretree.Unmarshal(tree, &c)
		cc = c
	case "ConfChangeV2":
		var c pb.ConfChangeV2
		err = wiretree.Unmarshal(tree, &c)
		cc = c
	default:
		err = fmt.Errorf("not a conf change type: %q", typ)
	}
	if err != nil {
		return nil, nil, false, err
	}
	if v2, err = wiretree.Marshal(cc.AsV2()); err != nil {
		return nil, nil, false, err
	}
	asV1, v1ok := cc.AsV1()
	v1, err = wiretree.Marshal(asV1)
	return v2, v1, v1ok, err
}

func (etcdSide) JointOps(tree []byte) (autoLeave, ok, leave bool, err error) {
	var c pb.ConfChangeV2
	if err := wiretree.Unmarshal(tree, &c); err != nil {
		return false, false, false, err
	}
	autoLeave, ok = c.EnterJoint()
	return autoLeave, ok, c.LeaveJoint(), nil
}

func (etcdSide) MarshalConfChange(typ string, tree []byte) (int32, []byte, error) {
	var cc pb.ConfChangeI
	switch typ {
	case "":
	case "ConfChange":
		var c pb.ConfChange
		if err := wiretree.Unmarshal(tree, &c); err != nil {
			return 0, nil, fmt.Errorf("harness: %w", err)
		}
		cc = c
	case "ConfChangeV2":
		var c pb.ConfChangeV2
		if err := wiretree.Unmarshal(tree, &c); err != nil {
			return 0, nil, fmt.Errorf("harness: %w", err)
		}
		cc = c
	default:
		return 0, nil, fmt.Errorf("harness: not a conf change type: %q", typ)
	}
	typOut, data, err := pb.MarshalConfChange(cc)
	return int32(typOut), data, err
}

func (etcdSide) Equivalent(a, b []byte) (error, error) {
	var x, y pb.ConfState
	if err := wiretree.Unmarshal(a, &x); err != nil {
		return nil, err
	}
	if err := wiretree.Unmarshal(b, &y); err != nil {
		return nil, err
	}
	return x.Equivalent(y), nil
}
