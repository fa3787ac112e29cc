package multiraft

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// run plays the faulty phase, heals, and requires recovery.
func (s *sim) run() {
	for s.now < int64(s.o.rounds) {
		s.faults()
		s.round()
	}
	s.heal()
	s.recover()
	s.checkLogs()
	start := time.Now()
	s.checkHistory()
	if d := time.Since(start); d > 100*time.Millisecond {
		s.t.Logf("seed %d: linearizability check took %v", s.o.seed, d)
	}
}

// round is one tick of every live host (in random order), then the
// delivery of what is due and the processing it causes, until quiet.
func (s *sim) round() {
	s.now++
	s.invokeOps()
	s.compactions()
	if s.faulty() {
		s.memberChange()
	}
	for _, i := range s.rng.Perm(len(s.hosts)) {
		if sh := s.hosts[i]; !sh.down {
			sh.h.Tick()
		}
	}
	for iter := 0; ; iter++ {
		if iter > 100000 {
			s.t.Fatalf("seed %d: round %d does not settle", s.o.seed, s.now)
		}
		busy := s.runHosts()
		if !s.deliverDue() && !busy {
			break
		}
	}
	s.checkLeaders()
	s.expireOps()
}

func (s *sim) runHosts() bool {
	busy := false
	for _, i := range s.rng.Perm(len(s.hosts)) {
		sh := s.hosts[i]
		if sh.down || (sh.h.sched.pending() == 0 && (sh.h.saver == nil || !sh.h.saver.pending())) {
			continue
		}
		busy = true
		if err := sh.h.RunPending(); err != nil {
			s.t.Fatalf("seed %d: host %d: %v", s.o.seed, sh.id, err)
		}
	}
	return busy
}

// deliverDue delivers one random due message; it reports whether it did.
func (s *sim) deliverDue() bool {
	var due []int
	for i, m := range s.msgs {
		if m.at <= s.now {
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return false
	}
	i := due[s.rng.Intn(len(due))]
	m := s.msgs[i]
	s.msgs = append(s.msgs[:i], s.msgs[i+1:]...)
	if m.snap != 0 {
		s.deliverStream(m)
		return true
	}
	sh := s.hosts[m.to-1]
	if sh.down || s.cut[m.to] || s.cut[m.from] {
		return true
	}
	b, err := DecodeBatch(m.data)
	if err != nil {
		s.t.Fatal(err)
	}
	h := fnv.New64a()
	_, _ = h.Write(m.data)
	s.mix(m.from, m.to, h.Sum64())
	sh.h.Receive(b)
	return true
}

// faults strikes at random: isolating a host or healing it, crashing a
// host (at most one down at a time) and restarting it later.
func (s *sim) faults() {
	r := s.rng.Intn(1000)
	switch {
	case r < 10:
		id := HostID(1 + s.rng.Intn(len(s.hosts)))
		s.cut[id] = true
		for _, sh := range s.hosts {
			if sh.id != id {
				s.reportLost(sh, id)
				s.reportLost(s.hosts[id-1], sh.id)
			}
		}
	case r < 25:
		clear(s.cut)
	case r < 32 && s.downCount() == 0:
		s.crash(s.hosts[s.rng.Intn(len(s.hosts))])
	}
	for _, sh := range s.hosts {
		if sh.down && s.now >= sh.restartAt {
			s.startHost(sh)
		}
	}
}

func (s *sim) downCount() int {
	n := 0
	for _, sh := range s.hosts {
		if sh.down {
			n++
		}
	}
	return n
}

// crash stops a host: what it did not save is gone, and so is what was in
// flight to it. A snapshot stream to it fails, and its sender hears so, as
// a NetTransport's sender does when the connection breaks: a leader that
// never heard the outcome would keep the member waiting for that snapshot
// forever (seeds 82 and 200 found the harness losing it).
func (s *sim) crash(sh *simHost) {
	_ = sh.h.Close()
	sh.down = true
	sh.restartAt = s.now + 10 + int64(s.rng.Intn(30))
	kept := s.msgs[:0]
	for _, m := range s.msgs {
		switch {
		case m.to != sh.id:
			kept = append(kept, m)
		case m.snap != 0 && !s.hosts[m.from-1].down:
			s.streamsFailed++
			s.hosts[m.from-1].h.ReportSnapshot(m.snap, m.to, raft.SnapshotFailure)
		}
	}
	s.msgs = kept
	s.mix(0xdead, sh.id)
	for _, other := range s.hosts {
		s.reportLost(other, sh.id)
	}
}

// reportLost tells sh, if it is up, that its streams to peer broke, as a
// NetTransport does (fast-failover runs only: the other runs keep their
// schedules).
func (s *sim) reportLost(sh *simHost, peer HostID) {
	if s.o.fastFailover && !sh.down && sh.id != peer {
		sh.h.PeerUnreachable(peer)
	}
}

func (s *sim) heal() {
	clear(s.cut)
	for _, sh := range s.hosts {
		if sh.down {
			s.startHost(sh)
		}
	}
}

// checkLeaders: at most one leader per term in each group.
func (s *sim) checkLeaders() {
	for _, sh := range s.hosts {
		if sh.down {
			continue
		}
		for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
			st, err := sh.h.Status(g)
			if err != nil || st.RaftState != raft.StateLeader {
				continue
			}
			terms := s.leaders[g]
			if terms == nil {
				terms = map[uint64]HostID{}
				s.leaders[g] = terms
			}
			if prev, ok := terms[st.Term]; ok && prev != sh.id {
				s.t.Fatalf("seed %d: group %d has two leaders in term %d: %d and %d", s.o.seed, g, st.Term, prev, sh.id)
			}
			terms[st.Term] = sh.id
		}
	}
}

