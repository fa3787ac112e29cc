package tracker

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Progress is the leader's view of one follower (or learner): how much of the
// log the follower is known to hold, what is in flight to it, and how the
// leader should send to it next. The leader owns one Progress per peer in its
// ProgressTracker; the transitions are driven from the raft package.
//
// Invariants:
//  1. Match < Next (so Next >= 1).
//  2. In StateSnapshot, Next == PendingSnapshot+1 and the sent commit index
//     equals PendingSnapshot.
//  3. The sent commit index is below Next, except transiently while the
//     leader raises it with SentCommit for a message it is sending.
type Progress struct {
	// Match is the highest log index known to be identical on the follower
	// and the leader.
	Match uint64
	// Next is the index of the next entry to send. Entries in (Match, Next)
	// have been sent and are not yet acknowledged.
	Next uint64

	// State selects the sending strategy: one probe at a time (StateProbe),
	// streaming bounded by Inflights (StateReplicate), or nothing while a
	// snapshot is outstanding (StateSnapshot).
	State StateType

	// PendingSnapshot is, in StateSnapshot, the leader's last index at the
	// time it decided the follower needs a snapshot (the index of the MsgSnap
	// raft emits). The follower leaves StateSnapshot when an append response
	// shows its log reconnected to the leader's, whatever snapshot got it
	// there (applications may produce snapshots elsewhere, at other indexes),
	// or when the snapshot is reported finished or failed; in the former case
	// PendingSnapshot becomes the lower bound for the next probe.
	PendingSnapshot uint64

	// RecentActive records that the follower has been heard from since the
	// leader last cleared it (once per election timeout, for CheckQuorum).
	// The leader's own progress is always active.
	RecentActive bool

	// MsgAppFlowPaused throttles appends: in StateProbe it is set after a
	// probe is sent, and in StateReplicate when Inflights fills up. While it
	// is set the leader sends no further MsgApp; it is cleared by progress
	// (MaybeUpdate, MaybeDecrTo) or by a heartbeat response, so a paused
	// follower is still retried once per heartbeat. See IsPaused.
	MsgAppFlowPaused bool

	// Inflights is the window of appends sent but not yet acknowledged. The
	// leader adds the last index of every MsgApp it sends (in increasing
	// order) and frees up to the acknowledged index on each response; while
	// it is Full no further MsgApp is sent. Together with the per-message
	// size limit this bounds the bandwidth one follower can take.
	Inflights *Inflights

	// IsLearner is true if the peer is a learner (non-voting member).
	IsLearner bool

	// sentCommit is the highest commit index the leader has put in a message
	// to this follower. It is usually monotonic but is lowered when the
	// follower turns out to be behind (probe, rejection), because what was
	// sent beyond its log may never have been applied. (It sits after the
	// exported fields: being unexported, its place is not part of the API.)
	sentCommit uint64
}

// ResetState switches to state and clears what belongs to the previous state:
// the flow-control pause, the pending snapshot and everything in flight.
// Match, Next and the sent commit index are left to the caller.
func (pr *Progress) ResetState(state StateType) {
	pr.State = state
	pr.MsgAppFlowPaused = false
	pr.PendingSnapshot = 0
	pr.Inflights.forgetAll()
}

// BecomeProbe switches to StateProbe and restarts probing right after Match.
// Coming from StateSnapshot, the pending snapshot is taken to have reached
// the follower, so probing starts after it if that is further.
func (pr *Progress) BecomeProbe() {
	next := pr.Match + 1
	if pr.State == StateSnapshot {
		next = max(next, pr.PendingSnapshot+1)
	}
	pr.ResetState(StateProbe)
	pr.moveBack(next)
}

// BecomeReplicate switches to StateReplicate, sending next from Match+1.
func (pr *Progress) BecomeReplicate() {
	pr.restart(StateReplicate, pr.Match+1)
}

// BecomeSnapshot switches to StateSnapshot, waiting for a snapshot at index
// snapshoti. The snapshot carries the commit index snapshoti, which is thus
// the commit index sent.
func (pr *Progress) BecomeSnapshot(snapshoti uint64) {
	pr.restart(StateSnapshot, snapshoti+1)
	pr.PendingSnapshot, pr.sentCommit = snapshoti, snapshoti
}

// restart enters state afresh (see ResetState) with next as the next index.
func (pr *Progress) restart(state StateType, next uint64) {
	pr.ResetState(state)
	pr.Next = next
}

// SentEntries records a MsgApp carrying entries consecutive entries, starting
// at Next and totalling bytes in size. It may only be called in StateProbe or
// StateReplicate; in StateSnapshot nothing is sent, so a call is a bug.
//
// In StateProbe a non-empty message is the probe, and the flow pauses until
// it is answered (an empty one leaves the pause flag alone). In
// StateReplicate see streamed.
func (pr *Progress) SentEntries(entries int, bytes uint64) {
	switch pr.State {
	case StateProbe:
		pr.MsgAppFlowPaused = pr.MsgAppFlowPaused || entries > 0
	case StateReplicate:
		pr.streamed(entries, bytes)
	default:
		panic(fmt.Sprintf("tracker: SentEntries(%d, %d) in %s; appends are only sent in StateProbe and StateReplicate",
			entries, bytes, pr.State))
	}
}

