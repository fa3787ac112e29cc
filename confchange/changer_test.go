package confchange

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// set builds an ID set; no IDs give nil, as the Changer represents empty
// sets.
func set(ids ...uint64) map[uint64]struct{} {
	if len(ids) == 0 {
		return nil
	}
	s := map[uint64]struct{}{}
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

// progress builds a progress map in which the given IDs are learners and
// all others voters.
func progress(voters []uint64, learners ...uint64) tracker.ProgressMap {
	prs := tracker.ProgressMap{}
	for _, id := range voters {
		prs[id] = &tracker.Progress{Next: 1, Inflights: tracker.NewInflights(4, 0)}
	}
	for _, id := range learners {
		prs[id] = &tracker.Progress{Next: 1, Inflights: tracker.NewInflights(4, 0), IsLearner: true}
	}
	return prs
}

func ids(v ...uint64) []uint64 { return v }

// TestBrokenInputIsAnError hands the Changer trackers that break each
// invariant and checks that every method refuses them with an error rather
// than working on, or panicking over, an inconsistent configuration.
func TestBrokenInputIsAnError(t *testing.T) {
	var cases []brokenInputCase
	cases = append(cases, brokenProgressCases()...)
	cases = append(cases, brokenLearnerCases()...)
	cases = append(cases, brokenJointShapeCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkBrokenInputRefused(t, tc) })
	}
}

// brokenInputCase is a tracker state that breaks the configuration's
// invariants, and the error every change must return for it.
type brokenInputCase struct {
	name string
	cfg  tracker.Config
	prs  tracker.ProgressMap
	want string
}

// brokenProgressCases are configurations with a member whose progress is
// missing or nil.
func brokenProgressCases() []brokenInputCase {
	return []brokenInputCase{
		{
			name: "voter without progress",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1, 2)}},
			prs:  progress(ids(1)),
			want: "no progress for 2",
		},
		{
			name: "outgoing voter without progress",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1), set(1, 3)}},
			prs:  progress(ids(1)),
			want: "no progress for 3",
		},
		{
			name: "learner without progress",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1)}, Learners: set(4)},
			prs:  progress(ids(1)),
			want: "no progress for 4",
		},
		{
			name: "staged learner without progress",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1), set(1)}, LearnersNext: set(5)},
			prs:  progress(ids(1)),
			want: "no progress for 5",
		},
		{
			name: "several violations report the lowest ID first",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(9, 7, 8)}},
			prs:  tracker.ProgressMap{},
			want: "no progress for 7",
		},
		{
			name: "nil progress",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1)}},
			prs:  tracker.ProgressMap{1: nil},
			want: "nil progress for 1",
		},
	}
}

// brokenLearnerCases are configurations whose learners contradict the
// voters or the progress learner marks.
func brokenLearnerCases() []brokenInputCase {
	return []brokenInputCase{
		{
			name: "staged learner not in outgoing half",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1), set(1)}, LearnersNext: set(2)},
			prs:  progress(ids(1, 2)),
			want: "2 is in LearnersNext, but not Voters[1]",
		},
		{
			name: "staged learner already marked",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1), set(1, 2)}, LearnersNext: set(2)},
			prs:  progress(ids(1), 2),
			want: "2 is in LearnersNext, but is already marked as learner",
		},
		{
			name: "learner voting in outgoing half",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1), set(1, 3)}, Learners: set(3)},
			prs:  progress(ids(1), 3),
			want: "3 is in Learners and Voters[1]",
		},
		{
			name: "learner voting in incoming half",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1, 3)}, Learners: set(3)},
			prs:  progress(ids(1), 3),
			want: "3 is in Learners and Voters[0]",
		},
		{
			name: "learner not marked",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1)}, Learners: set(3)},
			prs:  progress(ids(1, 3)),
			want: "3 is in Learners, but is not marked as learner",
		},
	}
}

// brokenJointShapeCases are configurations that are not joint but carry an
// empty, non-nil joint-only field.
func brokenJointShapeCases() []brokenInputCase {
	return []brokenInputCase{
		{
			name: "empty but non-nil outgoing half",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1), quorum.MajorityConfig{}}},
			prs:  progress(ids(1)),
			want: "cfg.Voters[1] must be nil when not joint",
		},
		{
			name: "empty but non-nil staged learners",
			cfg:  tracker.Config{Voters: quorum.JointConfig{set(1)}, LearnersNext: map[uint64]struct{}{}},
			prs:  progress(ids(1)),
			want: "cfg.LearnersNext must be nil when not joint",
		},
	}
}

