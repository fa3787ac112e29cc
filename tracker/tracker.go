// Package tracker holds what a Raft leader knows about its peers: the active
// membership configuration (Config), the replication progress of every peer
// (Progress, with its flow-control window Inflights), and the votes of an
// ongoing election. It answers the quorum questions the leader asks: which
// index is committed, whether an election is won, whether a quorum has been
// heard from recently.
//
// The package is a leaf: it depends on quorum and raftpb (and the commit
// rule quorum shares with it, internal/commitrule) only and does no I/O.
// The raft package drives the Progress state machine and keeps a
// MemberOrder of its active configuration; the confchange package computes
// new Configs.
package tracker

import (
	"maps"
	"slices"
	"strings"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
)

// Config is a membership configuration as tracked by a ProgressTracker.
//
// Invariant: no ID is both a learner (in Learners) and a voter (in either
// half of Voters). Keeping the roles disjoint, even in a joint configuration,
// lets every peer know its role without reasoning about joint consensus; it
// is why LearnersNext exists.
type Config struct {
	// Voters is the voting membership. Outside a transition only Voters[0]
	// is populated; in a joint configuration Voters[0] is the incoming and
	// Voters[1] the outgoing majority, and decisions need both.
	Voters quorum.JointConfig
	// AutoLeave, in a joint configuration, asks Raft to leave it on its own
	// (by proposing an empty conf change) as soon as it can. When false the
	// application must ask to leave. Never set outside a joint configuration.
	AutoLeave bool
	// Learners are the non-voting members of the current configuration; nil
	// until the first learner is added.
	Learners map[uint64]struct{}
	// LearnersNext are peers that become learners when the joint
	// configuration is left. A voter that is demoted to learner stays a voter
	// of the outgoing half while the transition lasts, so it cannot be put in
	// Learners yet (see the invariant above); it waits here instead. A new
	// learner that is not an outgoing voter goes straight into Learners so
	// that it starts catching up at once. Nil unless used.
	LearnersNext map[uint64]struct{}
}

// String formats the configuration as in test and log output, for example
// "voters=(1 2)&&(1) learners=(3) learners_next=(4) autoleave". A learner set
// that is non-nil but empty still prints, as "learners=()".
func (c Config) String() string {
	parts := []string{"voters=" + c.Voters.String()}
	sets := [...]struct {
		label string
		ids   map[uint64]struct{}
	}{{"learners", c.Learners}, {"learners_next", c.LearnersNext}}
	for _, set := range sets {
		if set.ids != nil {
			parts = append(parts, set.label+"="+quorum.MajorityConfig(set.ids).String())
		}
	}
	if c.AutoLeave {
		parts = append(parts, "autoleave")
	}
	return strings.Join(parts, " ")
}

// Clone returns a copy of the voter and learner sets that shares no memory
// with c; nil sets stay nil.
//
// AutoLeave is not carried over: the clone always has AutoLeave false. This
// is what etcd/raft v3.6 does, and it is kept for compatibility (it shows in
// Status().Config); callers that need the flag copy it themselves.
func (c *Config) Clone() Config {
	return Config{
		Voters:       quorum.JointConfig{copySet(c.Voters[0]), copySet(c.Voters[1])},
		Learners:     copySet(c.Learners),
		LearnersNext: copySet(c.LearnersNext),
	}
}

// copySet copies an ID set, preserving nil (maps.Clone does, and it copies
// a small map's storage wholesale instead of hashing every ID again).
func copySet[S ~map[uint64]struct{}](s S) S { return maps.Clone(s) }

// ProgressTracker is a leader's (or candidate's) bookkeeping: the active
// configuration, one Progress per voter and learner in it, and the votes
// received in the current election.
type ProgressTracker struct {
	Config

	// Progress has an entry for every voter and learner of Config.
	Progress ProgressMap

	// Votes maps a voter ID to whether it granted its vote in the current
	// election. Only the first answer of each voter counts.
	Votes map[uint64]bool

	// MaxInflight and MaxInflightBytes size the Inflights window of every
	// new Progress (see NewInflights).
	MaxInflight      int
	MaxInflightBytes uint64
}

// MakeProgressTracker returns a tracker with an empty configuration (an empty
// incoming majority, no outgoing half, no learners), no progress and no votes,
// whose new Progress windows will admit maxInflight messages and maxBytes
// bytes (0: no byte limit).
func MakeProgressTracker(maxInflight int, maxBytes uint64) ProgressTracker {
	return ProgressTracker{
		Config: Config{
			// The outgoing half and the learner sets stay nil until used;
			// String and ConfState tell nil and empty apart.
			Voters: quorum.JointConfig{quorum.MajorityConfig{}, nil},
		},
		Progress:         ProgressMap{},
		Votes:            map[uint64]bool{},
		MaxInflight:      maxInflight,
		MaxInflightBytes: maxBytes,
	}
}

