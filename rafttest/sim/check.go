package sim

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// entryRec identifies an entry's contents: its term and a hash of its
// type and payload.
type entryRec struct {
	term uint64
	hash uint64
}

// logRec is what log matching pins for an (index, term): the payload and
// the term of the entry before it (0 if unknown).
type logRec struct {
	hash     uint64
	prevTerm uint64
}

// leaderView is how far the checks have followed a leader in its term:
// its commit index, and the part of it its storage holds.
type leaderView struct {
	term, commit, stored uint64
}

// checker holds the history the invariants are checked against. It sees
// the cluster from outside (Status, storage, disks, the wire), as an
// application would.
type checker struct {
	leaders   map[uint64]uint64 // term -> leader
	lastLead  map[uint64]leaderView
	committed map[uint64]entryRec  // index -> the entry committed there
	logs      map[[2]uint64]logRec // (index, term) -> what it pins
	votes     map[[2]uint64]uint64 // (voter, term) -> candidate granted
	commitCfg *tracker.Config      // configuration of the latest commit
	commitAt  uint64               // and its index
	maxCommit uint64               // highest index known committed
	states    map[uint64]stateRec  // index -> the application state there
	// leaderSeq lists the terms' leaders in the order they were first
	// seen; termCommit is the step at which a (node, term)'s leader first
	// committed an entry of its term (see lease.go).
	leaderSeq  []leaderSeen
	termCommit map[[2]uint64]int
}

// stateRec is the application state some node had after applying an
// index: a hash of its snapshot data, and the node.
type stateRec struct {
	hash uint64
	node uint64
}

func (c *checker) init() {
	c.leaders = map[uint64]uint64{}
	c.lastLead = map[uint64]leaderView{}
	c.committed = map[uint64]entryRec{}
	c.logs = map[[2]uint64]logRec{}
	c.votes = map[[2]uint64]uint64{}
	c.states = map[uint64]stateRec{}
	c.termCommit = map[[2]uint64]int{}
}

func entryHash(e *pb.Entry) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte{byte(e.Type)})
	_, _ = h.Write(e.Data)
	return h.Sum64()
}

// noteWritten checks log matching on entries written to n's storage: an
// (index, term) always carries the same payload and follows the same
// term, so by induction logs that share an entry share everything before.
func (s *Sim) noteWritten(n *node, ents []pb.Entry) {
	for i := range ents {
		e := &ents[i]
		var prev uint64
		if i > 0 {
			prev = ents[i-1].Term
		} else if t, err := n.store.Term(e.Index - 1); err == nil {
			prev = t
		}
		rec := logRec{hash: entryHash(e), prevTerm: prev}
		key := [2]uint64{e.Index, e.Term}
		old, seen := s.check.logs[key]
		if !seen {
			s.check.logs[key] = rec
			continue
		}
		if old.hash != rec.hash || (old.prevTerm != 0 && rec.prevTerm != 0 && old.prevTerm != rec.prevTerm) {
			s.fail("log matching", "node %d wrote entry %d/%d that differs from another log's (payload or previous term %d vs %d)",
				n.id, e.Term, e.Index, rec.prevTerm, old.prevTerm)
			return
		}
	}
}

// noteApplied checks state machine safety: every node applies the same
// entry at each index.
func (s *Sim) noteApplied(n *node, e *pb.Entry) {
	s.noteCommitted(n.id, e.Index, entryRec{term: e.Term, hash: entryHash(e)}, "applied")
}

func (s *Sim) noteCommitted(id, index uint64, rec entryRec, how string) {
	old, seen := s.check.committed[index]
	if !seen {
		s.check.committed[index] = rec
		s.check.maxCommit = max(s.check.maxCommit, index)
		return
	}
	if old.term != rec.term || (rec.hash != 0 && old.hash != 0 && old.hash != rec.hash) {
		s.fail("state machine safety", "node %d %s entry %d/%d, but %d/%d was committed there",
			id, how, rec.term, index, old.term, index)
	}
	if old.hash == 0 {
		s.check.committed[index] = rec
	}
}

