package sim

import (
	"fmt"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// disk is what survives a crash of one node: the state the Ready contract
// made durable. Invariant: ents, if any, are contiguous and start at
// snap.Metadata.Index+1.
type disk struct {
	hs   pb.HardState
	snap pb.Snapshot
	ents []pb.Entry
}

func (d *disk) lastIndex() uint64 {
	if n := len(d.ents); n > 0 {
		return d.ents[n-1].Index
	}
	return d.snap.Metadata.Index
}

// term returns the term of entry i, if the disk still knows it.
func (d *disk) term(i uint64) (uint64, bool) {
	si := d.snap.Metadata.Index
	switch {
	case i == si:
		return d.snap.Metadata.Term, true
	case i < si || i > d.lastIndex():
		return 0, false
	}
	return d.ents[i-si-1].Term, true
}

// holds reports whether the disk holds entry (index, term), counting an
// index covered by the snapshot as held (a snapshot only covers committed
// entries, and those are unique).
func (d *disk) holds(index, term uint64) bool {
	if index <= d.snap.Metadata.Index {
		return true
	}
	t, ok := d.term(index)
	return ok && t == term
}

// setHardState writes hs; a durable term or commit index that goes back
// is reported, since restarting from it could undo a vote or a commit.
func (d *disk) setHardState(hs pb.HardState) error {
	if raft.IsEmptyHardState(hs) {
		return nil
	}
	if hs.Term < d.hs.Term || hs.Commit < d.hs.Commit {
		return fmt.Errorf("durable HardState goes back from %s to %s", fmtHS(d.hs), fmtHS(hs))
	}
	if hs.Term == d.hs.Term && d.hs.Vote != raft.None && hs.Vote != d.hs.Vote {
		return fmt.Errorf("durable vote in term %d changes from %d to %d", hs.Term, d.hs.Vote, hs.Vote)
	}
	d.hs = hs
	return nil
}

// append writes ents the way Storage.Append does: entries at or below the
// snapshot are skipped, and a conflicting tail is replaced.
func (d *disk) append(ents []pb.Entry) {
	si := d.snap.Metadata.Index
	for len(ents) > 0 && ents[0].Index <= si {
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	if first > d.lastIndex()+1 {
		panic(fmt.Sprintf("sim: appending at %d leaves a gap after %d", first, d.lastIndex()))
	}
	d.ents = append(d.ents[:first-si-1:first-si-1], ents...)
}

// applySnapshot replaces everything with a snapshot received from a
// leader, as Storage.ApplySnapshot does.
func (d *disk) applySnapshot(s pb.Snapshot) {
	if s.Metadata.Index <= d.snap.Metadata.Index {
		return
	}
	d.snap = s
	d.ents = nil
}

// compact installs a snapshot the node took of its own state machine and
// drops the entries it covers; later entries stay.
func (d *disk) compact(s pb.Snapshot) {
	si := s.Metadata.Index
	if si <= d.snap.Metadata.Index {
		return
	}
	var rest []pb.Entry
	if si < d.lastIndex() {
		rest = append(rest, d.ents[si-d.snap.Metadata.Index:]...)
	}
	d.snap, d.ents = s, rest
}

// storage builds what a restarted node reads.
func (d *disk) storage() *raft.MemoryStorage {
	ms := raft.NewMemoryStorage()
	if !raft.IsEmptySnap(d.snap) {
		if err := ms.ApplySnapshot(d.snap); err != nil {
			panic(err)
		}
	}
	if err := ms.Append(d.ents); err != nil {
		panic(err)
	}
	// A snapshot the node took covers only committed entries, but under
	// AsyncStorageWrites it may be ahead of the durable commit index; raft
	// refuses to start from a commit index below its snapshot.
	hs := d.hs
	hs.Commit = max(hs.Commit, d.snap.Metadata.Index)
	if err := ms.SetHardState(hs); err != nil {
		panic(err)
	}
	return ms
}

func fmtHS(hs pb.HardState) string {
	return fmt.Sprintf("Term:%d Vote:%d Commit:%d", hs.Term, hs.Vote, hs.Commit)
}