// ConfState returns the active configuration as a raftpb.ConfState, each ID
// list sorted (nil when empty).
func (p *ProgressTracker) ConfState() pb.ConfState {
	cs := pb.ConfState{AutoLeave: p.AutoLeave}
	cs.Voters, cs.VotersOutgoing = p.Voters[0].Slice(), p.Voters[1].Slice()
	cs.Learners = quorum.MajorityConfig(p.Learners).Slice()
	cs.LearnersNext = quorum.MajorityConfig(p.LearnersNext).Slice()
	return cs
}

// IsSingleton reports whether the configuration has exactly one voter (the
// local node, when it leads) and is not joint.
func (p *ProgressTracker) IsSingleton() bool {
	return len(p.Voters[1]) == 0 && len(p.Voters[0]) == 1
}

// matchIndexer exposes each tracked peer's Match as its acknowledged index.
type matchIndexer ProgressMap

var _ quorum.AckedIndexer = matchIndexer(nil)

// AckedIndex implements quorum.AckedIndexer.
func (m matchIndexer) AckedIndex(id uint64) (quorum.Index, bool) {
	if pr, ok := m[id]; ok {
		return quorum.Index(pr.Match), true
	}
	return 0, false
}

// Committed returns the highest log index that the voters (both halves, when
// joint) have acknowledged by quorum, judged by their Match indexes.
func (p *ProgressTracker) Committed() uint64 {
	return uint64(p.Voters.CommittedIndex(matchIndexer(p.Progress)))
}

// visitStackIDs is how many IDs Visit sorts without allocating; clusters are
// rarely larger.
const visitStackIDs = 8

// Visit calls f for every tracked peer in ascending ID order. f may modify
// the Progress it is given but must not add or remove peers.
func (p *ProgressTracker) Visit(f func(id uint64, pr *Progress)) {
	// Visit runs on every tick and every broadcast, so the common small
	// cluster sorts its IDs in a stack array rather than a fresh slice.
	var buf [visitStackIDs]uint64
	ids := buf[:0]
	for id := range p.Progress {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		f(id, p.Progress[id])
	}
}

// QuorumActive reports whether the voters that have recently been heard from
// (RecentActive) form a quorum of the configuration (both halves, if joint).
// Learners are never counted, whatever their flag says.
func (p *ProgressTracker) QuorumActive() bool {
	// A recently active voter counts as a granted vote, any other tracked
	// voter as a rejection, and the configuration decides as in an election.
	ballots := make(map[uint64]bool, len(p.Progress))
	for id, pr := range p.Progress {
		if pr.IsLearner {
			continue
		}
		ballots[id] = pr.RecentActive
	}
	return p.Voters.VoteResult(ballots) == quorum.VoteWon
}

// VoterNodes returns the IDs of all voters, of either half, sorted. The
// result is empty but non-nil when there are none.
func (p *ProgressTracker) VoterNodes() []uint64 {
	return sortedIDs(p.Voters.IDs())
}

// LearnerNodes returns the IDs of all learners, sorted, or nil when there are
// none.
func (p *ProgressTracker) LearnerNodes() []uint64 {
	if len(p.Learners) == 0 {
		return nil
	}
	return sortedIDs(p.Learners)
}

// sortedIDs returns the members of set in ascending order, as a non-nil
// slice.
func sortedIDs(set map[uint64]struct{}) []uint64 {
	ids := slices.AppendSeq(make([]uint64, 0, len(set)), maps.Keys(set))
	slices.Sort(ids)
	return ids
}

// ResetVotes forgets all votes, ready for a new election.
func (p *ProgressTracker) ResetVotes() { p.Votes = make(map[uint64]bool) }

// RecordVote records the answer of voter id (v: granted). A voter's first
// answer in an election is final; later ones, e.g. from duplicated
// messages, are ignored.
func (p *ProgressTracker) RecordVote(id uint64, v bool) {
	if _, answered := p.Votes[id]; answered {
		return
	}
	p.Votes[id] = v
}

// TallyVotes returns how many tracked voters granted and rejected their vote
// (votes of peers no longer tracked, and of learners, are not counted), and
// the election result according to the configuration.
func (p *ProgressTracker) TallyVotes() (granted int, rejected int, _ quorum.VoteResult) {
	for id, pr := range p.Progress {
		if pr.IsLearner {
			continue
		}
		switch v, voted := p.Votes[id]; {
		case !voted:
		case v:
			granted++
		default:
			rejected++
		}
	}
	return granted, rejected, p.Voters.VoteResult(p.Votes)
}
