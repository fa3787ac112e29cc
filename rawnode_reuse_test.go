package raft

import (
	"testing"
	"unsafe"

	pb "github.com/raftkit/raft/raftpb"
)

// TestReadyContentsSurviveLaterWork checks the ownership side of the buffer
// reuse in RawNode (proposal entries, outbox and unstable arrays): what a
// Ready handed out must not change while raft goes on proposing, sending
// and persisting, even when the application appends to the slices. By
// default that holds for Messages too, as in etcd/raft; with RawNode.LendMessages
// the array behind Messages is raft's again once the next Ready is taken,
// so its messages must stay intact until then, through Advance and the
// steps that follow it.
func TestReadyContentsSurviveLaterWork(t *testing.T) {
	for _, lend := range []bool{false, true} {
		for _, voters := range []int{1, 3} {
			readyContentsSurvive(t, voters, lend)
		}
	}
}

func readyContentsSurvive(t *testing.T, voters int, lend bool) {
	ids := make([]uint64, voters)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	rn, s := rnLeader(t, lend, ids...)
	type kept struct {
		ents, msgs []string
		entSlice   []pb.Entry
		msgSlice   []pb.Message
	}
	describe := func(ents []pb.Entry, msgs []pb.Message) kept {
		k := kept{entSlice: ents, msgSlice: msgs}
		for _, e := range ents {
			k.ents = append(k.ents, DescribeEntry(e, nil))
		}
		for _, m := range msgs {
			k.msgs = append(k.msgs, DescribeMessage(m, nil))
		}
		return k
	}
	var all []kept
	for i := 0; i < 200; i++ {
		if err := rn.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			// The previous Ready's messages survived everything since.
			prev := all[i-1]
			if now := describe(nil, prev.msgSlice); !equalStrings(now.msgs, prev.msgs) {
				t.Fatalf("voters=%d: Ready %d messages changed before the next Ready:\n%q\n%q", voters, i-1, prev.msgs, now.msgs)
			}
		}
		rd := rn.Ready()
		all = append(all, describe(rd.Entries, rd.Messages))
		_ = s.Append(rd.Entries)
		// The application may append to what it was handed.
		_ = append(rd.Entries, pb.Entry{Index: 999})
		_ = append(rd.Messages, pb.Message{Type: pb.MsgHup})
		rn.Advance(rd)
		// Followers acknowledge whatever was sent to them.
		for _, m := range rd.Messages {
			if m.Type == pb.MsgApp && len(m.Entries) > 0 {
				_ = rn.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgAppResp, Term: m.Term, Index: m.Entries[len(m.Entries)-1].Index})
			}
		}
	}
	for i, k := range all {
		if now := describe(k.entSlice, nil); !equalStrings(now.ents, k.ents) {
			t.Fatalf("voters=%d: Ready %d entries changed from %q to %q", voters, i, k.ents, now.ents)
		}
		if lend {
			continue
		}
		if now := describe(nil, k.msgSlice); !equalStrings(now.msgs, k.msgs) {
			t.Fatalf("voters=%d, messages not lent: Ready %d messages changed from %q to %q", voters, i, k.msgs, now.msgs)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// exchange runs one round of a three-voter leader whose followers (2 and 3)
// acknowledge every append at once: propose, then hand out and advance
// Readys until there is nothing left. It returns the Readys' Messages.
func exchange(t *testing.T, rn *RawNode, s *MemoryStorage, data []byte) [][]pb.Message {
	t.Helper()
	if err := rn.Propose(data); err != nil {
		t.Fatal(err)
	}
	var sent [][]pb.Message
	for rn.HasReady() {
		rd := rn.Ready()
		rnPersist(t, s, rd)
		rn.Advance(rd)
		if len(rd.Messages) != 0 {
			sent = append(sent, rd.Messages)
		}
		for _, m := range rd.Messages {
			if m.Type == pb.MsgApp && len(m.Entries) > 0 {
				_ = rn.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgAppResp, Term: m.Term, Index: m.Entries[len(m.Entries)-1].Index})
			}
		}
	}
	return sent
}

