package quorum_test

import (
	"math"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"

	"github.com/raftkit/raft/internal/quorumscript"
	"github.com/raftkit/raft/quorum"
)

// quickCase is a random joint configuration together with random acked
// indexes and ballots for (some of) its voters and for a few strangers.
type quickCase struct {
	cfg   quorum.JointConfig
	acked quorumscript.AckedIndexes
	votes map[uint64]bool
}

// Generate implements quick.Generator. The shapes are chosen so that the
// interesting situations are frequent: empty halves, shared voters, ties
// between indexes, voters with nothing known, and now and then a
// configuration too large for CommittedIndex's stack buffer.
func (quickCase) Generate(r *rand.Rand, _ int) reflect.Value {
	universe := 1 + r.Intn(9)
	if r.Intn(8) == 0 {
		universe = quorum.StackVoters + r.Intn(2*quorum.StackVoters)
	}
	// Per-half membership odds; 0 leaves the half empty.
	odds := [2]int{1 + r.Intn(4), r.Intn(4)}
	if r.Intn(10) == 0 {
		odds[0] = 0
	}
	// A narrow index range makes ties common; a wide one tests the extremes.
	randIdx := func() quorum.Index { return quorum.Index(1 + r.Intn(6)) }
	if r.Intn(4) == 0 {
		randIdx = func() quorum.Index {
			if r.Intn(10) == 0 {
				return math.MaxUint64
			}
			return quorum.Index(r.Uint64())
		}
	}

	qc := quickCase{
		cfg:   quorum.JointConfig{quorum.MajorityConfig{}, quorum.MajorityConfig{}},
		acked: quorumscript.AckedIndexes{},
		votes: map[uint64]bool{},
	}
	// IDs are spread out so that map order and ID order differ.
	for i := 0; i < universe; i++ {
		id := uint64(1 + r.Intn(1000))
		for half := range qc.cfg {
			if odds[half] > 0 && r.Intn(odds[half]+1) != 0 {
				qc.cfg[half][id] = struct{}{}
			}
		}
		if r.Intn(4) != 0 {
			qc.acked[id] = randIdx()
		}
		if r.Intn(3) != 0 {
			qc.votes[id] = r.Intn(2) == 0
		}
	}
	return reflect.ValueOf(qc)
}

func quickConfig(seed int64) *quick.Config {
	return &quick.Config{MaxCount: 20000, Rand: rand.New(rand.NewSource(seed))}
}

// TestQuickAgainstReference compares the production computations with the
// literal ones of internal/quorumscript on random inputs.
func TestQuickAgainstReference(t *testing.T) {
	t.Run("majority committed", func(t *testing.T) {
		fast := func(qc quickCase) quorum.Index { return qc.cfg[0].CommittedIndex(qc.acked) }
		ref := func(qc quickCase) quorum.Index {
			return quorumscript.ReferenceMajorityCommitted(qc.cfg[0], qc.acked)
		}
		if err := quick.CheckEqual(fast, ref, quickConfig(1)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("joint committed", func(t *testing.T) {
		fast := func(qc quickCase) quorum.Index { return qc.cfg.CommittedIndex(qc.acked) }
		ref := func(qc quickCase) quorum.Index {
			return quorumscript.ReferenceJointCommitted(qc.cfg, qc.acked)
		}
		if err := quick.CheckEqual(fast, ref, quickConfig(2)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("majority vote", func(t *testing.T) {
		fast := func(qc quickCase) quorum.VoteResult { return qc.cfg[0].VoteResult(qc.votes) }
		ref := func(qc quickCase) quorum.VoteResult {
			return quorumscript.ReferenceJointVote(quorum.JointConfig{qc.cfg[0], nil}, qc.votes)
		}
		if err := quick.CheckEqual(fast, ref, quickConfig(3)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("joint vote", func(t *testing.T) {
		fast := func(qc quickCase) quorum.VoteResult { return qc.cfg.VoteResult(qc.votes) }
		ref := func(qc quickCase) quorum.VoteResult {
			return quorumscript.ReferenceJointVote(qc.cfg, qc.votes)
		}
		if err := quick.CheckEqual(fast, ref, quickConfig(4)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestQuickJointProperties checks laws that tie the joint computations to
// the majority ones: swapping the halves changes nothing, and a half that is
// empty or equal to the other one leaves a plain majority.
func TestQuickJointProperties(t *testing.T) {
	laws := func(qc quickCase) bool {
		in, out := qc.cfg[0], qc.cfg[1]
		swapped := quorum.JointConfig{out, in}
		if qc.cfg.CommittedIndex(qc.acked) != swapped.CommittedIndex(qc.acked) ||
			qc.cfg.VoteResult(qc.votes) != swapped.VoteResult(qc.votes) {
			return false
		}
		for _, j := range []quorum.JointConfig{{in, nil}, {in, quorum.MajorityConfig{}}, {in, in}} {
			if j.CommittedIndex(qc.acked) != in.CommittedIndex(qc.acked) ||
				j.VoteResult(qc.votes) != in.VoteResult(qc.votes) {
				return false
			}
		}
		return true
	}
	if err := quick.Check(laws, quickConfig(5)); err != nil {
		t.Fatal(err)
	}
}
