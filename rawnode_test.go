package raft

import (
	"errors"
	"io"
	"log"
	"reflect"
	"strings"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// rnQuietLogger drops everything but panics, so that test output stays
// readable.
func rnQuietLogger() Logger { return &DefaultLogger{Logger: log.New(io.Discard, "", 0)} }

// rnStorage returns a MemoryStorage that starts from a snapshot at (index,
// term 1) whose configuration has the given voters.
func rnStorage(t testing.TB, index uint64, voters ...uint64) *MemoryStorage {
	t.Helper()
	s := NewMemoryStorage()
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: 1, ConfState: pb.ConfState{Voters: voters}}}
	if err := s.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	return s
}

func rnConfig(id uint64, s Storage) *Config {
	return &Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		MaxSizePerMsg:   noLimit,
		MaxInflightMsgs: 256,
		Logger:          rnQuietLogger(),
	}
}

func rnNew(t testing.TB, c *Config) *RawNode {
	t.Helper()
	rn, err := NewRawNode(c)
	if err != nil {
		t.Fatal(err)
	}
	return rn
}

// rnPersist does step 1 of the Ready contract.
func rnPersist(t testing.TB, s *MemoryStorage, rd Ready) {
	t.Helper()
	if !IsEmptyHardState(rd.HardState) {
		if err := s.SetHardState(rd.HardState); err != nil {
			t.Fatal(err)
		}
	}
	if !IsEmptySnap(rd.Snapshot) {
		if err := s.ApplySnapshot(rd.Snapshot); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
}

// rnHandle takes one Ready, checks its description, persists it and
// advances.
func rnHandle(t *testing.T, rn *RawNode, s *MemoryStorage, want string) Ready {
	t.Helper()
	if !rn.HasReady() {
		t.Fatalf("HasReady is false; want a Ready:\n%s", want)
	}
	rd := rn.Ready()
	if got := DescribeReady(rd, nil); got != want {
		t.Fatalf("Ready:\n%s\nwant:\n%s", got, want)
	}
	rnPersist(t, s, rd)
	rn.Advance(rd)
	return rd
}

// rnElectSingle makes a one-voter node (snapshot at index 1) leader and
// commits its empty entry, returning its storage.
func rnElectSingle(t *testing.T, c func(*Config)) (*RawNode, *MemoryStorage) {
	t.Helper()
	s := rnStorage(t, 1, 1)
	cfg := rnConfig(1, s)
	if c != nil {
		c(cfg)
	}
	rn := rnNew(t, cfg)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	for rn.HasReady() {
		rd := rn.Ready()
		rnPersist(t, s, rd)
		rn.Advance(rd)
	}
	if st := rn.BasicStatus(); st.RaftState != StateLeader || st.Commit != 2 || st.Applied != 2 {
		t.Fatalf("after election: %+v", st)
	}
	return rn, s
}

func TestNewRawNodeRejectsInvalidConfig(t *testing.T) {
	s := rnStorage(t, 1, 1)
	for name, mutate := range map[string]func(*Config){
		"no ID":                      func(c *Config) { c.ID = None },
		"election tick not above hb": func(c *Config) { c.ElectionTick = c.HeartbeatTick },
		"zero heartbeat tick":        func(c *Config) { c.HeartbeatTick = 0 },
		"no storage":                 func(c *Config) { c.Storage = nil },
		"no inflight messages":       func(c *Config) { c.MaxInflightMsgs = 0 },
		"lease reads without quorum": func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased },
		"ID is the append thread":    func(c *Config) { c.ID = LocalAppendThread },
		"inflight bytes below a msg": func(c *Config) { c.MaxInflightBytes = 1; c.MaxSizePerMsg = 2 },
	} {
		t.Run(name, func(t *testing.T) {
			c := rnConfig(1, s)
			mutate(c)
			rn, err := NewRawNode(c)
			if err == nil || rn != nil {
				t.Fatalf("NewRawNode = %v, %v; want an error", rn, err)
			}
		})
	}
	c := rnConfig(1, s)
	c.ID = None
	if _, err := NewRawNode(c); err == nil || err.Error() != "cannot use none as id" {
		t.Fatalf("error = %v, want etcd's text", err)
	}
}

