package sim

import (
	"bytes"
	"fmt"
	"time"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// checkTimeout bounds porcupine's search; with a model partitioned by key,
// or a small state, it normally takes milliseconds.
const checkTimeout = 60 * time.Second

// A client issues one operation at a time and waits for its answer,
// retrying at another node now and then, and gives up after a deadline.
type client struct {
	id  int
	seq uint64
	op  *clientOp
}

const (
	retryTicks    = 2 * electionTick
	deadlineTicks = 8 * electionTick
)

// clientOp is one operation in flight.
type clientOp struct {
	client *client
	id     uint64
	call   Call
	read   bool
	data   []byte // a write's proposal payload
	called int    // step of invocation
	start  int    // tick of invocation
	retry  int    // tick of the next retry
	node   uint64
	readID uint64 // current ReadIndex request, for reads
	// Outcome.
	done      bool
	unknown   bool
	appliedAt uint64
}

// clientStep lets an idle client start an operation the workload draws.
func (s *Sim) clientStep() {
	var idle []*client
	for _, c := range s.clients {
		if c.op == nil && c.id != 0 {
			idle = append(idle, c)
		}
	}
	if len(idle) == 0 || s.healing {
		return
	}
	c := idle[s.rng.Intn(len(idle))]
	op := s.invoke(c, s.workload.Next(s.rng, ClientState{ID: c.id, Seq: c.seq + 1, Clients: len(s.clients)}))
	s.submit(op)
}

// invoke starts an operation of c (submitted by the caller, or right
// away for the liveness marker).
func (s *Sim) invoke(c *client, o Op) *clientOp {
	c.seq++
	s.nextOp++
	op := &clientOp{
		client: c,
		id:     s.nextOp,
		call:   Call{Client: c.id, Seq: c.seq, Input: o.Input},
		read:   o.Read,
		called: s.step,
		start:  s.ticks,
	}
	if !op.read {
		op.data = s.workload.Encode(op.call)
	}
	c.op = op
	if c.id == 0 {
		s.submit(op)
	}
	return op
}

// submit sends op to a node: usually the leader, sometimes any node (which
// forwards).
func (s *Sim) submit(op *clientOp) {
	op.retry = s.ticks + retryTicks
	target := s.leader()
	if target == 0 || s.rng.Intn(4) == 0 {
		target = s.ids[s.rng.Intn(len(s.ids))]
	}
	op.node = target
	n := s.nodes[target]
	if !n.up {
		return
	}
	if op.read {
		s.nextOp++
		op.readID = s.nextOp
		n.reads = append(n.reads, &pendingRead{op: op, readID: op.readID})
		s.noteReadArrival(n, readCtx(op.readID))
		n.rn.ReadIndex(readCtx(op.readID))
		s.event("client %d %v at node %d (read %d)", op.client.id, op.call.Input, target, op.readID)
		return
	}
	err := n.rn.Propose(op.data)
	s.event("client %d %v seq %d at node %d: %v", op.client.id, op.call.Input, op.call.Seq, target, err)
}

// noteReadStates matches ReadStates with the reads waiting at n.
func (s *Sim) noteReadStates(n *node, rss []raft.ReadState) {
	for _, rs := range rss {
		for _, r := range n.reads {
			if r.index == 0 && bytes.Equal(rs.RequestCtx, readCtx(r.readID)) {
				r.index = rs.Index
				s.event("node %d read %d at index %d", n.id, r.readID, rs.Index)
			}
		}
	}
	s.serveReads(n)
}

// serveReads answers the reads whose index the state machine has reached.
func (s *Sim) serveReads(n *node) {
	kept := n.reads[:0]
	for _, r := range n.reads {
		op := r.op
		switch {
		case op.done || op.readID != r.readID:
			// Answered elsewhere, or superseded by a retry.
		case r.index != 0 && n.rep.applied >= r.index:
			s.respond(op, n.rep.sm.Read(op.call.Input))
		default:
			kept = append(kept, r)
		}
	}
	n.reads = kept
}

// applyWrite folds a committed normal entry into n's state machine,
// records its first effect, and answers the client waiting at n.
func (s *Sim) applyWrite(n *node, e *pb.Entry) {
	if len(e.Data) == 0 {
		n.rep.applied = e.Index // a new leader's empty entry
		return
	}
	c, err := s.workload.Decode(e.Data)
	if err != nil {
		s.fail("entry decoding", "node %d: entry %d/%d: %v", n.id, e.Term, e.Index, err)
		return
	}
	out, took := n.rep.apply(e.Index, c)
	key := [2]uint64{uint64(c.Client), c.Seq}
	if took {
		if _, ok := s.effects[key]; !ok {
			s.effects[key] = effect{step: s.step, out: out}
		}
	} else {
		// A duplicate: its client is told what the write did when it
		// took effect, as a session table that remembers answers would.
		out = s.effects[key].out
	}
	s.answerWrite(n, c, out)
}

// answerWrite answers the client of a write applied at the node the
// client is waiting on.
func (s *Sim) answerWrite(n *node, c Call, out interface{}) {
	for _, cl := range s.clients {
		op := cl.op
		if cl.id != c.Client || op == nil || op.call.Seq != c.Seq || op.done {
			continue
		}
		if op.node == n.id {
			op.appliedAt = n.rep.applied
			s.respond(op, out)
		}
	}
}

// respond completes op with an answer and records it in the history.
func (s *Sim) respond(op *clientOp, out interface{}) {
	op.done = true
	op.client.op = nil
	if op.read {
		s.stats.Reads++
	} else {
		s.stats.Writes++
	}
	s.stats.Operations++
	s.hist.add(op.client.id, op.call.Input, int64(op.called), int64(s.step), out)
	s.event("client %d %v answered %v", op.client.id, op.call.Input, out)
}

// giveUp ends op without an answer.
func (s *Sim) giveUp(op *clientOp) {
	op.done, op.unknown = true, true
	op.client.op = nil
	if !op.read {
		// A write that timed out may still take effect later; what
		// happened to it is settled at the end of the run.
		s.stats.Unanswered++
		s.abandoned = append(s.abandoned, op)
	}
	s.event("client %d gives up on %v seq %d", op.client.id, op.call.Input, op.call.Seq)
}

// clientTimeouts retries or abandons operations that wait too long.
func (s *Sim) clientTimeouts() {
	for _, c := range s.clients {
		op := c.op
		if op == nil {
			continue
		}
		switch {
		case s.ticks-op.start >= deadlineTicks && c.id != 0:
			s.giveUp(op)
		case s.ticks-op.start >= 3*deadlineTicks:
			s.giveUp(op)
		case s.ticks >= op.retry:
			s.submit(op)
		}
	}
}

// finishClients abandons what is still in flight at the end, and puts the
// abandoned writes into the history as what they turned out to be. The
// simulator sees every node apply every entry, so it knows whether such a
// write ever took effect, when it first did, and with what result: it
// enters the history as answered at that step (its linearization point
// cannot be later), or not at all if it never took effect. Left as
// "unknown, may happen any time", they would make the checker's search
// explode.
func (s *Sim) finishClients() {
	for _, c := range s.clients {
		if c.op != nil {
			s.giveUp(c.op)
		}
	}
	for _, op := range s.abandoned {
		if e, ok := s.effects[[2]uint64{uint64(op.client.id), op.call.Seq}]; ok {
			s.hist.add(op.client.id, op.call.Input, int64(op.called), int64(e.step), e.out)
		}
	}
}

// effect is the first application of a write on any node: when, and its
// output.
type effect struct {
	step int
	out  interface{}
}

// adminStep changes the cluster: a configuration change or a leadership
// transfer, through the current leader.
func (s *Sim) adminStep() {
	lead := s.leader()
	if lead == 0 {
		return
	}
	n := s.nodes[lead]
	st := n.rn.Status()
	voters := st.Config.Voters.IDs()
	var learners []uint64
	for id := range st.Config.Learners {
		learners = append(learners, id)
	}
	sortIDs(learners)
	var vs []uint64
	for id := range voters {
		vs = append(vs, id)
	}
	sortIDs(vs)
	joint := len(st.Config.Voters[1]) > 0
	choice := s.rng.Intn(7)
	if joint {
		s.proposeConf(n, pb.ConfChangeV2{}, "leave joint")
		return
	}
	other := vs[s.rng.Intn(len(vs))]
	switch choice {
	case 0, 1:
		if other != lead {
			n.rn.TransferLeader(other)
			s.stats.Transfers++
			s.event("transfer leadership %d -> %d", lead, other)
		}
	case 2:
		if s.live() < s.stats.Nodes+2 {
			id := s.nextID
			s.nextID++
			s.addNode(&node{id: id})
			s.proposeConf(n, pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: id}, fmt.Sprintf("add learner %d", id))
		}
	case 3:
		if len(learners) > 0 {
			id := learners[s.rng.Intn(len(learners))]
			s.proposeConf(n, simpleV2(pb.ConfChangeAddNode, id), fmt.Sprintf("promote %d", id))
		}
	case 4:
		if len(vs) > 3 {
			s.proposeConf(n, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: other}, fmt.Sprintf("remove voter %d", other))
		}
	case 5:
		if len(learners) > 0 {
			id := learners[s.rng.Intn(len(learners))]
			s.proposeConf(n, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: id}, fmt.Sprintf("remove learner %d", id))
		}
	case 6:
		// Replace a voter (often the leader itself) with a learner, in one
		// joint change.
		if len(learners) > 0 {
			in := learners[s.rng.Intn(len(learners))]
			out := other
			if s.rng.Intn(2) == 0 {
				out = lead
			}
			tr := pb.ConfChangeTransitionAuto
			if s.rng.Intn(2) == 0 {
				tr = pb.ConfChangeTransitionJointExplicit
			}
			cc := pb.ConfChangeV2{Transition: tr, Changes: []pb.ConfChangeSingle{
				{Type: pb.ConfChangeAddNode, NodeID: in},
				{Type: pb.ConfChangeRemoveNode, NodeID: out},
			}}
			s.proposeConf(n, cc, fmt.Sprintf("replace %d with %d (joint, %s)", out, in, tr))
		}
	}
}

// leaveJointIfNeeded proposes leaving an explicit joint configuration
// while the cluster heals, as an operator would.
func (s *Sim) leaveJointIfNeeded() {
	lead := s.leader()
	if lead == 0 || !s.chance(0.01) {
		return
	}
	n := s.nodes[lead]
	if cfg := n.rn.Status().Config; len(cfg.Voters[1]) > 0 && !cfg.AutoLeave {
		s.proposeConf(n, pb.ConfChangeV2{}, "leave joint")
	}
}

func simpleV2(t pb.ConfChangeType, id uint64) pb.ConfChangeV2 {
	return pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: t, NodeID: id}}}
}

func (s *Sim) proposeConf(n *node, cc pb.ConfChangeI, what string) {
	err := n.rn.ProposeConfChange(cc)
	s.event("propose conf change at %d: %s: %v", n.id, what, err)
}

// live counts the nodes not retired.
func (s *Sim) live() int {
	k := 0
	for _, id := range s.ids {
		if !s.nodes[id].retired {
			k++
		}
	}
	return k
}

func sortIDs(ids []uint64) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}