// checkBrokenInputRefused checks that Simple, EnterJoint and LeaveJoint all
// return tc's error and no configuration or progress.
func checkBrokenInputRefused(t *testing.T, tc brokenInputCase) {
	t.Helper()
	trk := tracker.MakeProgressTracker(4, 0)
	trk.Config, trk.Progress = tc.cfg, tc.prs
	chg := Changer{Tracker: trk, LastIndex: 3}
	calls := map[string]func() (tracker.Config, tracker.ProgressMap, error){
		"simple":      func() (tracker.Config, tracker.ProgressMap, error) { return chg.Simple() },
		"enter-joint": func() (tracker.Config, tracker.ProgressMap, error) { return chg.EnterJoint(false) },
		"leave-joint": chg.LeaveJoint,
	}
	for name, f := range calls {
		cfg, prs, err := f()
		require.EqualError(t, err, tc.want, name)
		require.Equal(t, tracker.Config{}, cfg, name)
		require.Nil(t, prs, name)
	}
}

// TestUnknownChangeType checks that a change type this package does not
// know is refused, in simple and joint changes alike.
func TestUnknownChangeType(t *testing.T) {
	chg := Changer{Tracker: tracker.MakeProgressTracker(4, 0)}
	cfg, prs, err := chg.Simple(pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 1})
	require.NoError(t, err)
	chg.Tracker.Config, chg.Tracker.Progress = cfg, prs

	bad := pb.ConfChangeSingle{Type: pb.ConfChangeType(42), NodeID: 2}
	_, _, err = chg.Simple(bad)
	require.EqualError(t, err, "unexpected conf type 42")
	_, _, err = chg.EnterJoint(true, pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 3}, bad)
	require.EqualError(t, err, "unexpected conf type 42")
	// A skipped change (ID 0) is not looked at, whatever its type.
	_, _, err = chg.Simple(pb.ConfChangeSingle{Type: pb.ConfChangeType(42)})
	require.NoError(t, err)
}

// TestZeroChanger checks that the zero Changer, whose tracker has no maps at
// all, can bootstrap a configuration instead of panicking.
func TestZeroChanger(t *testing.T) {
	var chg Changer
	cfg, prs, err := chg.Simple(
		pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 1},
		pb.ConfChangeSingle{Type: pb.ConfChangeAddLearnerNode, NodeID: 2},
	)
	require.NoError(t, err)
	require.Equal(t, "voters=(1) learners=(2)", cfg.String())
	require.Equal(t, uint64(1), prs[1].Next)
	require.True(t, prs[2].IsLearner)
	require.True(t, prs[1].RecentActive)
}

// TestNewProgress checks how a change initialises the progress of the peers
// it adds.
func TestNewProgress(t *testing.T) {
	chg := Changer{Tracker: tracker.MakeProgressTracker(3, 100), LastIndex: 17}
	_, prs, err := chg.Simple(pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 5})
	require.NoError(t, err)
	pr := prs[5]
	require.Equal(t, uint64(0), pr.Match)
	require.Equal(t, uint64(17), pr.Next)
	require.Equal(t, tracker.StateProbe, pr.State)
	require.True(t, pr.RecentActive)
	require.False(t, pr.IsLearner)
	require.Equal(t, tracker.NewInflights(3, 100), pr.Inflights)
}

// TestResultIsIndependent checks that editing a returned configuration and
// progress map does not reach back into the Changer's tracker.
func TestResultIsIndependent(t *testing.T) {
	trk := tracker.MakeProgressTracker(4, 0)
	trk.Config = tracker.Config{Voters: quorum.JointConfig{set(1, 2)}, Learners: set(3)}
	trk.Progress = progress(ids(1, 2), 3)
	chg := Changer{Tracker: trk}
	cfg, prs, err := chg.EnterJoint(false, pb.ConfChangeSingle{Type: pb.ConfChangeAddLearnerNode, NodeID: 2})
	require.NoError(t, err)

	cfg.Voters[0][9] = struct{}{}
	cfg.Learners[9] = struct{}{}
	prs[1].IsLearner = true
	delete(prs, 3)
	require.Equal(t, "voters=(1 2) learners=(3)", trk.Config.String())
	require.False(t, trk.Progress[1].IsLearner)
	require.Contains(t, trk.Progress, uint64(3))
}