// One voter elects itself and commits its empty entry, one acknowledgement
// per Advance: the vote, then the append.
func TestRawNodeSingleVoterElection(t *testing.T) {
	s := rnStorage(t, 1, 1)
	rn := rnNew(t, rnConfig(1, s))
	if rn.HasReady() {
		t.Fatalf("a fresh node from a snapshot has a Ready: %s", DescribeReady(rn.Ready(), nil))
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	// The self-vote counts only once the vote is durable: after Advance.
	rnHandle(t, rn, s, "Ready MustSync=true:\nLead:0 State:StateCandidate\nHardState Term:1 Vote:1 Commit:1\n")
	rnHandle(t, rn, s, "Ready MustSync=true:\nLead:1 State:StateLeader\nEntries:\n1/2 EntryNormal \"\"\n")
	rnHandle(t, rn, s, "Ready MustSync=false:\nHardState Term:1 Vote:1 Commit:2\nCommittedEntries:\n1/2 EntryNormal \"\"\n")
	if rn.HasReady() {
		t.Fatalf("left over: %s", DescribeReady(rn.Ready(), nil))
	}

	if err := rn.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := rn.Propose([]byte("b")); err != nil {
		t.Fatal(err)
	}
	// Both proposals land in one Ready; the commit follows the append.
	rnHandle(t, rn, s, "Ready MustSync=true:\nEntries:\n1/3 EntryNormal \"a\"\n1/4 EntryNormal \"b\"\n")
	rnHandle(t, rn, s, "Ready MustSync=false:\nHardState Term:1 Vote:1 Commit:4\nCommittedEntries:\n1/3 EntryNormal \"a\"\n1/4 EntryNormal \"b\"\n")
	if st := rn.BasicStatus(); st.Applied != 4 || st.Commit != 4 {
		t.Fatalf("status after applying: %+v", st)
	}
}

// Acknowledgements wait for Advance: until then the node neither counts its
// own vote nor offers a new Ready.
func TestRawNodeAcknowledgesOnlyOnAdvance(t *testing.T) {
	s := rnStorage(t, 1, 1)
	rn := rnNew(t, rnConfig(1, s))
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	rd := rn.Ready()
	if rn.HasReady() {
		t.Fatal("HasReady right after Ready")
	}
	for i := 0; i < 3; i++ {
		rn.Tick()
	}
	if st := rn.BasicStatus(); st.RaftState != StateCandidate {
		t.Fatalf("state before Advance: %v", st.RaftState)
	}
	rnPersist(t, s, rd)
	rn.Advance(rd)
	if st := rn.BasicStatus(); st.RaftState != StateLeader {
		t.Fatalf("state after Advance: %v", st.RaftState)
	}
	// A second Advance has nothing left to acknowledge.
	rn.Advance(Ready{})
	if st := rn.BasicStatus(); st.Commit != 1 {
		t.Fatalf("commit moved without a durable append: %+v", st)
	}
}

func TestRawNodeSecondReadyWithoutAdvancePanics(t *testing.T) {
	s := rnStorage(t, 1, 1)
	rn := rnNew(t, rnConfig(1, s))
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	_ = rn.Ready()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	_ = rn.Ready()
}

func TestMustSync(t *testing.T) {
	base := pb.HardState{Term: 3, Vote: 2, Commit: 7}
	for _, tc := range []struct {
		name string
		st   pb.HardState
		ents int
		want bool
	}{
		{"nothing changed", base, 0, false},
		{"commit only", pb.HardState{Term: 3, Vote: 2, Commit: 9}, 0, false},
		{"commit moved back", pb.HardState{Term: 3, Vote: 2, Commit: 1}, 0, false},
		{"new term", pb.HardState{Term: 4, Vote: 2, Commit: 7}, 0, true},
		{"new vote", pb.HardState{Term: 3, Vote: 5, Commit: 7}, 0, true},
		{"vote withdrawn", pb.HardState{Term: 3, Commit: 7}, 0, true},
		{"entries", base, 1, true},
		{"entries and commit", pb.HardState{Term: 3, Vote: 2, Commit: 8}, 4, true},
		{"empty new state", pb.HardState{}, 0, true},
	} {
		if got := MustSync(tc.st, base, tc.ents); got != tc.want {
			t.Errorf("%s: MustSync = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// failingStorage fails LastIndex once armed (after the RawNode is built,
// since building it reads the bounds).
type failingStorage struct {
	*MemoryStorage
	fail bool
}

var errRNStorage = errors.New("disk on fire")

func (s *failingStorage) LastIndex() (uint64, error) {
	if s.fail {
		return 0, errRNStorage
	}
	return s.MemoryStorage.LastIndex()
}

func TestRawNodeBootstrapRefusals(t *testing.T) {
	rn := rnNew(t, rnConfig(1, NewMemoryStorage()))
	if err := rn.Bootstrap(nil); err == nil || err.Error() != "must provide at least one peer to Bootstrap" {
		t.Errorf("no peers: %v", err)
	}

	rn = rnNew(t, rnConfig(1, rnStorage(t, 5, 1)))
	if err := rn.Bootstrap([]Peer{{ID: 1}}); err == nil || err.Error() != "can't bootstrap a nonempty Storage" {
		t.Errorf("nonempty storage: %v", err)
	}

	fs := &failingStorage{MemoryStorage: NewMemoryStorage()}
	rn = rnNew(t, rnConfig(1, fs))
	fs.fail = true
	if err := rn.Bootstrap([]Peer{{ID: 1}}); !errors.Is(err, errRNStorage) {
		t.Errorf("storage failure: %v", err)
	}
	if rn.HasReady() {
		t.Errorf("a refused Bootstrap left work: %s", DescribeReady(rn.Ready(), nil))
	}
}

func TestRawNodeBootstrap(t *testing.T) {
	s := NewMemoryStorage()
	rn := rnNew(t, rnConfig(2, s))
	peers := []Peer{{ID: 1, Context: []byte("one")}, {ID: 2}, {ID: 3}}
	if err := rn.Bootstrap(peers); err != nil {
		t.Fatal(err)
	}
	// The configuration is in force before the first Ready is handled.
	if got := rn.Status().Config.Voters[0].Slice(); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("voters before the first Ready: %v", got)
	}
	rd := rn.Ready()
	want := "Ready MustSync=true:\n" +
		"HardState Term:1 Commit:3\n" +
		"Entries:\n1/1 EntryConfChange v1\n1/2 EntryConfChange v2\n1/3 EntryConfChange v3\n" +
		"CommittedEntries:\n1/1 EntryConfChange v1\n1/2 EntryConfChange v2\n1/3 EntryConfChange v3\n"
	if got := DescribeReady(rd, nil); got != want {
		t.Fatalf("first Ready:\n%s\nwant:\n%s", got, want)
	}
	var cc pb.ConfChange
	if err := cc.Unmarshal(rd.Entries[0].Data); err != nil || string(cc.Context) != "one" {
		t.Fatalf("peer context lost: %+v, %v", cc, err)
	}
	rnPersist(t, s, rd)
	for _, e := range rd.CommittedEntries {
		var cc pb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			t.Fatal(err)
		}
		rn.ApplyConfChange(cc)
	}
	rn.Advance(rd)
	if rn.HasReady() {
		t.Fatalf("left over: %s", DescribeReady(rn.Ready(), nil))
	}
	if err := rn.Bootstrap(peers); err == nil {
		t.Fatal("a second Bootstrap on the now nonempty storage succeeded")
	}
}

func TestRawNodeStepRefusals(t *testing.T) {
	rn := rnNew(t, rnConfig(1, rnStorage(t, 1, 1, 2)))
	for _, typ := range []pb.MessageType{pb.MsgHup, pb.MsgBeat, pb.MsgUnreachable, pb.MsgSnapStatus,
		pb.MsgCheckQuorum, pb.MsgStorageAppend, pb.MsgStorageAppendResp, pb.MsgStorageApply, pb.MsgStorageApplyResp} {
		if err := rn.Step(pb.Message{Type: typ, From: 2, To: 1}); err != ErrStepLocalMsg {
			t.Errorf("%v from a peer: %v, want ErrStepLocalMsg", typ, err)
		}
	}
	for _, typ := range []pb.MessageType{pb.MsgAppResp, pb.MsgVoteResp, pb.MsgHeartbeatResp, pb.MsgPreVoteResp, pb.MsgReadIndexResp} {
		if err := rn.Step(pb.Message{Type: typ, From: 9, To: 1, Term: 1}); err != ErrStepPeerNotFound {
			t.Errorf("%v from a stranger: %v, want ErrStepPeerNotFound", typ, err)
		}
	}
	// Responses from the storage threads are fine, even without AsyncStorageWrites.
	if err := rn.Step(pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 1}); err != nil {
		t.Errorf("apply thread response: %v", err)
	}
	// A request from an unknown node is not a response: it goes through.
	if err := rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 9, To: 1, Term: 1}); err != nil {
		t.Errorf("heartbeat from a stranger: %v", err)
	}
	if rn.BasicStatus().Lead != 9 {
		t.Errorf("the heartbeat's sender was not taken as leader: %+v", rn.BasicStatus())
	}
}

