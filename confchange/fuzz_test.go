package confchange

import (
	"testing"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// decodeFuzzSteps turns arbitrary bytes into Changer calls: a header byte
// per call (kind and auto-leave in the low bits, change count above), then
// two bytes per change (type, ID). IDs span 0..7 so that collisions,
// re-additions and the reserved ID 0 are common; types span one past the
// known ones.
func decodeFuzzSteps(data []byte) []step {
	var steps []step
	for len(data) > 0 && len(steps) < 32 {
		h := data[0]
		data = data[1:]
		s := step{kind: opKind(h % 3), autoLeave: h&4 != 0}
		n := int(h>>3) % 5
		for i := 0; i < n && len(data) >= 2; i++ {
			s.ccs = append(s.ccs, pb.ConfChangeSingle{
				Type:   pb.ConfChangeType(data[0] % 5),
				NodeID: uint64(data[1] % 8),
			})
			data = data[2:]
		}
		steps = append(steps, s)
	}
	return steps
}

// FuzzChanges applies arbitrary change lists through the Changer. Every
// call must either fail and leave the tracker as it was, or succeed with a
// configuration that passes the package's invariants, whose ConfState
// restores to the same configuration, and whose quorums meet those of the
// configuration before it (a simple change moves at most one voter; a
// joint configuration keeps the old voters as its outgoing half).
func FuzzChanges(f *testing.F) {
	f.Add([]byte{8, 0, 1, 8, 0, 2, 8, 0, 3})              // three simple voter additions
	f.Add([]byte{8, 0, 1, 20, 0, 2, 2, 3, 2, 2})          // enter-joint adding 2 and removing, leave
	f.Add([]byte{8, 0, 1, 16, 0, 2, 0, 3, 2, 1, 2})       // a simple change of two voters: refused
	f.Add([]byte{8, 3, 1, 8, 0, 0, 8, 4, 9, 1, 2})        // a learner, ID 0, an unknown type
	f.Add([]byte{8, 0, 1, 8, 0, 2, 17, 3, 1, 0, 3, 5, 2}) // demote in a joint change
	f.Fuzz(func(t *testing.T, data []byte) {
		trk := tracker.MakeProgressTracker(4, 0)
		var last uint64
		for _, s := range decodeFuzzSteps(data) {
			last++
			// Clone drops AutoLeave (as etcd's does), so keep a copy by value.
			before := trk.Config
			beforeStr := before.String()
			chg := Changer{Tracker: trk, LastIndex: last}
			var cfg tracker.Config
			var prs tracker.ProgressMap
			var err error
			switch s.kind {
			case opSimple:
				cfg, prs, err = chg.Simple(s.ccs...)
			case opEnterJoint:
				cfg, prs, err = chg.EnterJoint(s.autoLeave, s.ccs...)
			default:
				cfg, prs, err = chg.LeaveJoint()
			}
			if err != nil {
				if trk.Config.String() != beforeStr {
					t.Fatalf("%s failed (%v) but changed the tracker: %s -> %s", s, err, beforeStr, trk.Config)
				}
				continue
			}
			if err := verifyTracker(cfg, prs); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			if !quorumsIntersect(before.Voters, cfg.Voters) {
				t.Fatalf("%s: %s and %s have disjoint quorums", s, before.Voters, cfg.Voters)
			}
			trk.Config, trk.Progress = cfg, prs
			cs := trk.ConfState()
			fresh := tracker.MakeProgressTracker(4, 0)
			rcfg, rprs, err := Restore(Changer{Tracker: fresh, LastIndex: last}, cs)
			if err != nil {
				t.Fatalf("%s: restoring %+v: %v", s, cs, err)
			}
			fresh.Config, fresh.Progress = rcfg, rprs
			if err := cs.Equivalent(fresh.ConfState()); err != nil {
				t.Fatalf("%s: restore differs: %v", s, err)
			}
		}
	})
}

// quorumsIntersect reports whether every quorum of a shares a member with
// every quorum of b, trying all splits of their members. An empty
// configuration (before the first voter) has no quorums to speak of.
func quorumsIntersect(a, b quorum.JointConfig) bool {
	if len(a[0]) == 0 && len(a[1]) == 0 {
		return true
	}
	var ids []uint64
	for id := range a.IDs() {
		ids = append(ids, id)
	}
	for id := range b.IDs() {
		if _, ok := a.IDs()[id]; !ok {
			ids = append(ids, id)
		}
	}
	for mask := 0; mask < 1<<len(ids); mask++ {
		in, out := map[uint64]bool{}, map[uint64]bool{}
		for i, id := range ids {
			in[id] = mask&(1<<i) != 0
			out[id] = !in[id]
		}
		if a.VoteResult(in) == quorum.VoteWon && b.VoteResult(out) == quorum.VoteWon {
			return false
		}
	}
	return true
}
