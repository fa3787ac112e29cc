package confchange

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// opKind selects which Changer method a generated step calls.
type opKind int

const (
	opSimple opKind = iota
	opEnterJoint
	opLeaveJoint
)

// step is one generated call on a Changer.
type step struct {
	kind      opKind
	autoLeave bool
	ccs       []pb.ConfChangeSingle
}

func (s step) String() string {
	switch s.kind {
	case opSimple:
		return "simple " + pb.ConfChangesToString(s.ccs)
	case opEnterJoint:
		return fmt.Sprintf("enter-joint autoleave=%t %s", s.autoLeave, pb.ConfChangesToString(s.ccs))
	default:
		return "leave-joint"
	}
}

// history is a random run of Changer calls over a handful of peer IDs, so
// that promotions, demotions, removals of absent peers and re-additions are
// frequent. Most steps are valid; some are not (several voters in a simple
// change, joint calls in the wrong state, the reserved ID 0, an unknown
// change type) so that refusals are exercised too.
type history struct {
	maxInflight int
	lastIndex   uint64
	steps       []step
}

// Generate implements quick.Generator.
func (history) Generate(r *rand.Rand, _ int) reflect.Value {
	h := history{
		maxInflight: 1 + r.Intn(16),
		lastIndex:   uint64(r.Intn(4)), // 0 and 1 both give Next 1
	}
	// Start with a voter most of the time, or nothing can happen but
	// refusals.
	if r.Intn(8) != 0 {
		h.steps = append(h.steps, step{kind: opSimple, ccs: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 1}}})
	}
	for n := 1 + r.Intn(12); n > 0; n-- {
		h.steps = append(h.steps, randomStep(r))
	}
	return reflect.ValueOf(h)
}

// randomStep draws one call; enter-joint is weighted up because it is the
// most varied.
func randomStep(r *rand.Rand) step {
	var s step
	switch k := r.Intn(10); {
	case k < 4:
		s.kind = opSimple
		s.ccs = randomChanges(r, 1+r.Intn(2))
	case k < 8:
		s.kind = opEnterJoint
		s.autoLeave = r.Intn(2) == 0
		s.ccs = randomChanges(r, r.Intn(6))
	default:
		s.kind = opLeaveJoint
	}
	return s
}

// randomChanges draws n changes over the IDs 1 to 5, with ID 0 and an
// unknown change type now and then.
func randomChanges(r *rand.Rand, n int) []pb.ConfChangeSingle {
	types := []pb.ConfChangeType{
		pb.ConfChangeAddNode, pb.ConfChangeAddLearnerNode,
		pb.ConfChangeRemoveNode, pb.ConfChangeUpdateNode,
	}
	var ccs []pb.ConfChangeSingle
	for i := 0; i < n; i++ {
		cc := pb.ConfChangeSingle{
			Type:   types[r.Intn(len(types))],
			NodeID: 1 + uint64(r.Intn(5)),
		}
		switch r.Intn(40) {
		case 0:
			cc.NodeID = 0
		case 1:
			cc.Type = pb.ConfChangeType(17)
		}
		ccs = append(ccs, cc)
	}
	return ccs
}

// model is a naive statement of what a configuration means, kept apart from
// the Changer's bookkeeping: the peers voting in each half, and the peers
// meant to be learners (whether or not they still vote in the outgoing
// half).
type model struct {
	incoming  map[uint64]bool
	outgoing  map[uint64]bool // nil when not joint
	learners  map[uint64]bool
	autoLeave bool
}

func newModel() model {
	return model{incoming: map[uint64]bool{}, learners: map[uint64]bool{}}
}

func (m model) clone() model {
	cp := func(s map[uint64]bool) map[uint64]bool {
		if s == nil {
			return nil
		}
		out := make(map[uint64]bool, len(s))
		for id := range s {
			out[id] = true
		}
		return out
	}
	return model{incoming: cp(m.incoming), outgoing: cp(m.outgoing), learners: cp(m.learners), autoLeave: m.autoLeave}
}