// With AsyncStorageWrites, the work and every acknowledgement travel in
// messages to the local storage threads.
func TestRawNodeAsyncStorageMessages(t *testing.T) {
	s := rnStorage(t, 1, 1)
	cfg := rnConfig(1, s)
	cfg.AsyncStorageWrites = true
	rn := rnNew(t, cfg)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	checkAsyncElectionMessages(t, rn, s)
	checkAsyncApplyWaitsForDurability(t, rn, s)

	defer func() {
		if recover() == nil {
			t.Fatal("Advance with AsyncStorageWrites did not panic")
		}
	}()
	rn.Advance(Ready{})
}

// asyncTakeLocal takes a Ready from rn, checks that its messages, which must
// all be local, are described by want, and steps their responses (doing the
// storage work on s first).
func asyncTakeLocal(t *testing.T, rn *RawNode, s *MemoryStorage, want ...string) {
	t.Helper()
	rd := rn.Ready()
	if len(rd.Messages) != len(want) {
		t.Fatalf("Ready:\n%s\nwant %d messages", DescribeReady(rd, nil), len(want))
	}
	for i, m := range rd.Messages {
		if got := DescribeMessage(m, nil); got != want[i] {
			t.Fatalf("message %d:\n%s\nwant:\n%s", i, got, want[i])
		}
	}
	for _, m := range rd.Messages {
		if m.To == LocalAppendThread {
			hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
			rnPersist(t, s, Ready{HardState: hs, Entries: m.Entries})
		}
		for _, resp := range m.Responses {
			if err := rn.Step(resp); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkAsyncElectionMessages checks the local messages of a single voter's
// election under AsyncStorageWrites, through to its empty entry applied.
func checkAsyncElectionMessages(t *testing.T, rn *RawNode, s *MemoryStorage) {
	t.Helper()
	// The HardState is spread over the message's fields; the vote waits
	// for it. Nothing unstable yet, so no append acknowledgement.
	asyncTakeLocal(t, rn, s, "1->AppendThread MsgStorageAppend Term:1 Log:0/0 Commit:1 Vote:1 Responses:[\n"+
		"  1->1 MsgVoteResp Term:1 Log:0/0\n"+
		"]")
	// No HardState change: Term, Vote and Commit stay zero. The leader's own
	// append acknowledgement comes before the storage acknowledgement, which
	// names the last entry and the current term.
	asyncTakeLocal(t, rn, s, "1->AppendThread MsgStorageAppend Term:0 Log:0/0 Entries:[1/2 EntryNormal \"\"] Responses:[\n"+
		"  1->1 MsgAppResp Term:1 Log:0/2\n"+
		"  AppendThread->1 MsgStorageAppendResp Term:1 Log:1/2\n"+
		"]")
	asyncTakeLocal(t, rn, s, "1->AppendThread MsgStorageAppend Term:1 Log:0/0 Commit:2 Vote:1",
		"1->ApplyThread MsgStorageApply Term:0 Log:0/0 Entries:[1/2 EntryNormal \"\"] Responses:[\n"+
			"  ApplyThread->1 MsgStorageApplyResp Term:0 Log:0/0 Entries:[1/2 EntryNormal \"\"]\n"+
			"]")
	if rn.HasReady() {
		t.Fatalf("left over: %s", DescribeReady(rn.Ready(), nil))
	}
	if st := rn.BasicStatus(); st.Applied != 2 || st.RaftState != StateLeader {
		t.Fatalf("status: %+v", st)
	}
}

// checkAsyncApplyWaitsForDurability checks that an entry committed but not
// yet durable is not applied until the storage acknowledgement arrives.
func checkAsyncApplyWaitsForDurability(t *testing.T, rn *RawNode, s *MemoryStorage) {
	t.Helper()
	// Entries committed but not yet durable are not applied: the apply
	// message only comes after the append acknowledgement.
	if err := rn.Propose([]byte("p")); err != nil {
		t.Fatal(err)
	}
	rd := rn.Ready()
	if len(rd.CommittedEntries) != 0 || len(rd.Messages) != 1 {
		t.Fatalf("Ready after a proposal:\n%s", DescribeReady(rd, nil))
	}
	// Re-deliver the self acknowledgement only: the entry commits, but
	// without the storage acknowledgement it is not appliable.
	if err := rn.Step(rd.Messages[0].Responses[0]); err != nil {
		t.Fatal(err)
	}
	rd2 := rn.Ready()
	if len(rd2.CommittedEntries) != 0 || rd2.Commit != 3 {
		t.Fatalf("Ready after the self ack:\n%s", DescribeReady(rd2, nil))
	}
	rnPersist(t, s, Ready{Entries: rd.Messages[0].Entries})
	if err := rn.Step(rd.Messages[0].Responses[1]); err != nil {
		t.Fatal(err)
	}
	if rd3 := rn.Ready(); len(rd3.CommittedEntries) != 1 || string(rd3.CommittedEntries[0].Data) != "p" {
		t.Fatalf("Ready after the storage ack:\n%s", DescribeReady(rd3, nil))
	}
}

// A snapshot from the leader travels to the append thread and comes back in
// the storage acknowledgement.
func TestRawNodeAsyncStorageSnapshot(t *testing.T) {
	s := rnStorage(t, 1, 1, 2)
	cfg := rnConfig(2, s)
	cfg.AsyncStorageWrites = true
	rn := rnNew(t, cfg)
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 3, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}
	if err := rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: &snap}); err != nil {
		t.Fatal(err)
	}
	rd := rn.Ready()
	var app *pb.Message
	for i := range rd.Messages {
		if rd.Messages[i].To == LocalAppendThread {
			app = &rd.Messages[i]
		}
	}
	if app == nil || app.Snapshot == nil || app.Snapshot.Metadata.Index != 10 {
		t.Fatalf("no snapshot for the append thread:\n%s", DescribeReady(rd, nil))
	}
	if app.Snapshot == &rd.Snapshot {
		t.Fatal("the message shares the Ready's snapshot")
	}
	last := app.Responses[len(app.Responses)-1]
	if last.Type != pb.MsgStorageAppendResp || last.Snapshot == nil || last.Snapshot.Metadata.Index != 10 || last.Index != 0 {
		t.Fatalf("storage acknowledgement: %s", DescribeMessage(last, nil))
	}
	// The follower's acknowledgement to the leader waits for durability.
	var toLeader []string
	for _, m := range app.Responses {
		if m.To == 1 {
			toLeader = append(toLeader, DescribeMessage(m, nil))
		}
	}
	if !reflect.DeepEqual(toLeader, []string{"2->1 MsgAppResp Term:3 Log:0/10"}) {
		t.Fatalf("responses to the leader: %q", toLeader)
	}
	for _, m := range rd.Messages {
		if m.To == 1 {
			t.Fatalf("sent before durability: %s", DescribeMessage(m, nil))
		}
	}
}

