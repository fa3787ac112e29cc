package multiraft

import (
	"sync/atomic"
	"time"
)

type hostStats struct {
	rounds, groupsRun, batchesOut, itemsOut, batchesIn, pings atomic.Uint64
	itemsDropped, stepErrors, propsDropped                    atomic.Uint64
	quiesces, wakes, compactsRefused, peersDown               atomic.Uint64
	heartbeatsOut, saves                                      atomic.Uint64
	// Nanoseconds the rounds spent per phase (Stats.RoundStep ...).
	stepNanos, saveNanos, applyWaitNanos atomic.Int64
}

// Stats are a host's counters since it started.
type Stats struct {
	// Rounds is the number of worker rounds (each a batch of groups);
	// GroupsRun counts the groups they processed, so GroupsRun/Rounds is
	// the mean number of groups per round (per Storage.SaveBatch).
	Rounds, GroupsRun uint64
	// Saves counts the saver's Storage.SaveBatch calls (AsyncSaves; the
	// rounds' own saves otherwise, one per round, are not counted).
	Saves uint64
	// BatchesOut and ItemsOut count the batches sent (one per peer host
	// per round) and the items they carried: a group's message, or a
	// batch's list of coalesced heartbeats (or of their answers), which
	// counts once however many groups it carries; CoalescedHeartbeats
	// counts the heartbeats and answers those lists carried. Pings counts
	// the liveness pings (empty batches).
	BatchesOut, ItemsOut, Pings, CoalescedHeartbeats uint64
	// BatchesIn counts batches received.
	BatchesIn uint64
	// ItemsDropped counts received items refused (unknown group, bad
	// sender or receiver); StepErrors counts messages raft refused;
	// ProposalsDropped counts proposals raft refused (no leader, ...).
	ItemsDropped, StepErrors, ProposalsDropped uint64
	// Quiesces and Wakes count the groups that stopped and resumed
	// ticking.
	Quiesces, Wakes uint64
	// CompactsRefused counts Compact requests the worker dropped.
	CompactsRefused uint64
	// PeersDown counts the times a peer host was declared failed (silent
	// for HostTimeoutTicks).
	PeersDown uint64
	// Groups and Awake are the numbers of groups, and of those ticking.
	Groups, Awake int
	// RoundStep, RoundSave and RoundApplyWait are the time the rounds
	// spent, in all, stepping their groups (from a round's start to its
	// save, including the wait for MinSaveInterval while gathering more
	// groups), in Storage.SaveBatch (with the sends of what waited for
	// it), and waiting after the save for the entries applied during it;
	// over Rounds, a round's mean anatomy. Under AsyncSaves the rounds
	// do not save: only RoundStep counts.
	RoundStep, RoundSave, RoundApplyWait time.Duration
}

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	s := &h.stats
	h.mu.Lock()
	groups, awake := len(h.groups), len(h.awake)
	h.mu.Unlock()
	return Stats{
		Rounds: s.rounds.Load(), GroupsRun: s.groupsRun.Load(), Saves: s.saves.Load(), BatchesOut: s.batchesOut.Load(), ItemsOut: s.itemsOut.Load(),
		Pings: s.pings.Load(), CoalescedHeartbeats: s.heartbeatsOut.Load(), BatchesIn: s.batchesIn.Load(),
		ItemsDropped: s.itemsDropped.Load(), StepErrors: s.stepErrors.Load(),
		ProposalsDropped: s.propsDropped.Load(),
		Quiesces:         s.quiesces.Load(), Wakes: s.wakes.Load(),
		CompactsRefused: s.compactsRefused.Load(), PeersDown: s.peersDown.Load(),
		Groups: groups, Awake: awake,
		RoundStep:      time.Duration(s.stepNanos.Load()),
		RoundSave:      time.Duration(s.saveNanos.Load()),
		RoundApplyWait: time.Duration(s.applyWaitNanos.Load()),
	}
}
