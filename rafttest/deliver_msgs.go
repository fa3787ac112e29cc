package rafttest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// anyType selects messages of every type in DeliverMsgs.
const anyType pb.MessageType = -1

// cmdDeliverMsgs: deliver-msgs [ID...] [drop=(IDs)] [type=MsgX] — for
// each recipient in argument order, delivers (or drops) its queued messages,
// printing each one. Unknown keys are ignored.
func cmdDeliverMsgs(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	typ := anyType
	var rs []Recipient
	dropping := map[uint64]bool{} // recipients named so far: dropped or not
	add := func(id uint64, drop bool) {
		if wasDrop, ok := dropping[id]; ok && (drop || wasDrop) {
			d.Fatalf(t, "can't both deliver and drop msgs to %d", id)
		}
		dropping[id] = drop
		rs = append(rs, Recipient{ID: id, Drop: drop})
	}
	for _, arg := range d.CmdArgs {
		if len(arg.Vals) == 0 {
			id, err := strconv.ParseUint(arg.Key, 10, 64)
			if err != nil {
				d.Fatalf(t, "deliver-msgs: %v", err)
			}
			add(id, false)
			continue
		}
		for i, val := range arg.Vals {
			switch arg.Key {
			case "drop":
				var id uint64
				arg.Scan(t, i, &id)
				add(id, true)
			case "type":
				v, ok := pb.MessageType_value[val]
				if !ok {
					d.Fatalf(t, "unknown message type %s", val)
				}
				typ = pb.MessageType(v)
			}
		}
	}
	if env.DeliverMsgs(typ, rs...) == 0 {
		env.Output.WriteString("no messages\n")
	}
	return nil
}

// Recipient names a node whose queued messages DeliverMsgs handles, and
// whether they are to be dropped instead of delivered.
type Recipient struct {
	ID   uint64
	Drop bool
}

// DeliverMsgs takes from env.Messages the messages addressed to each of rs,
// in the order rs are given, and steps them into their recipient or, for a
// Recipient with Drop set, discards them. typ restricts it to one message
// type (-1 means any). It returns how many messages it took.
//
// Local messages (between a node and itself or its storage threads) model
// reliable in-process delivery and are never dropped: they stay queued.
func (env *InteractionEnv) DeliverMsgs(typ pb.MessageType, rs ...Recipient) int {
	handled := 0
	for _, r := range rs {
		var taken []pb.Message
		taken, env.Messages = takeMsgs(env.Messages, r.ID, typ, r.Drop)
		handled += len(taken)
		for _, m := range taken {
			if r.Drop {
				env.Output.WriteString("dropped: ")
			}
			env.Output.WriteString(raft.DescribeMessage(m, formatData) + "\n")
			if r.Drop {
				continue
			}
			if err := env.step(m); err != nil {
				fmt.Fprintln(env.Output, err)
			}
		}
	}
	return handled
}

// step hands m to its recipient.
func (env *InteractionEnv) step(m pb.Message) error {
	n, err := env.node(int(m.To) - 1)
	if err != nil {
		return err
	}
	return n.Step(m)
}

// takeMsgs splits msgs, keeping their order, into those addressed to id
// (of type typ, unless typ is anyType) and the rest. When the taken
// messages are to be dropped, local messages are left in place.
func takeMsgs(msgs []pb.Message, id uint64, typ pb.MessageType, drop bool) (taken, rest []pb.Message) {
	for _, m := range msgs {
		if m.To == id && (typ == anyType || m.Type == typ) && !(drop && isLocal(m)) {
			taken = append(taken, m)
		} else {
			rest = append(rest, m)
		}
	}
	return taken, rest
}

// isLocal reports whether m never crosses the network: a node talking to
// itself or to one of its own storage threads.
func isLocal(m pb.Message) bool {
	return m.From == m.To || raft.IsLocalMsgTarget(m.From) || raft.IsLocalMsgTarget(m.To)
}