// Apply implements Application: it applies writes to the group's register
// once per operation ID, checks that this index holds the same entry on
// every host, and answers the operations this host was asked.
func (a *simApp) Apply(g GroupID, ents []raftpb.Entry) {
	s := a.s
	reg := a.reg(g)
	for _, e := range ents {
		s.noteApplied(a.host, g, &e)
		s.noteConfChange(g, &e)
		reg.confChanged = reg.confChanged || s.o.membership && e.Type == raftpb.EntryConfChange
		reg.applied = e.Index
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		id, value := decodeWrite(e.Data)
		if _, ok := s.firstApply[id]; !ok {
			s.firstApply[id] = s.tick()
		}
		if !reg.seen[id] {
			reg.seen[id] = true
			reg.value = value
		}
		if op := s.pendingOp(id); op != nil && op.host == a.host {
			s.respond(op, nil)
		}
	}
	s.serveReads(a.host)
}

func (a *simApp) reg(g GroupID) *simReg {
	r := a.regs[g]
	if r == nil {
		r = &simReg{seen: map[string]bool{}}
		a.regs[g] = r
	}
	return r
}

// ReadIndexDone implements Application.
func (a *simApp) ReadIndexDone(g GroupID, rss []raft.ReadState) {
	for _, rs := range rss {
		if op := a.s.pendingOp(string(rs.RequestCtx)); op != nil && op.host == a.host && !op.write {
			op.readIndex = rs.Index
		}
	}
	a.s.serveReads(a.host)
}

// Restore implements Application: the register comes back from the
// snapshot's data (value and the operations seen).
func (a *simApp) Restore(g GroupID, snap raftpb.Snapshot) error {
	reg := a.reg(g)
	parts := strings.Split(string(snap.Data), ",")
	if _, err := fmt.Sscan(parts[0], &reg.value); err != nil {
		return err
	}
	clear(reg.seen)
	for _, id := range parts[1:] {
		reg.seen[id] = true
	}
	reg.applied = snap.Metadata.Index
	a.s.mix(0x5a, uint64(g), snap.Metadata.Index)
	a.s.serveReads(a.host)
	return nil
}

// snapshotData encodes a register for Compact: its value, then the IDs of
// the operations it applied, sorted.
func (r *simReg) snapshotData() []byte {
	ids := make([]string, 0, len(r.seen))
	for id := range r.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return []byte(strings.Join(append([]string{strconv.Itoa(r.value)}, ids...), ","))
}

// compactions makes live hosts compact some groups at their applied index
// now and then, so that lagging members and restarts go through
// snapshots.
func (s *sim) compactions() {
	for _, sh := range s.hosts {
		if sh.down {
			continue
		}
		for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
			if r := sh.app.regs[g]; r != nil && r.applied > 0 && (s.rng.Intn(100) < 2 || r.confChanged) {
				_ = sh.h.Compact(g, r.applied, r.snapshotData())
				r.confChanged = false
			}
		}
	}
}

func (s *sim) noteApplied(host HostID, g GroupID, e *raftpb.Entry) {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d/%d/", e.Term, e.Type)
	_, _ = h.Write(e.Data)
	sum := h.Sum64()
	idx := s.applied[g]
	if idx == nil {
		idx = map[uint64]uint64{}
		s.applied[g] = idx
	}
	if prev, ok := idx[e.Index]; ok && prev != sum {
		s.t.Fatalf("seed %d: group %d: host %d applied another entry at index %d", s.o.seed, g, host, e.Index)
	}
	idx[e.Index] = sum
}

func encodeWrite(id string, v int) []byte { return []byte(fmt.Sprintf("%s|%d", id, v)) }

func decodeWrite(data []byte) (string, int) {
	id, v, _ := strings.Cut(string(data), "|")
	var n int
	_, _ = fmt.Sscan(v, &n)
	return id, n
}

