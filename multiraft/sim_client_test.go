package multiraft

import (
	"fmt"

	"github.com/anishathalye/porcupine"

	"github.com/raftkit/raft"
)

// tick advances porcupine's clock by one event.
func (s *sim) tick() int64 {
	s.step++
	return s.step
}

// invokeOps starts an operation for each idle client whose pause is over
// (only in the faulty phase): a write through the log or a read through
// ReadIndex, at the group's leader or, sometimes, any live host.
func (s *sim) invokeOps() {
	if !s.faulty() {
		return
	}
	for _, c := range s.clients {
		if c.op != nil || s.now < c.nextAt {
			continue
		}
		sh := s.pickHost(c.group)
		if sh == nil {
			continue
		}
		s.nextOp++
		op := &simOp{client: c, id: fmt.Sprintf("op%d", s.nextOp), host: sh.id, call: s.tick(), deadline: s.now + 30}
		c.op = op
		if s.rng.Intn(2) == 0 {
			op.write, op.value = true, s.nextOp
			_ = sh.h.Propose(c.group, encodeWrite(op.id, op.value))
		} else {
			_ = sh.h.ReadIndex(c.group, []byte(op.id))
		}
		s.mix(uint64(c.id), uint64(sh.id), uint64(s.nextOp))
	}
}

func (s *sim) pickHost(g GroupID) *simHost {
	var live []*simHost
	for _, sh := range s.hosts {
		if sh.down || !s.isMember(sh, g) {
			continue
		}
		live = append(live, sh)
		if st, err := sh.h.Status(g); err == nil && st.RaftState == raft.StateLeader && s.rng.Intn(10) < 7 {
			return sh
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[s.rng.Intn(len(live))]
}

func (s *sim) pendingOp(id string) *simOp {
	for _, c := range s.clients {
		if c.op != nil && c.op.id == id {
			return c.op
		}
	}
	return nil
}

func (s *sim) pendingOps() []*simOp {
	var out []*simOp
	for _, c := range s.clients {
		if c.op != nil {
			out = append(out, c.op)
		}
	}
	return out
}

// respond completes op with output (a read's value; nil for a write).
func (s *sim) respond(op *simOp, output interface{}) {
	c := op.client
	s.history[c.group] = append(s.history[c.group], porcupine.Operation{ClientId: c.id,
		Input: regInput{write: op.write, value: op.value}, Call: op.call, Output: output, Return: s.tick()})
	c.op = nil
	c.nextAt = s.now + int64(s.rng.Intn(40))
}

// serveReads answers the reads at host whose read index it applied.
func (s *sim) serveReads(host HostID) {
	app := s.hosts[host-1].app
	for _, op := range s.pendingOps() {
		if op.write || op.host != host || op.readIndex == 0 {
			continue
		}
		if r := app.regs[op.client.group]; r != nil && r.applied >= op.readIndex {
			s.respond(op, r.value)
		}
	}
}

// expiredWrite is a write whose client gave up on it (expireOps).
type expiredWrite struct {
	id    string
	group GroupID
	op    porcupine.Operation
}

// resolveExpired completes the writes the clients gave up on, once the
// run is over (healed, every committed entry applied): a write applied
// somewhere returns at its first apply, a bound on when it took effect
// (its commit came before, and no read can see its value before a host
// applied it); a write never applied took no effect, and values are
// unique, so no read saw it: it leaves the history. Returning at the end
// of time instead made each such write concurrent with everything after
// it, and the checker timed out on runs where a group lost its quorum
// for a long spell (seed 276 with membership changes: 100 rounds of two
// voters, one of them cut off).
func (s *sim) resolveExpired() {
	for _, w := range s.expired {
		at, ok := s.firstApply[w.id]
		if !ok {
			continue
		}
		w.op.Return = at
		s.history[w.group] = append(s.history[w.group], w.op)
	}
	s.expired = nil
}

// expireOps gives up on operations past their deadline: a write may still
// take effect later (resolveExpired completes it at the end of the run); a
// read that never answered is dropped from the history.
func (s *sim) expireOps() {
	for _, op := range s.pendingOps() {
		if s.now <= op.deadline {
			continue
		}
		c := op.client
		if op.write {
			s.expired = append(s.expired, expiredWrite{id: op.id, group: c.group, op: porcupine.Operation{
				ClientId: c.id, Input: regInput{write: true, value: op.value}, Call: op.call}})
		}
		c.op = nil
		c.nextAt = s.now + int64(s.rng.Intn(40))
	}
}
