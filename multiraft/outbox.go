package multiraft

import "github.com/raftkit/raft/raftpb"

// outbox gathers a round's items per destination host, so that each host
// gets one batch per round.
type outbox struct {
	from    HostID
	order   []HostID
	batches map[HostID]*Batch
}

func newOutbox(from HostID) *outbox {
	return &outbox{from: from, batches: make(map[HostID]*Batch)}
}

func (o *outbox) add(to HostID, it Item) {
	b, ok := o.batches[to]
	if !ok {
		b = &Batch{From: o.from}
		o.batches[to] = b
		o.order = append(o.order, to)
	}
	b.Items = append(b.Items, it)
}

// addMessages adds a Ready's messages. Of several heartbeats to one peer in
// one Ready (a woken leader ages its clock by many ticks at once) only the
// last is kept: dropping a heartbeat is a message loss, which raft
// tolerates, and the last carries the latest tick and read round.
func (o *outbox) addMessages(g GroupID, msgs []raftpb.Message) {
	for i := range msgs {
		m := &msgs[i]
		if m.To == o.from || (m.Type == raftpb.MsgHeartbeat && laterHeartbeat(msgs[i+1:], m.To)) {
			continue
		}
		o.add(m.To, Item{Group: g, Kind: KindRaft, Msg: *m})
	}
}

func laterHeartbeat(msgs []raftpb.Message, to uint64) bool {
	for i := range msgs {
		if msgs[i].Type == raftpb.MsgHeartbeat && msgs[i].To == to {
			return true
		}
	}
	return false
}

// send hands every batch to the transport, in the order hosts first
// appeared (deterministic).
func (o *outbox) send(h *Host) {
	for _, to := range o.order {
		b := o.batches[to]
		h.stats.batchesOut.Add(1)
		h.stats.itemsOut.Add(uint64(len(b.Items)))
		h.cfg.Transport.Send(to, *b)
	}
}