func rnLeader(t *testing.T, lend bool, voters ...uint64) (*RawNode, *MemoryStorage) {
	t.Helper()
	s := NewMemoryStorage()
	if err := s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: voters}}}); err != nil {
		t.Fatal(err)
	}
	cfg := rnConfig(1, s)
	rn := rnNew(t, cfg)
	if lend {
		rn.LendMessages()
	}
	rn.raft.toCandidate()
	rn.raft.toLeader()
	return rn, s
}

// TestOutboxArraysAreReused checks the point of lending Messages: in steady
// state a busy leader queues its messages in the arrays of earlier Readys
// instead of allocating an outbox per Ready, so only two arrays ever serve.
// Without RawNode.LendMessages no array is handed out twice.
func TestOutboxArraysAreReused(t *testing.T) {
	for _, lend := range []bool{true, false} {
		rn, s := rnLeader(t, lend, 1, 2, 3)
		arrays := map[*pb.Message]bool{}
		readys := 0
		for i := 0; i < 100; i++ {
			for _, msgs := range exchange(t, rn, s, []byte("x")) {
				if i >= 10 { // past the warm-up, where the arrays grow
					arrays[&msgs[:1][0]] = true
					readys++
				}
			}
		}
		if lend && len(arrays) != 2 {
			t.Fatalf("lending: steady-state Readys used %d message arrays, want 2", len(arrays))
		}
		if !lend && len(arrays) != readys {
			t.Fatalf("not lending: %d Readys with messages shared %d arrays' first slots", readys, len(arrays))
		}
	}
}

// TestOutboxShrinksAfterBurst checks that a burst does not leave big outbox
// arrays behind in a group that goes quiet: once the recent Readys are
// small again and nothing waits to be sent, only small arrays are kept.
func TestOutboxShrinksAfterBurst(t *testing.T) {
	rn, s := rnLeader(t, true, 1, 2, 3)
	exchange(t, rn, s, nil) // the followers go from probing to replicating
	// A burst: many proposals in one Ready, each replicated on its own.
	for i := 0; i < 100; i++ {
		if err := rn.Propose([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	rd := rn.Ready()
	if len(rd.Messages) < 100 {
		t.Fatalf("the burst sent %d messages, want 200", len(rd.Messages))
	}
	rnPersist(t, s, rd)
	rn.Advance(rd)
	for i := 0; i < 20; i++ {
		exchange(t, rn, s, []byte("y"))
	}
	if c, l := cap(rn.raft.msgs), cap(rn.lent); c > idleOutboxCap || l > idleOutboxCap {
		t.Fatalf("after the burst and 20 quiet rounds the outboxes hold %d and %d messages of room, want at most %d",
			c, l, idleOutboxCap)
	}
}

// TestReadStatesSurviveLaterReads checks the ownership side of the read
// state array reuse and of readOnly's recycled request statuses: the
// ReadStates a Ready handed out must not change while the leader serves
// later reads (served singly, in bursts and out of order), even when the
// application appends to them, and every read is answered once, with its
// own context, in order.
func TestReadStatesSurviveLaterReads(t *testing.T) {
	for _, voters := range []int{1, 3} {
		rn, s := readStateLeader(t, voters)
		// Commit the leader's empty entry, so that reads are served at once.
		drainAnswering(rn, s)
		all, answered := runReadBursts(rn, s)
		checkReadOrder(t, voters, answered)
		checkReadStatesUnchanged(t, voters, all)
	}
}

// readStateLeader returns a leader of a group of the given number of voters
// (IDs from 1) on a MemoryStorage starting from a snapshot at 1@1.
func readStateLeader(t *testing.T, voters int) (*RawNode, *MemoryStorage) {
	ids := make([]uint64, voters)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	s := NewMemoryStorage()
	if err := s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: ids}}}); err != nil {
		t.Fatal(err)
	}
	rn := rnNew(t, rnConfig(1, s))
	rn.raft.toCandidate()
	rn.raft.toLeader()
	return rn, s
}