// apply replays the changes on the model; ok is false on an unknown type.
func (m model) apply(ccs []pb.ConfChangeSingle) (ok bool) {
	for _, cc := range ccs {
		if cc.NodeID == 0 {
			continue
		}
		switch cc.Type {
		case pb.ConfChangeAddNode:
			m.incoming[cc.NodeID] = true
			delete(m.learners, cc.NodeID)
		case pb.ConfChangeAddLearnerNode:
			delete(m.incoming, cc.NodeID)
			m.learners[cc.NodeID] = true
		case pb.ConfChangeRemoveNode:
			delete(m.incoming, cc.NodeID)
			delete(m.learners, cc.NodeID)
		case pb.ConfChangeUpdateNode:
		default:
			return false
		}
	}
	return true
}

// run predicts the outcome of s: the next model, or false if the Changer
// must refuse it.
func (m model) run(s step) (model, bool) {
	next := m.clone()
	switch s.kind {
	case opSimple:
		if m.outgoing != nil || !next.apply(s.ccs) || len(next.incoming) == 0 {
			return m, false
		}
		changed := 0
		for id := range unionOf(m.incoming, next.incoming) {
			if m.incoming[id] != next.incoming[id] {
				changed++
			}
		}
		return next, changed <= 1
	case opEnterJoint:
		if m.outgoing != nil || len(m.incoming) == 0 {
			return m, false
		}
		next.outgoing = m.clone().incoming
		if !next.apply(s.ccs) || len(next.incoming) == 0 {
			return m, false
		}
		next.autoLeave = s.autoLeave
		return next, true
	default:
		if m.outgoing == nil {
			return m, false
		}
		next.outgoing, next.autoLeave = nil, false
		return next, true
	}
}

// config is the tracker.Config the model stands for: a would-be learner
// that still votes in the outgoing half is staged in LearnersNext.
func (m model) config() tracker.Config {
	cfg := tracker.Config{AutoLeave: m.autoLeave}
	cfg.Voters[0] = quorum.MajorityConfig{}
	for id := range m.incoming {
		cfg.Voters[0][id] = struct{}{}
	}
	if m.outgoing != nil {
		cfg.Voters[1] = quorum.MajorityConfig{}
		for id := range m.outgoing {
			cfg.Voters[1][id] = struct{}{}
		}
	}
	for id := range m.learners {
		if m.outgoing[id] {
			addToSet(&cfg.LearnersNext, id)
		} else {
			addToSet(&cfg.Learners, id)
		}
	}
	return cfg
}

// roles maps every peer the model tracks to whether its Progress must be
// marked as a learner.
func (m model) roles() map[uint64]bool {
	out := map[uint64]bool{}
	for id := range unionOf(m.incoming, m.outgoing) {
		out[id] = false
	}
	for id := range m.learners {
		out[id] = !m.outgoing[id]
	}
	return out
}

func unionOf(a, b map[uint64]bool) map[uint64]bool {
	out := map[uint64]bool{}
	for id := range a {
		out[id] = true
	}
	for id := range b {
		out[id] = true
	}
	return out
}

// progressRoles reduces a progress map to peer IDs and learner flags.
func progressRoles(prs tracker.ProgressMap) map[uint64]bool {
	out := map[uint64]bool{}
	for id, pr := range prs {
		out[id] = pr.IsLearner
	}
	return out
}

// trackerImage is a deep copy of everything in a ProgressTracker that a
// Changer could conceivably modify, including the identity of each
// Progress, so that any write through the tracker shows up as a difference.
type trackerImage struct {
	cfg      tracker.Config
	progress map[uint64]tracker.Progress
	pointers map[uint64]*tracker.Progress
}

func imageOf(trk tracker.ProgressTracker) trackerImage {
	img := trackerImage{
		cfg: tracker.Config{
			Voters:       quorum.JointConfig{copySet(trk.Voters[0]), copySet(trk.Voters[1])},
			Learners:     copySet(trk.Learners),
			LearnersNext: copySet(trk.LearnersNext),
			AutoLeave:    trk.AutoLeave,
		},
		progress: map[uint64]tracker.Progress{},
		pointers: map[uint64]*tracker.Progress{},
	}
	for id, pr := range trk.Progress {
		img.progress[id] = *pr
		img.pointers[id] = pr
	}
	return img
}