// streamed is SentEntries in StateReplicate: Next moves past the entries and
// the message joins the in-flight window. The flow pauses whenever the window
// is full afterwards, so a message that fills it, or an empty message sent
// with a full window, acts as a probe.
func (pr *Progress) streamed(entries int, bytes uint64) {
	if entries > 0 {
		last := pr.Next + uint64(entries) - 1
		pr.Inflights.Add(last, bytes)
		pr.Next = last + 1
	}
	pr.MsgAppFlowPaused = pr.Inflights.Full()
}

// CanBumpCommit reports whether sending commit index index could advance the
// follower's commit index: it must exceed what was already sent, and what was
// already sent must not yet cover everything up to Next-1 (the follower
// cannot commit beyond the entries it has been sent).
func (pr *Progress) CanBumpCommit(index uint64) bool {
	return index > pr.sentCommit && pr.sentCommit < pr.Next-1
}

// SentCommit records commit as the commit index last sent to the follower.
func (pr *Progress) SentCommit(commit uint64) {
	pr.sentCommit = commit
}

// MaybeUpdate handles an append response acknowledging index n. It returns
// false, changing nothing, if n is not above Match (a stale or duplicate
// response). Otherwise Match becomes n, Next is raised past it if needed, and
// the flow is unpaused.
func (pr *Progress) MaybeUpdate(n uint64) bool {
	fresh := n > pr.Match
	if fresh {
		pr.Match, pr.Next = n, max(pr.Next, n+1)
		pr.MsgAppFlowPaused = false
	}
	return fresh
}

// MaybeDecrTo handles an append rejection: rejected is the index of the
// append the follower refused and matchHint the follower's guess of the
// highest index at which the logs may agree. It returns false, changing
// nothing, when the rejection is stale (duplicated or reordered messages).
// Otherwise Next moves back (see rejectedStream and rejectedProbe) and the
// sent commit index is capped below it.
func (pr *Progress) MaybeDecrTo(rejected, matchHint uint64) bool {
	if pr.State == StateReplicate {
		return pr.rejectedStream(rejected)
	}
	return pr.rejectedProbe(rejected, matchHint)
}

// rejectedStream is MaybeDecrTo in StateReplicate. Everything up to Match was
// accepted, so a rejection at or below it is old news. Otherwise streaming
// restarts at Match+1; the hint is not used.
func (pr *Progress) rejectedStream(rejected uint64) bool {
	if rejected <= pr.Match {
		return false
	}
	pr.moveBack(pr.Match + 1)
	return true
}

// rejectedProbe is MaybeDecrTo outside StateReplicate. Only one probe is
// outstanding, the one at Next-1, so a rejection of any other index is
// stale. Next then moves to matchHint+1, but never below Match+1 nor above
// rejected, and the flow is unpaused so that the next probe can go out.
func (pr *Progress) rejectedProbe(rejected, matchHint uint64) bool {
	if rejected+1 != pr.Next {
		return false
	}
	// The arithmetic wraps exactly as etcd/raft's does (a hint of MaxUint64
	// sends Next back to Match+1), so both libraries agree on every input.
	pr.moveBack(max(pr.Match+1, min(rejected, matchHint+1)))
	pr.MsgAppFlowPaused = false
	return true
}

// moveBack sets Next to next and lowers the sent commit index to at most
// next-1: a commit index sent beyond what the follower holds may never have
// taken effect, so it is worth sending again.
func (pr *Progress) moveBack(next uint64) {
	pr.Next = next
	pr.sentCommit = min(pr.sentCommit, next-1)
}

// IsPaused reports whether the leader should hold back new MsgApps to this
// follower: in StateProbe and StateReplicate when the flow is paused (probe
// outstanding, or window full), and always in StateSnapshot.
func (pr *Progress) IsPaused() bool {
	switch pr.State {
	case StateProbe, StateReplicate:
		return pr.MsgAppFlowPaused
	case StateSnapshot:
		return true
	default:
		panic(fmt.Sprintf("tracker: IsPaused in unknown state %d", uint64(pr.State)))
	}
}

// String formats the progress as in status and test output, e.g.
// "StateReplicate match=11 next=15 paused inflight=3[full]".
func (pr *Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s match=%d next=%d", pr.State, pr.Match, pr.Next)
	if pr.IsLearner {
		b.WriteString(" learner")
	}
	if pr.IsPaused() {
		b.WriteString(" paused")
	}
	if pr.PendingSnapshot > 0 {
		fmt.Fprintf(&b, " pendingSnap=%d", pr.PendingSnapshot)
	}
	if !pr.RecentActive {
		b.WriteString(" inactive")
	}
	if in := pr.Inflights; in != nil && in.Count() > 0 {
		fmt.Fprintf(&b, " inflight=%d", in.Count())
		if in.Full() {
			b.WriteString("[full]")
		}
	}
	return b.String()
}

// ProgressMap holds the progress of every tracked peer, keyed by peer ID.
type ProgressMap map[uint64]*Progress

// String formats the map as one "ID: progress" line per peer, sorted by ID,
// each line ending in a newline.
func (m ProgressMap) String() string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%d: %s\n", id, m[id])
	}
	return b.String()
}