func TestRawNodeConfChange(t *testing.T) {
	rn, s := rnElectSingle(t, nil)
	cc := pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: 2}}}
	if err := rn.ProposeConfChange(cc); err != nil {
		t.Fatal(err)
	}
	// A second change is refused while the first is not applied; the
	// leader replaces it with an empty entry.
	if err := rn.ProposeConfChange(pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 3}); err != nil {
		t.Fatal(err)
	}
	var applied []pb.Entry
	for rn.HasReady() {
		rd := rn.Ready()
		rnPersist(t, s, rd)
		applied = append(applied, rd.CommittedEntries...)
		rn.Advance(rd)
	}
	if got := DescribeEntries(applied, nil); got != "1/3 EntryConfChangeV2 l2\n1/4 EntryNormal \"\"\n" {
		t.Fatalf("committed:\n%s", got)
	}
	var dec pb.ConfChangeV2
	if err := dec.Unmarshal(applied[0].Data); err != nil {
		t.Fatal(err)
	}
	cs := rn.ApplyConfChange(dec)
	if want := (pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}); cs.Equivalent(want) != nil {
		t.Fatalf("ConfState = %+v", cs)
	}
	seen := map[uint64]ProgressType{}
	rn.WithProgress(func(id uint64, typ ProgressType, pr tracker.Progress) {
		seen[id] = typ
		if pr.Inflights != nil {
			t.Errorf("WithProgress leaked the Inflights of %d", id)
		}
	})
	if want := map[uint64]ProgressType{1: ProgressTypePeer, 2: ProgressTypeLearner}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("WithProgress saw %v", seen)
	}
	// The leader now replicates to the learner.
	if err := rn.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	rd := rn.Ready()
	toLearner := 0
	for _, m := range rd.Messages {
		if m.To == 2 && m.Type == pb.MsgApp {
			toLearner++
		}
	}
	if toLearner == 0 {
		t.Fatalf("Ready after adding a learner:\n%s", DescribeReady(rd, nil))
	}
}