// drainAnswering handles Readies until there are none, persisting entries to
// s and answering the leader's appends from every follower and its
// heartbeats from follower 2 only, and returns the Readies.
func drainAnswering(rn *RawNode, s *MemoryStorage) []Ready {
	var rds []Ready
	for rn.HasReady() {
		rd := rn.Ready()
		_ = s.Append(rd.Entries)
		rn.Advance(rd)
		rds = append(rds, rd)
		for _, m := range rd.Messages {
			switch m.Type {
			case pb.MsgApp:
				if n := len(m.Entries); n > 0 {
					_ = rn.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgAppResp, Term: m.Term, Index: m.Entries[n-1].Index})
				}
			case pb.MsgHeartbeat:
				// Only one follower answers: a quorum of three.
				if m.To == 2 {
					_ = rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeatResp, Term: m.Term, Context: m.Context})
				}
			}
		}
	}
	return rds
}

// keptReadStates is a Ready's ReadStates slice as handed out, and copies of
// the contexts and indexes it held then.
type keptReadStates struct {
	slice []ReadState
	ctxs  []string
	idxs  []uint64
}

// runReadBursts issues 100 bursts of one to four reads, draining after each,
// and returns every Ready's ReadStates as kept and the contexts answered in
// order. It appends to each Ready's ReadStates as an application may.
func runReadBursts(rn *RawNode, s *MemoryStorage) ([]keptReadStates, []string) {
	var all []keptReadStates
	var answered []string
	for i := 0; i < 100; i++ {
		burst := 1 + i%4
		for j := 0; j < burst; j++ {
			rn.ReadIndex([]byte{byte(i), byte(j)})
		}
		for _, rd := range drainAnswering(rn, s) {
			if len(rd.ReadStates) == 0 {
				continue
			}
			k := keptReadStates{slice: rd.ReadStates}
			for _, rs := range rd.ReadStates {
				k.ctxs = append(k.ctxs, string(rs.RequestCtx))
				k.idxs = append(k.idxs, rs.Index)
				answered = append(answered, string(rs.RequestCtx))
			}
			all = append(all, k)
			_ = append(rd.ReadStates, ReadState{Index: 999, RequestCtx: []byte("x")})
		}
	}
	return all, answered
}

// checkReadOrder checks that every read of runReadBursts was answered once,
// in order.
func checkReadOrder(t *testing.T, voters int, answered []string) {
	t.Helper()
	var want []string
	for i := 0; i < 100; i++ {
		for j := 0; j < 1+i%4; j++ {
			want = append(want, string([]byte{byte(i), byte(j)}))
		}
	}
	if len(answered) != len(want) {
		t.Fatalf("voters=%d: %d reads answered, want %d", voters, len(answered), len(want))
	}
	for i := range want {
		if answered[i] != want[i] {
			t.Fatalf("voters=%d: read %d answered as %q, want %q", voters, i, answered[i], want[i])
		}
	}
}

// checkReadStatesUnchanged checks that no ReadStates slice handed out
// changed after it was handed out.
func checkReadStatesUnchanged(t *testing.T, voters int, all []keptReadStates) {
	t.Helper()
	for i, k := range all {
		for j, rs := range k.slice {
			if string(rs.RequestCtx) != k.ctxs[j] || rs.Index != k.idxs[j] {
				t.Fatalf("voters=%d: Ready %d read state %d changed to %+v (was ctx %q)", voters, i, j, rs, k.ctxs[j])
			}
		}
	}
}

// TestOutboxRoomKeptWhenNotLending checks that a leader that does not lend
// its Messages keeps the unused rest of its outbox array through Advance:
// the next Readys' messages go on in that room, so a new array is needed
// only every few rounds, not for every round (trimOutboxes used to drop
// the room as "big" whenever nothing waited to be sent, and every round
// then allocated a fresh outbox of outboxRoomGiven messages).
func TestOutboxRoomKeptWhenNotLending(t *testing.T) {
	rn, s := rnLeader(t, false, 1, 2, 3)
	for i := 0; i < 10; i++ { // warm-up: the followers start replicating
		exchange(t, rn, s, []byte("x"))
	}
	var prevEnd uintptr // one past the previous Ready's last message
	fresh, readys := 0, 0
	for i := 0; i < 100; i++ {
		for _, msgs := range exchange(t, rn, s, []byte("x")) {
			// A Ready's messages that do not start where the previous
			// Ready's ended are in a new array.
			if uintptr(unsafe.Pointer(&msgs[0])) != prevEnd {
				fresh++
			}
			readys++
			prevEnd = uintptr(unsafe.Pointer(&msgs[len(msgs)-1])) + unsafe.Sizeof(msgs[0])
		}
	}
	if fresh > readys/4 {
		t.Fatalf("not lending: %d of %d Readys' messages needed a new outbox array", fresh, readys)
	}
}