// TestRestoreCases checks Restore on hand-picked ConfStates, including the
// refusals it passes on from the Changer.
func TestRestoreCases(t *testing.T) {
	for _, tc := range []struct {
		cs   pb.ConfState
		want string // configuration, or the error
	}{
		{cs: pb.ConfState{}, want: "voters=()"},
		{cs: pb.ConfState{Voters: ids(3, 1)}, want: "voters=(1 3)"},
		{cs: pb.ConfState{Voters: ids(1), Learners: ids(2, 4)}, want: "voters=(1) learners=(2 4)"},
		{
			cs:   pb.ConfState{Voters: ids(1, 5), VotersOutgoing: ids(1, 2, 3), LearnersNext: ids(3), Learners: ids(4), AutoLeave: true},
			want: "voters=(1 5)&&(1 2 3) learners=(4) learners_next=(3) autoleave",
		},
		{cs: pb.ConfState{VotersOutgoing: ids(7)}, want: "removed all voters"},
		{cs: pb.ConfState{Learners: ids(2)}, want: "removed all voters"},
		// A staged learner must vote in the outgoing half; outside a joint
		// configuration it is restored as a plain learner.
		{cs: pb.ConfState{Voters: ids(1), LearnersNext: ids(2)}, want: "voters=(1) learners=(2)"},
		// Listing the same voter twice is harmless.
		{cs: pb.ConfState{Voters: ids(2, 2)}, want: "voters=(2)"},
		// Any number of voters: Restore adds them one simple change at a time.
		{cs: pb.ConfState{Voters: ids(1, 2, 3)}, want: "voters=(1 2 3)"},
	} {
		chg := Changer{Tracker: tracker.MakeProgressTracker(4, 0), LastIndex: 5}
		cfg, prs, err := Restore(chg, tc.cs)
		if err != nil {
			require.EqualError(t, err, tc.want, "%+v", tc.cs)
			require.Nil(t, prs)
			continue
		}
		require.Equal(t, tc.want, cfg.String(), "%+v", tc.cs)
		for id := range cfg.Voters.IDs() {
			require.Contains(t, prs, id)
			require.Equal(t, uint64(5), prs[id].Next)
		}
		require.Len(t, chg.Tracker.Progress, 0, "Restore modified the changer's tracker")
	}
}

func TestDescribe(t *testing.T) {
	require.Equal(t, "", Describe())
	require.Equal(t,
		"ConfChangeAddNode(1) ConfChangeRemoveNode(2) ConfChangeUpdateNode(3) ConfChangeAddLearnerNode(4)",
		Describe(
			pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 1},
			pb.ConfChangeSingle{Type: pb.ConfChangeRemoveNode, NodeID: 2},
			pb.ConfChangeSingle{Type: pb.ConfChangeUpdateNode, NodeID: 3},
			pb.ConfChangeSingle{Type: pb.ConfChangeAddLearnerNode, NodeID: 4},
		))
}

// TestRestoreAgreesWithEnterJoint checks that a joint configuration reached
// by live changes and the one Restore rebuilds from its ConfState are equal,
// autoleave included.
func TestRestoreAgreesWithEnterJoint(t *testing.T) {
	chg := Changer{Tracker: tracker.MakeProgressTracker(4, 0)}
	steps := []func(Changer) (tracker.Config, tracker.ProgressMap, error){
		func(c Changer) (tracker.Config, tracker.ProgressMap, error) {
			return c.Simple(pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 1})
		},
		func(c Changer) (tracker.Config, tracker.ProgressMap, error) {
			return c.Simple(pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 2})
		},
		func(c Changer) (tracker.Config, tracker.ProgressMap, error) {
			ccs, err := pb.ConfChangesFromString("l1 v3 l4 r2")
			require.NoError(t, err)
			return c.EnterJoint(true, ccs...)
		},
	}
	for _, step := range steps {
		cfg, prs, err := step(chg)
		require.NoError(t, err)
		chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
	}
	cs := chg.Tracker.ConfState()
	cfg, prs, err := Restore(Changer{Tracker: tracker.MakeProgressTracker(4, 0)}, cs)
	require.NoError(t, err)
	require.True(t, reflect.DeepEqual(chg.Tracker.Config, cfg), "%s vs %s", chg.Tracker.Config, cfg)
	require.Equal(t, progressRoles(chg.Tracker.Progress), progressRoles(prs))
	require.Equal(t, "voters=(3)&&(1 2) learners=(4) learners_next=(1) autoleave", cfg.String())
}