// noteState extends state machine safety from entries to the application
// state: nodes that applied the same entries up to index must hold the
// same state there. It compares the snapshots nodes take when they compact
// (so StateMachine.Snapshot must encode equal states as equal bytes), and
// catches a state machine that is not deterministic, or whose Restore
// loses or invents state, even when no client happens to observe it.
func (s *Sim) noteState(n *node, index uint64, data []byte) {
	h := fnv.New64a()
	_, _ = h.Write(data)
	rec := stateRec{hash: h.Sum64(), node: n.id}
	old, seen := s.check.states[index]
	if !seen {
		s.check.states[index] = rec
		return
	}
	if old.hash != rec.hash {
		s.fail("state machine safety", "node %d's state after applying index %d differs from node %d's there (snapshot hashes %x and %x)",
			n.id, index, old.node, rec.hash, old.hash)
	}
}

// noteSent checks vote durability on every vote that leaves a node: one
// grant per voter and term, whatever crashes happen in between.
func (s *Sim) noteSent(m pb.Message) {
	if m.Type != pb.MsgVoteResp || m.Reject {
		return
	}
	key := [2]uint64{m.From, m.Term}
	if prev, ok := s.check.votes[key]; ok && prev != m.To {
		s.fail("vote durability", "node %d granted its term-%d vote to %d and then to %d", m.From, m.Term, prev, m.To)
		return
	}
	s.check.votes[key] = m.To
}

// afterStep checks the invariants that look at the whole cluster.
func (c *checker) afterStep(s *Sim) {
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up || s.violation != nil {
			continue
		}
		bs := n.rn.BasicStatus()
		if bs.RaftState != raft.StateLeader {
			continue
		}
		if other, ok := c.leaders[bs.Term]; ok && other != id {
			s.fail("election safety", "nodes %d and %d both lead term %d", other, id, bs.Term)
			return
		}
		if _, ok := c.leaders[bs.Term]; !ok {
			c.leaders[bs.Term] = id
			c.leaderSeq = append(c.leaderSeq, leaderSeen{term: bs.Term, step: s.step, id: id})
			s.stats.Leaders++
			s.event("node %d leads term %d", id, bs.Term)
		}
		s.noteLeaderTerm(n, bs.Term, bs.Commit)
		last := c.lastLead[id]
		if last.term != bs.Term {
			// The commit index a leader starts with was counted by its
			// predecessors, under their configurations.
			last = leaderView{term: bs.Term, commit: bs.Commit}
		}
		if bs.Commit > last.commit {
			c.leaderCommitted(s, n, bs.Commit)
			last.commit = bs.Commit
		}
		// A leader may count an entry committed before it has stored the
		// entry itself (the followers' acknowledgements suffice), so
		// completeness follows its storage.
		stored, _ := n.store.LastIndex()
		if upto := min(bs.Commit, stored); upto > last.stored {
			c.leaderComplete(s, n, last.stored, upto, bs.Term)
			last.stored = upto
		}
		c.lastLead[id] = last
	}
}

// leaderComplete checks that the leader's log holds every committed entry
// in (checked, upto]; on the first check of its term that covers all its
// storage holds, so every entry committed before the term.
func (c *checker) leaderComplete(s *Sim, n *node, checked, upto, leadTerm uint64) {
	first, _ := n.store.FirstIndex()
	for i := max(checked+1, first); i <= upto; i++ {
		t, err := n.store.Term(i)
		if err != nil {
			s.fail("leader completeness", "leader %d of term %d counts %d committed but its storage lacks entry %d: %v",
				n.id, leadTerm, upto, i, err)
			return
		}
		s.noteCommitted(n.id, i, entryRec{term: t}, fmt.Sprintf("as leader of term %d committed", leadTerm))
	}
}