// TestSpentMessagesReferenceNothing checks that the message arrays a
// RawNode keeps for reuse (the outbox lent back by the application, the
// queue of local acknowledgements) hold no entries, contexts, snapshots or
// responses of messages already handled: a quiet group would otherwise keep
// them alive for as long as it keeps the array.
func TestSpentMessagesReferenceNothing(t *testing.T) {
	rn, s := rnLeader(t, true, 1, 2, 3)
	for i := 0; i < 20; i++ {
		exchange(t, rn, s, []byte("payload"))
		rn.ReadIndex([]byte("ctx"))
	}
	check := func(what string, q []pb.Message) {
		t.Helper()
		for i, m := range q[len(q):cap(q)] {
			if m.Entries != nil || m.Snapshot != nil || m.Context != nil || m.Responses != nil {
				t.Fatalf("%s slot %d past the queue still references %s", what, len(q)+i, DescribeMessage(m, nil))
			}
		}
	}
	check("outbox", rn.raft.msgs)
	check("pending acknowledgements", rn.pendingAcks)
	check("after-append queue", rn.raft.msgsAfterAppend)
	// What the application holds is not raft's to clear.
	rd := rn.Ready()
	if len(rd.Messages) == 0 || rd.Messages[0].Context == nil {
		t.Fatalf("the read's heartbeats were not handed out: %v", rd.Messages)
	}
}

// TestForgetRefs checks forgetRefs on every reference field, and that it
// leaves the rest of a message alone.
func TestForgetRefs(t *testing.T) {
	msgs := []pb.Message{
		{Type: pb.MsgApp, Index: 7, Entries: []pb.Entry{{Index: 8}}, Context: []byte("c")},
		{Type: pb.MsgSnap, Snapshot: &pb.Snapshot{}},
		{Type: pb.MsgStorageAppend, Responses: []pb.Message{{}}},
		{Type: pb.MsgHeartbeat, Commit: 3},
	}
	forgetRefs(msgs)
	for i, m := range msgs {
		if m.Entries != nil || m.Snapshot != nil || m.Context != nil || m.Responses != nil {
			t.Fatalf("message %d still references something: %+v", i, m)
		}
	}
	if msgs[0].Index != 7 || msgs[3].Commit != 3 {
		t.Fatalf("forgetRefs changed more than references: %+v", msgs)
	}
}

// TestAdvanceStaleDurableNote checks that Advance's shortcut for its own
// storage notes keeps Step's term rule: when the term moves between Ready
// and Advance, the note of the earlier term's writes must not mark the
// entries durable (a later leader may have replaced them; see
// handleStaleStorageAppendResp).
func TestAdvanceStaleDurableNote(t *testing.T) {
	s := NewMemoryStorage()
	if err := s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}); err != nil {
		t.Fatal(err)
	}
	rn := rnNew(t, rnConfig(2, s))
	app := pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: 2, LogTerm: 1, Index: 1, Commit: 1, Entries: []pb.Entry{{Index: 2, Term: 2}}}
	if err := rn.Step(app); err != nil {
		t.Fatal(err)
	}
	rd := rn.Ready()
	rnPersist(t, s, rd)
	if err := rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 1}); err != nil {
		t.Fatal(err)
	}
	rn.Advance(rd)
	if !rn.raft.log.hasUndurable() {
		t.Fatal("the durable note of term 2 marked entries durable in term 3")
	}
}