func TestRawNodeReadIndex(t *testing.T) {
	rn, s := rnElectSingle(t, nil)
	rn.ReadIndex([]byte("r1"))
	rn.ReadIndex([]byte("r2"))
	if !rn.HasReady() {
		t.Fatal("no Ready for read states")
	}
	rd := rnHandle(t, rn, s, "Ready MustSync=false:\nReadStates [{2 [114 49]} {2 [114 50]}]\n")
	if rd.ReadStates[1].Index != 2 || string(rd.ReadStates[1].RequestCtx) != "r2" {
		t.Fatalf("read states: %+v", rd.ReadStates)
	}
	if rn.HasReady() {
		t.Fatal("read states handed out twice")
	}

	// A follower without a leader has nobody to ask: the request is lost.
	f := rnNew(t, rnConfig(2, rnStorage(t, 1, 1, 2)))
	f.ReadIndex([]byte("lost"))
	if f.HasReady() {
		t.Fatalf("leaderless follower: %s", DescribeReady(f.Ready(), nil))
	}
}

func TestRawNodeHasReadyEdges(t *testing.T) {
	// A restarted node whose storage holds its HardState has nothing new.
	s := rnStorage(t, 1, 1, 2, 3)
	if err := s.SetHardState(pb.HardState{Term: 4, Vote: 3, Commit: 1}); err != nil {
		t.Fatal(err)
	}
	rn := rnNew(t, rnConfig(1, s))
	if rn.HasReady() {
		t.Fatalf("restart: %s", DescribeReady(rn.Ready(), nil))
	}
	// TickQuiesced keeps time without acting on it.
	for i := 0; i < 100; i++ {
		rn.TickQuiesced()
	}
	if rn.HasReady() {
		t.Fatal("TickQuiesced started an election")
	}
	// Tick does act: the election clock is already past its timeout.
	rn.Tick()
	if !rn.HasReady() {
		t.Fatal("Tick after a long quiescence did not start an election")
	}
	rd := rn.Ready()
	if rd.SoftState == nil || rd.RaftState != StateCandidate || rd.Term != 5 || len(rd.Messages) != 2 {
		t.Fatalf("election Ready:\n%s", DescribeReady(rd, nil))
	}

	// With CheckQuorum, a MsgApp from an older term gets an answer (so that
	// a stale leader learns of the new term), hence a Ready.
	cfg2 := rnConfig(2, s)
	cfg2.CheckQuorum = true
	rn2 := rnNew(t, cfg2)
	if rn2.HasReady() {
		t.Fatal("restart")
	}
	if err := rn2.Step(pb.Message{Type: pb.MsgApp, From: 3, To: 2, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if !rn2.HasReady() {
		t.Fatal("a stale MsgApp got no answer")
	}
	if got := DescribeReady(rn2.Ready(), nil); got != "Ready MustSync=false:\nMessages:\n2->3 MsgAppResp Term:4 Log:0/0\n" {
		t.Fatalf("answer to a stale MsgApp:\n%s", got)
	}
}

// The application may keep what a Ready hands it: later work must not write
// into it. (With RawNode.LendMessages the Messages must stay intact only until the
// next Ready is taken; TestReadyContentsSurviveLaterWork covers both.)
func TestRawNodeReadyOwnership(t *testing.T) {
	s := rnStorage(t, 1, 1, 2)
	rn := rnNew(t, rnConfig(1, s))
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	var kept []Ready
	var snapshots []string
	var lastMsgs []pb.Message
	lastDesc := "<empty Ready>"
	describeMsgs := func(msgs []pb.Message) string {
		return DescribeReady(Ready{Messages: msgs}, nil)
	}
	checkLent := func() {
		if got := describeMsgs(lastMsgs); got != lastDesc {
			t.Fatalf("messages changed before the next Ready:\nwas:\n%s\nnow:\n%s", lastDesc, got)
		}
	}
	keep := func(rd Ready) {
		lastMsgs, lastDesc = rd.Messages, describeMsgs(rd.Messages)
		rd.Messages = nil
		kept = append(kept, rd)
		snapshots = append(snapshots, DescribeReady(rd, nil))
	}
	handle := func() {
		for rn.HasReady() {
			checkLent()
			rd := rn.Ready()
			keep(rd)
			rnPersist(t, s, rd)
			rn.Advance(rd)
		}
	}
	handle()
	if err := rn.Step(pb.Message{Type: pb.MsgVoteResp, From: 2, To: 1, Term: 1}); err != nil {
		t.Fatal(err)
	}
	handle()
	for i := 0; i < 20; i++ {
		if err := rn.Propose([]byte(strings.Repeat("v", i))); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			// Follower 2 acknowledges everything so far.
			last := rn.raft.log.last()
			if err := rn.Step(pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: 1, Index: last}); err != nil {
				t.Fatal(err)
			}
		}
		handle()
	}
	for i, rd := range kept {
		if got := DescribeReady(rd, nil); got != snapshots[i] {
			t.Fatalf("Ready %d changed after it was handed out:\nwas:\n%s\nnow:\n%s", i, snapshots[i], got)
		}
	}
}