// leaderCommitted checks a leader's new commit index: the entry is on the
// disks of a quorum of the configuration that counted it (the leader's
// current one: a configuration changes only when applied, and raft
// recounts right then), and that configuration's quorums meet those of
// the configuration behind the previous commit.
func (c *checker) leaderCommitted(s *Sim, n *node, commit uint64) {
	cfg := n.rn.Status().Config
	if !durableOnQuorum(s, cfg.Voters, commit) {
		s.fail("committed entries durable on a quorum", "leader %d committed %d, but no quorum of %s holds one entry there on disk (%s)",
			n.id, commit, cfg.Voters, diskTerms(s, cfg.Voters, commit))
		return
	}
	if c.commitCfg != nil && c.commitCfg.Voters.String() != cfg.Voters.String() {
		if a, b, ok := disjointQuorums(c.commitCfg.Voters, cfg.Voters); ok {
			s.fail("configuration safety", "commits by %s and then %s: quorums %v and %v are disjoint",
				c.commitCfg.Voters, cfg.Voters, a, b)
			return
		}
	}
	c.commitCfg = &cfg
	c.commitAt = commit
}

// durableOnQuorum reports whether a quorum of voters holds the same entry
// at index on disk (a snapshot at or past index holds whatever was
// committed there).
func durableOnQuorum(s *Sim, voters quorum.JointConfig, index uint64) bool {
	terms := map[uint64]bool{}
	for id := range voters.IDs() {
		if m := s.nodes[id]; m != nil {
			if t, ok := m.disk.term(index); ok && index > m.disk.snap.Metadata.Index {
				terms[t] = true
			}
		}
	}
	terms[0] = true // only snapshots
	for t := range terms {
		votes := map[uint64]bool{}
		for id := range voters.IDs() {
			m := s.nodes[id]
			votes[id] = m != nil && (index <= m.disk.snap.Metadata.Index || t != 0 && m.disk.holds(index, t))
		}
		if voters.VoteResult(votes) == quorum.VoteWon {
			return true
		}
	}
	return false
}

func diskTerms(s *Sim, voters quorum.JointConfig, index uint64) string {
	var ids []uint64
	for id := range voters.IDs() {
		ids = append(ids, id)
	}
	sortIDs(ids)
	var b strings.Builder
	for _, id := range ids {
		m := s.nodes[id]
		switch {
		case m == nil:
			fmt.Fprintf(&b, " %d:none", id)
		case index <= m.disk.snap.Metadata.Index:
			fmt.Fprintf(&b, " %d:snap", id)
		default:
			t, _ := m.disk.term(index)
			fmt.Fprintf(&b, " %d:t%d", id, t)
		}
	}
	return strings.TrimSpace(b.String())
}

// afterRestart checks that the crash lost no committed entry: the latest
// one is still on a quorum of the configuration that committed it.
func (c *checker) afterRestart(s *Sim, _ *node) {
	if c.commitCfg != nil && !durableOnQuorum(s, c.commitCfg.Voters, c.commitAt) {
		s.fail("committed entry never lost", "entry %d is on the disks of no quorum of %s (%s)",
			c.commitAt, c.commitCfg.Voters, diskTerms(s, c.commitCfg.Voters, c.commitAt))
	}
}

func holders(votes map[uint64]bool) []uint64 {
	var out []uint64
	for id, ok := range votes {
		if ok {
			out = append(out, id)
		}
	}
	sortIDs(out)
	return out
}

// disjointQuorums looks for a quorum of a and a quorum of b with no member
// in common, by trying every subset of the members (configurations have
// at most a dozen).
func disjointQuorums(a, b quorum.JointConfig) ([]uint64, []uint64, bool) {
	var ids []uint64
	for id := range a.IDs() {
		ids = append(ids, id)
	}
	for id := range b.IDs() {
		if _, ok := a.IDs()[id]; !ok {
			ids = append(ids, id)
		}
	}
	sortIDs(ids)
	for mask := 0; mask < 1<<len(ids); mask++ {
		in, out := map[uint64]bool{}, map[uint64]bool{}
		for i, id := range ids {
			in[id] = mask&(1<<i) != 0
			out[id] = !in[id]
		}
		if a.VoteResult(in) == quorum.VoteWon && b.VoteResult(out) == quorum.VoteWon {
			return holders(in), holders(out), true
		}
	}
	return nil, nil, false
}
