package multiraft

import (
	"encoding/binary"
	"errors"

	"github.com/raftkit/raft/raftpb"
)

// Heartbeat is one group's plain raft heartbeat, or its answer, inside a
// Batch's coalesced heartbeats: the only fields raft sets on a heartbeat
// without a read context (MsgHeartbeat: term and commit index) or on its
// answer (MsgHeartbeatResp: term; Commit is zero). The sender and receiver
// are the batch's hosts.
//
// Why coalesce. With hundreds of awake groups, a leader host sends every
// member host a heartbeat per group per heartbeat period, and gets as many
// answers: most of the messages a busy sharded host sends. Gathered per
// batch (one batch per peer host per round), they travel as one item of a
// few varints per group instead of one protobuf message each; the receiver
// expands them back into the very raft messages the sender's groups made
// (expandHeartbeats), so raft's semantics are untouched: every heartbeat
// still resets its follower's election timer and raises its commit index,
// every answer still marks its member active for CheckQuorum and resumes
// its flow. Heartbeats with a read context (ReadIndex rounds, lease reads)
// and quiescing heartbeats stay messages of their own.
type Heartbeat struct {
	Group  GroupID
	Term   uint64
	Commit uint64
}

// Item kinds of the coalesced heartbeats on the wire: one item of each at
// most per batch, with group 0, whose payload lists the heartbeats
// (AppendBatch). Hosts of versions before them drop such a batch as
// malformed (see HostConfig.SeparateHeartbeats).
const (
	kindHeartbeats    ItemKind = 4
	kindHeartbeatResp ItemKind = 5
)

// coalescible reports whether m is a plain heartbeat or heartbeat answer
// that a Heartbeat carries whole, and which: every field but type, term,
// commit (heartbeats only) and the hosts is empty.
func coalescible(m *raftpb.Message) (resp, ok bool) {
	switch m.Type {
	case raftpb.MsgHeartbeat:
	case raftpb.MsgHeartbeatResp:
		resp = true
		if m.Commit != 0 {
			return false, false
		}
	default:
		return false, false
	}
	plain := len(m.Context) == 0 && m.Index == 0 && m.LogTerm == 0 && len(m.Entries) == 0 &&
		m.Snapshot == nil && !m.Reject && m.RejectHint == 0 && m.Vote == 0 && len(m.Responses) == 0
	return resp, plain
}

// heartbeatMessage is the raft message h stands for, from host from to
// host to.
func heartbeatMessage(h *Heartbeat, resp bool, from, to HostID) raftpb.Message {
	m := raftpb.Message{Type: raftpb.MsgHeartbeat, From: from, To: to, Term: h.Term, Commit: h.Commit}
	if resp {
		m.Type, m.Commit = raftpb.MsgHeartbeatResp, 0
	}
	return m
}

// expandHeartbeats returns b's items followed by its coalesced heartbeats
// and answers as raft items addressed to self.
func (b *Batch) expandHeartbeats(self HostID) []Item {
	n := len(b.Heartbeats) + len(b.HeartbeatResps)
	if n == 0 {
		return b.Items
	}
	items := make([]Item, 0, len(b.Items)+n)
	items = append(items, b.Items...)
	for i := range b.Heartbeats {
		hb := &b.Heartbeats[i]
		items = append(items, Item{Group: hb.Group, Kind: KindRaft, Msg: heartbeatMessage(hb, false, b.From, self)})
	}
	for i := range b.HeartbeatResps {
		hb := &b.HeartbeatResps[i]
		items = append(items, Item{Group: hb.Group, Kind: KindRaft, Msg: heartbeatMessage(hb, true, b.From, self)})
	}
	return items
}

// wireItems is the number of items b takes on the wire: its items and one
// per non-empty list of coalesced heartbeats.
func (b *Batch) wireItems() int {
	n := len(b.Items)
	if len(b.Heartbeats) > 0 {
		n++
	}
	if len(b.HeartbeatResps) > 0 {
		n++
	}
	return n
}

// appendHeartbeats appends the item carrying hbs (of kind k): group 0,
// the kind, the payload's length, then the payload: the count, and per
// heartbeat its group, term and (for kindHeartbeats) commit, as uvarints.
func appendHeartbeats(dst []byte, k ItemKind, hbs []Heartbeat) []byte {
	if len(hbs) == 0 {
		return dst
	}
	size := uvarintLen(uint64(len(hbs)))
	for i := range hbs {
		size += uvarintLen(uint64(hbs[i].Group)) + uvarintLen(hbs[i].Term)
		if k == kindHeartbeats {
			size += uvarintLen(hbs[i].Commit)
		}
	}
	dst = binary.AppendUvarint(dst, 0)
	dst = append(dst, byte(k))
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = binary.AppendUvarint(dst, uint64(len(hbs)))
	for i := range hbs {
		dst = binary.AppendUvarint(dst, uint64(hbs[i].Group))
		dst = binary.AppendUvarint(dst, hbs[i].Term)
		if k == kindHeartbeats {
			dst = binary.AppendUvarint(dst, hbs[i].Commit)
		}
	}
	return dst
}

// uvarintLen is the length of v's uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// decodeHeartbeats parses the payload of a coalesced heartbeats item of
// kind k, appending to hbs. Group 0 and counts the payload cannot hold are
// refused.
func decodeHeartbeats(payload []byte, k ItemKind, hbs []Heartbeat) ([]Heartbeat, error) {
	r := reader{buf: payload}
	n := r.uvarint()
	minLen := uint64(2)
	if k == kindHeartbeats {
		minLen = 3
	}
	if r.err != nil || n == 0 || n > uint64(len(r.buf))/minLen {
		return hbs, errors.New("bad heartbeat count")
	}
	hbs = append(make([]Heartbeat, 0, len(hbs)+int(n)), hbs...)
	for i := uint64(0); i < n; i++ {
		hb := Heartbeat{Group: GroupID(r.uvarint()), Term: r.uvarint()}
		if k == kindHeartbeats {
			hb.Commit = r.uvarint()
		}
		if r.err != nil || hb.Group == 0 {
			return hbs, errors.New("bad heartbeat")
		}
		hbs = append(hbs, hb)
	}
	if len(r.buf) != 0 {
		return hbs, errors.New("trailing bytes after heartbeats")
	}
	return hbs, nil
}

// heartbeatsMax bounds the encoding of b's coalesced heartbeats.
func heartbeatsMax(b *Batch) int {
	const item = 3*binary.MaxVarintLen64 + 1
	return 2*item + 3*binary.MaxVarintLen64*(len(b.Heartbeats)+len(b.HeartbeatResps))
}
