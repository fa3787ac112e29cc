package sim

import (
	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// envelope is a message in flight, deliverable from tick at on.
type envelope struct {
	m  pb.Message
	at int
}

// network holds every message in flight. Partitions are a set of blocked
// directed links; a symmetric partition blocks both directions.
type network struct {
	inflight []envelope
	blocked  map[[2]uint64]bool
}

func (nw *network) cut(from, to uint64) { nw.blocked[[2]uint64{from, to}] = true }

func (nw *network) heal() { nw.blocked = map[[2]uint64]bool{} }

func (nw *network) isBlocked(from, to uint64) bool { return nw.blocked[[2]uint64{from, to}] }

// send puts m on the wire, subject to the faults in force: it may be
// dropped, duplicated or delayed (a delay also reorders it).
func (s *Sim) send(m pb.Message) {
	s.noteSent(m)
	if s.net.isBlocked(m.From, m.To) {
		s.stats.Faults["partitioned"]++
		s.reportSnapshot(m, raft.SnapshotFailure)
		return
	}
	if s.chance(s.faults.drop) {
		s.stats.Faults["drop"]++
		s.event("drop %s", describe(m))
		s.reportSnapshot(m, raft.SnapshotFailure)
		return
	}
	copies := 1
	if s.chance(s.faults.dup) {
		s.stats.Faults["duplicate"]++
		copies = 2
	}
	for i := 0; i < copies; i++ {
		at := s.ticks
		if s.chance(s.faults.delay) {
			s.stats.Faults["delay"]++
			at += 1 + s.rng.Intn(2*electionTick)
		}
		s.net.inflight = append(s.net.inflight, envelope{m: m, at: at})
	}
}

// deliverable returns the indexes of the messages that may be delivered
// now.
func (s *Sim) deliverable() []int {
	s.scratch = s.scratch[:0]
	for i, e := range s.net.inflight {
		if e.at <= s.ticks {
			s.scratch = append(s.scratch, i)
		}
	}
	return s.scratch
}

// deliverOne delivers a message in flight: the oldest one, or with
// reordering in force, any deliverable one.
func (s *Sim) deliverOne(ready []int) {
	pick := ready[0]
	if s.chance(s.faults.reorder) {
		pick = ready[s.rng.Intn(len(ready))]
		if pick != ready[0] {
			s.stats.Faults["reorder"]++
		}
	}
	env := s.net.inflight[pick]
	s.net.inflight = append(s.net.inflight[:pick], s.net.inflight[pick+1:]...)
	m := env.m
	n, ok := s.nodes[m.To]
	if !ok || !n.up {
		s.reportSnapshot(m, raft.SnapshotFailure)
		return
	}
	if s.net.isBlocked(m.From, m.To) {
		// A partition that formed while the message was in flight.
		s.stats.Faults["partitioned"]++
		s.reportSnapshot(m, raft.SnapshotFailure)
		return
	}
	s.event("deliver %s", describe(m))
	if m.Type == pb.MsgReadIndex && len(m.Entries) == 1 {
		s.noteReadArrival(n, m.Entries[0].Data)
	}
	if err := n.rn.Step(m); err != nil {
		s.event("node %d step %s: %v", n.id, m.Type, err)
	}
	s.reportSnapshot(m, raft.SnapshotFinish)
}

// reportSnapshot tells the sender of a snapshot how its transfer ended, as
// the Ready contract asks; without it the leader would wait forever.
func (s *Sim) reportSnapshot(m pb.Message, status raft.SnapshotStatus) {
	if m.Type != pb.MsgSnap {
		return
	}
	if n, ok := s.nodes[m.From]; ok && n.up {
		n.rn.ReportSnapshot(m.To, status)
	}
}
