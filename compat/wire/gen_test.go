package wire

import (
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"
)

// gen makes random raftpb values (etcd's types) that lean on the edges of
// the encoding: zero and maximal integers, varint length boundaries, nil
// against empty bytes and lists, every defined enum value and some that are
// not defined, and messages nested inside responses.
type gen struct {
	r *rand.Rand
	// steps counts draws per enum type, so that each enum's defined values
	// come up in turn, not only when the dice allow.
	steps map[reflect.Type]int
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), steps: map[reflect.Type]int{}}
}

func (g *gen) chance(n int) bool { return g.r.IntN(n) == 0 }

func (g *gen) u64() uint64 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64
	case 2:
		// Around the boundaries where a varint grows by a byte.
		shift := 7 * uint(1+g.r.IntN(9))
		return 1<<shift + uint64(g.r.IntN(3)) - 1
	case 3:
		return 1 << 63
	case 4:
		return g.r.Uint64()
	default:
		return uint64(g.r.IntN(1000))
	}
}

func (g *gen) bytes() []byte {
	switch g.r.IntN(5) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		// Long enough for a two-byte length prefix.
		b := make([]byte, 128+g.r.IntN(300))
		for i := range b {
			b[i] = byte(g.r.UintN(256))
		}
		return b
	default:
		b := make([]byte, 1+g.r.IntN(16))
		for i := range b {
			b[i] = byte(g.r.UintN(256))
		}
		return b
	}
}

func (g *gen) ids() []uint64 {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []uint64{}
	default:
		ids := make([]uint64, 1+g.r.IntN(6))
		for i := range ids {
			ids[i] = g.u64()
		}
		return ids
	}
}

// enum returns one of the defined values in turn, and now and then a value
// the enum does not define (negative ones take ten bytes on the wire).
func enum[T ~int32](g *gen, names map[int32]string) T {
	step := g.steps[reflect.TypeFor[T]()]
	g.steps[reflect.TypeFor[T]()]++
	if g.chance(10) {
		return T([]int32{-1, math.MinInt32, math.MaxInt32, int32(len(names)), 1000}[g.r.IntN(5)])
	}
	keys := slices.Sorted(maps.Keys(names))
	return T(keys[step%len(keys)])
}

func (g *gen) entry() pb.Entry {
	return pb.Entry{
		Term:  g.u64(),
		Index: g.u64(),
		Type:  enum[pb.EntryType](g, pb.EntryType_name),
		Data:  g.bytes(),
	}
}

func (g *gen) entries() []pb.Entry {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []pb.Entry{}
	default:
		es := make([]pb.Entry, 1+g.r.IntN(4))
		for i := range es {
			es[i] = g.entry()
		}
		return es
	}
}

func (g *gen) confState() pb.ConfState {
	return pb.ConfState{
		Voters:         g.ids(),
		Learners:       g.ids(),
		VotersOutgoing: g.ids(),
		LearnersNext:   g.ids(),
		AutoLeave:      g.chance(2),
	}
}

func (g *gen) snapshotMetadata() pb.SnapshotMetadata {
	return pb.SnapshotMetadata{ConfState: g.confState(), Index: g.u64(), Term: g.u64()}
}

func (g *gen) snapshot() pb.Snapshot {
	return pb.Snapshot{Data: g.bytes(), Metadata: g.snapshotMetadata()}
}

// message nests responses up to depth levels down.
func (g *gen) message(depth int) pb.Message {
	m := pb.Message{
		Type:       enum[pb.MessageType](g, pb.MessageType_name),
		To:         g.u64(),
		From:       g.u64(),
		Term:       g.u64(),
		LogTerm:    g.u64(),
		Index:      g.u64(),
		Entries:    g.entries(),
		Commit:     g.u64(),
		Vote:       g.u64(),
		Reject:     g.chance(2),
		RejectHint: g.u64(),
		Context:    g.bytes(),
	}
	switch g.r.IntN(3) {
	case 0:
		s := g.snapshot()
		m.Snapshot = &s
	case 1:
		m.Snapshot = &pb.Snapshot{} // what older peers send on non-snapshot messages
	}
	if depth > 0 {
		switch g.r.IntN(3) {
		case 0:
			m.Responses = []pb.Message{}
		case 1:
			m.Responses = make([]pb.Message, 1+g.r.IntN(3))
			for i := range m.Responses {
				m.Responses[i] = g.message(depth - 1)
			}
		}
	}
	return m
}

func (g *gen) hardState() pb.HardState {
	return pb.HardState{Term: g.u64(), Vote: g.u64(), Commit: g.u64()}
}

func (g *gen) confChange() pb.ConfChange {
	return pb.ConfChange{
		ID:      g.u64(),
		Type:    enum[pb.ConfChangeType](g, pb.ConfChangeType_name),
		NodeID:  g.u64(),
		Context: g.bytes(),
	}
}

func (g *gen) single() pb.ConfChangeSingle {
	return pb.ConfChangeSingle{Type: enum[pb.ConfChangeType](g, pb.ConfChangeType_name), NodeID: g.u64()}
}

func (g *gen) singles(max int) []pb.ConfChangeSingle {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []pb.ConfChangeSingle{}
	default:
		ccs := make([]pb.ConfChangeSingle, 1+g.r.IntN(max))
		for i := range ccs {
			ccs[i] = g.single()
		}
		return ccs
	}
}

func (g *gen) confChangeV2() pb.ConfChangeV2 {
	return pb.ConfChangeV2{
		Transition: enum[pb.ConfChangeTransition](g, pb.ConfChangeTransition_name),
		Changes:    g.singles(4),
		Context:    g.bytes(),
	}
}

// messageOf returns a random value of the named raftpb message type.
func (g *gen) messageOf(typ string) any {
	switch typ {
	case "Entry":
		v := g.entry()
		return &v
	case "SnapshotMetadata":
		v := g.snapshotMetadata()
		return &v
	case "Snapshot":
		v := g.snapshot()
		return &v
	case "Message":
		v := g.message(2)
		return &v
	case "HardState":
		v := g.hardState()
		return &v
	case "ConfState":
		v := g.confState()
		return &v
	case "ConfChange":
		v := g.confChange()
		return &v
	case "ConfChangeSingle":
		v := g.single()
		return &v
	case "ConfChangeV2":
		v := g.confChangeV2()
		return &v
	}
	panic("gen: unknown message type " + typ)
}

// corrupt returns a damaged copy of data: truncated, with a byte changed,
// a byte inserted, or garbage appended.
func (g *gen) corrupt(data []byte) []byte {
	out := slices.Clone(data)
	switch g.r.IntN(4) {
	case 0:
		if len(out) > 0 {
			return out[:g.r.IntN(len(out))]
		}
	case 1:
		if len(out) > 0 {
			out[g.r.IntN(len(out))] = byte(g.r.UintN(256))
			return out
		}
	case 2:
		i := g.r.IntN(len(out) + 1)
		return slices.Insert(out, i, byte(g.r.UintN(256)))
	}
	for n := 1 + g.r.IntN(6); n > 0; n-- {
		out = append(out, byte(g.r.UintN(256)))
	}
	return out
}
