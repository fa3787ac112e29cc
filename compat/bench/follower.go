package bench

// follower is node 2 of a three-voter group led by node 1 in term 1, fed
// MsgApps directly: the receiving half of replication without a leader.
type follower struct {
	rn      *RawNode
	s       *MemoryStorage
	last    uint64 // last index appended
	applied uint64
	acks    int
	data    []byte
	rounds  int
}

func newFollower(payload int) *follower {
	s := seededStorage(3)
	if err := s.SetHardState(HardState{Term: 1, Commit: 1}); err != nil {
		panic(err)
	}
	rn, err := NewRawNode(config(2, s))
	if err != nil {
		panic(err)
	}
	return &follower{rn: rn, s: s, last: 1, applied: 1, data: make([]byte, payload)}
}

// step delivers one MsgApp of k new entries, committing everything sent
// before it, and handles the Ready that results. Entries are freshly
// allocated, as a decoder would.
func (f *follower) step(k int) {
	ents := make([]Entry, k)
	for i := range ents {
		ents[i].Term, ents[i].Index, ents[i].Data = 1, f.last+1+uint64(i), f.data
	}
	m := Message{Type: MsgApp, From: 1, To: 2, Term: 1, LogTerm: 1, Index: f.last, Commit: f.last, Entries: ents}
	f.last += uint64(k)
	if err := f.rn.Step(m); err != nil {
		panic(err)
	}
	for f.rn.HasReady() {
		rd := f.rn.Ready()
		if !IsEmptyHardState(rd.HardState) {
			_ = f.s.SetHardState(rd.HardState)
		}
		if err := f.s.Append(rd.Entries); err != nil {
			panic(err)
		}
		if n := len(rd.CommittedEntries); n != 0 {
			f.applied = rd.CommittedEntries[n-1].Index
		}
		f.acks += len(rd.Messages)
		f.rn.Advance(rd)
	}
	f.rounds++
	if f.rounds%256 == 0 {
		compactTo(f.s, f.applied)
	}
}