func TestRawNodeReportUnreachableAndSnapshot(t *testing.T) {
	s := rnStorage(t, 1, 1, 2)
	rn := rnNew(t, rnConfig(1, s))
	handle := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			rnPersist(t, s, rd)
			rn.Advance(rd)
		}
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	handle()
	if err := rn.Step(pb.Message{Type: pb.MsgVoteResp, From: 2, To: 1, Term: 1}); err != nil {
		t.Fatal(err)
	}
	handle()
	if err := rn.Step(pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: 1, Index: 2}); err != nil {
		t.Fatal(err)
	}
	handle()
	state := func() tracker.StateType { return rn.Status().Progress[2].State }
	if state() != tracker.StateReplicate {
		t.Fatalf("follower state after an ack: %v", state())
	}
	rn.ReportUnreachable(2)
	if state() != tracker.StateProbe {
		t.Fatalf("follower state after ReportUnreachable: %v", state())
	}

	// Reporting on a follower that is not receiving a snapshot changes nothing.
	rn.ReportSnapshot(2, SnapshotFailure)
	if state() != tracker.StateProbe {
		t.Fatalf("follower state after a stray ReportSnapshot: %v", state())
	}
}

func TestRawNodeTransferAndForgetLeader(t *testing.T) {
	s := rnStorage(t, 1, 1, 2)
	rn := rnNew(t, rnConfig(1, s))
	var sent []pb.Message
	handle := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			rnPersist(t, s, rd)
			sent = append(sent, rd.Messages...)
			rn.Advance(rd)
		}
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	handle()
	if err := rn.Step(pb.Message{Type: pb.MsgVoteResp, From: 2, To: 1, Term: 1}); err != nil {
		t.Fatal(err)
	}
	handle()
	if err := rn.Step(pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: 1, Index: 2}); err != nil {
		t.Fatal(err)
	}
	handle()
	sent = nil
	// Follower 2 is up to date, so the transfer starts at once.
	rn.TransferLeader(2)
	handle()
	if len(sent) != 1 || sent[0].Type != pb.MsgTimeoutNow || sent[0].To != 2 {
		t.Fatalf("transfer sent %v", sent)
	}
	if rn.BasicStatus().LeadTransferee != 2 {
		t.Fatalf("transferee: %+v", rn.BasicStatus())
	}
	if err := rn.Propose([]byte("x")); err != ErrProposalDropped {
		t.Fatalf("proposal during a transfer: %v", err)
	}

	// Node 2 wins; node 1 follows it, then forgets it.
	if err := rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if st := rn.BasicStatus(); st.Lead != 2 || st.RaftState != StateFollower {
		t.Fatalf("after the new leader's heartbeat: %+v", st)
	}
	if err := rn.ForgetLeader(); err != nil {
		t.Fatal(err)
	}
	if st := rn.BasicStatus(); st.Lead != None || st.Term != 2 || st.RaftState != StateFollower {
		t.Fatalf("after ForgetLeader: %+v", st)
	}
}

// benchSingleVoter measures one proposal through a whole Ready cycle on a
// lone voter, storage included.
func BenchmarkRawNodeProposeReadyAdvance(b *testing.B) {
	s := NewMemoryStorage()
	if err := s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}); err != nil {
		b.Fatal(err)
	}
	rn := rnNew(b, rnConfig(1, s))
	cycle := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			if !IsEmptyHardState(rd.HardState) {
				_ = s.SetHardState(rd.HardState)
			}
			_ = s.Append(rd.Entries)
			rn.Advance(rd)
		}
	}
	if err := rn.Campaign(); err != nil {
		b.Fatal(err)
	}
	cycle()
	data := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rn.Propose(data); err != nil {
			b.Fatal(err)
		}
		cycle()
		if i%1000 == 999 {
			// Keep MemoryStorage small, as a real application would.
			_ = s.Compact(rn.BasicStatus().Applied)
		}
	}
}