// recover requires, after healing, that every group commits a fresh write
// and then quiesces on every host, within a bounded number of ticks.
func (s *sim) recover() {
	const limit = 400
	written := map[GroupID]bool{}
	for i := 0; i < limit; i++ {
		s.round()
		done := true
		for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
			if !written[g] {
				written[g] = s.finalWrite(g)
			}
			if !s.restoreMembers(g) || !written[g] || !s.quiesced(g) {
				done = false
			}
		}
		if done && len(s.pendingOps()) == 0 {
			return
		}
	}
	for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
		s.t.Logf("group %d: written %v quiesced %v: %s", g, written[g], s.quiesced(g), s.describe(g))
	}
	s.t.Fatalf("seed %d: no recovery within %d ticks of healing", s.o.seed, limit)
}

// finalWrite proposes a write at g's leader until one host applied it.
func (s *sim) finalWrite(g GroupID) bool {
	id := fmt.Sprintf("final-%d", g)
	for _, sh := range s.hosts {
		if r := sh.app.regs[g]; r != nil && r.seen[id] {
			return true
		}
	}
	for _, sh := range s.hosts {
		if st, err := sh.h.Status(g); err == nil && st.RaftState == raft.StateLeader && s.now%5 == 0 {
			s.recordFinalWrite(g)
			_ = sh.h.Propose(g, encodeWrite(id, -1))
		}
	}
	return false
}

// recordFinalWrite puts g's final write (value -1) in g's history, once,
// when it is first proposed, as a write that may take effect at any later
// time: a read invoked during the faulty phase may still be answered
// after the final write applied, and must then be allowed to see -1.
func (s *sim) recordFinalWrite(g GroupID) {
	if s.finalRecorded == nil {
		s.finalRecorded = map[GroupID]bool{}
	}
	if s.finalRecorded[g] {
		return
	}
	s.finalRecorded[g] = true
	s.history[g] = append(s.history[g], porcupine.Operation{ClientId: len(s.clients) + int(g),
		Input: regInput{write: true, value: -1}, Call: s.tick(), Return: 1 << 62})
}

func (s *sim) quiesced(g GroupID) bool {
	for _, sh := range s.hosts {
		if st, err := sh.h.Status(g); err != nil || !st.Quiesced {
			return false
		}
	}
	return true
}

// checkLogs: the durable logs of each group match (an index and term pin
// the entry and all before it).
func (s *sim) checkLogs() {
	for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
		var logs [][]raftpb.Entry
		for _, sh := range s.hosts {
			st, _ := sh.store.Open(g)
			last, _ := st.LastIndex()
			first, _ := st.FirstIndex()
			var ents []raftpb.Entry
			if first <= last {
				var err error
				if ents, err = st.Entries(first, last+1, 1<<62); err != nil {
					s.t.Fatal(err)
				}
			}
			logs = append(logs, ents)
		}
		for i := range logs {
			for j := i + 1; j < len(logs); j++ {
				checkMatching(s, g, logs[i], logs[j])
			}
		}
	}
}

// checkMatching compares two logs (which may start at different indexes
// after compactions) over the indexes both hold: below the highest index
// where their terms agree, every entry must be the same.
func checkMatching(s *sim, g GroupID, a, b []raftpb.Entry) {
	if len(a) == 0 || len(b) == 0 {
		return
	}
	lo := max(a[0].Index, b[0].Index)
	hi := min(a[len(a)-1].Index, b[len(b)-1].Index)
	at := func(l []raftpb.Entry, i uint64) *raftpb.Entry { return &l[i-l[0].Index] }
	match := uint64(0)
	for i := hi; i >= lo && i > 0; i-- {
		if at(a, i).Term == at(b, i).Term {
			match = i
			break
		}
	}
	for i := lo; match > 0 && i <= match; i++ {
		x, y := at(a, i), at(b, i)
		if x.Term != y.Term || string(x.Data) != string(y.Data) {
			s.t.Fatalf("seed %d: group %d: logs differ at index %d below a matching entry at %d",
				s.o.seed, g, i, match)
		}
	}
}

func (s *sim) describe(g GroupID) string {
	out := ""
	for _, sh := range s.hosts {
		st, _ := sh.h.Status(g)
		out += fmt.Sprintf("[%d: %s term %d lead %d commit %d applied %d q=%v] ", sh.id, st.RaftState,
			st.Term, st.Lead, st.Commit, st.Applied, st.Quiesced)
	}
	return out
}

func (s *sim) checkHistory() {
	s.resolveExpired()
	for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
		ops := s.history[g]
		switch porcupine.CheckOperationsTimeout(registerModel, ops, 20*time.Second) {
		case porcupine.Illegal:
			s.t.Fatalf("seed %d: group %d: history of %d operations is not linearizable", s.o.seed, g, len(ops))
		case porcupine.Unknown:
			s.t.Fatalf("seed %d: group %d: linearizability check timed out", s.o.seed, g)
		}
	}
}