// call runs s on chg.
func call(chg Changer, s step) (tracker.Config, tracker.ProgressMap, error) {
	switch s.kind {
	case opSimple:
		return chg.Simple(s.ccs...)
	case opEnterJoint:
		return chg.EnterJoint(s.autoLeave, s.ccs...)
	default:
		return chg.LeaveJoint()
	}
}

// checkHistory replays h on a Changer and, after every step, checks that
//   - the Changer accepts exactly the steps the model accepts, and then
//     yields the model's configuration and progress roles;
//   - new progress starts at Next = max(LastIndex, 1), and kept progress
//     keeps its Next;
//   - the call left the Changer's tracker exactly as it was;
//   - Restore rebuilds the same configuration and progress roles from the
//     result's ConfState alone.
func checkHistory(h history) error {
	chg := Changer{Tracker: tracker.MakeProgressTracker(h.maxInflight, 0), LastIndex: h.lastIndex}
	m := newModel()
	for i, s := range h.steps {
		before := imageOf(chg.Tracker)
		cfg, prs, err := call(chg, s)
		if after := imageOf(chg.Tracker); !reflect.DeepEqual(before, after) {
			return fmt.Errorf("step %d (%s) modified the changer's tracker", i, s)
		}
		next, ok := m.run(s)
		if ok != (err == nil) {
			return fmt.Errorf("step %d (%s): model accepts=%t, changer error=%v", i, s, ok, err)
		}
		if err != nil {
			chg.LastIndex++
			continue
		}
		if want := next.config(); !reflect.DeepEqual(cfg, want) {
			return fmt.Errorf("step %d (%s): config %s, model wants %s", i, s, cfg, want)
		}
		if got, want := progressRoles(prs), next.roles(); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("step %d (%s): progress roles %v, model wants %v", i, s, got, want)
		}
		for id, pr := range prs {
			old, existed := chg.Tracker.Progress[id]
			if pr.Next != max(chg.LastIndex, 1) && (!existed || pr.Next != old.Next) {
				return fmt.Errorf("step %d (%s): peer %d has Next %d", i, s, id, pr.Next)
			}
		}
		if err := checkRestore(cfg, prs, h.maxInflight); err != nil {
			return fmt.Errorf("step %d (%s): %w", i, s, err)
		}
		chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
		chg.LastIndex++
		m = next
	}
	return nil
}

// checkRestore restores the ConfState of cfg on an empty changer and
// compares the outcome with cfg and prs.
func checkRestore(cfg tracker.Config, prs tracker.ProgressMap, maxInflight int) error {
	trk := tracker.MakeProgressTracker(maxInflight, 0)
	trk.Config, trk.Progress = cfg, prs
	cs := trk.ConfState()
	rcfg, rprs, err := Restore(Changer{Tracker: tracker.MakeProgressTracker(maxInflight, 0), LastIndex: 7}, cs)
	if err != nil {
		return fmt.Errorf("restoring %+v: %w", cs, err)
	}
	if !reflect.DeepEqual(rcfg, cfg) {
		return fmt.Errorf("restoring %+v gave %s, want %s", cs, rcfg, cfg)
	}
	if got, want := progressRoles(rprs), progressRoles(prs); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("restoring %+v gave progress roles %v, want %v", cs, got, want)
	}
	return nil
}

// TestChangerAgainstModel checks random histories of changes with
// checkHistory.
func TestChangerAgainstModel(t *testing.T) {
	var failure error
	prop := func(h history) bool {
		failure = checkHistory(h)
		return failure == nil
	}
	cfg := &quick.Config{MaxCount: 3000, Rand: rand.New(rand.NewSource(20240611))}
	if err := quick.Check(prop, cfg); err != nil {
		t.Fatalf("%v\n%v", err, failure)
	}
}
