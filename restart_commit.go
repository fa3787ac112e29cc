package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// A configuration takes effect in raftkit, as in etcd/raft, when the
// application applies it, not when it enters the log (the thesis, §4.1,
// uses the latest configuration in the log instead). That is safe only
// while every node's configuration is at most one change behind the latest
// committed one: two successive configurations share a quorum member
// (single changes alter one voter, joint consensus bridges larger ones),
// but configurations further apart may have disjoint quorums
// (etcd-io/etcd#7625). A node that refuses to campaign with committed but
// unapplied changes (hup) is covered, except across a restart: the node
// starts from its durable commit index, and if its storage kept entries
// but lost the commit index written with them (a torn batch, a commit-only
// HardState that was never synced), it restarts further behind than that,
// and with PreVote and CheckQuorum a lagging voter of the old configuration
// can still hand it an election counting a quorum the group has left.
//
// Invariant: in any log, every configuration change except the last one is
// committed. A leader appends a change only after it applied the previous
// change in its log (the pending-conf-index rule in confChangeRefusal; the
// leave-joint entry is appended on applying the enter-joint one), and an
// applied entry is committed. A log holding the later change holds the
// same entries as that leader's log up to it (log matching, §5.3), so the
// earlier changes in it are committed as well. The invariant rests on the
// validation of the leaders that appended the changes: with
// DisableConfChangeValidation it is the application's to keep, and the
// startup raise below is off.
//
// commitSettledConfChanges uses it at startup: the commit index rises to
// the second-to-last configuration change in the log, if that is above the
// durable commit index. The node then applies that change before it may
// campaign, so it is at most one configuration behind. Storage that keeps
// the invariant (every write of entries durable together with the commit
// index that came with them) never triggers it.

// commitSettledConfChanges raises the commit index of a node that has just
// loaded its state from storage to the index of the second-to-last
// configuration change above it, and reports whether it did. It does
// nothing when the leaders' conf change validation is turned off, since
// the invariant it relies on (above) then need not hold.
func (r *raft) commitSettledConfChanges() bool {
	if r.disableConfChangeValidation {
		return false
	}
	settled := r.settledConfChange()
	if settled <= r.log.committed {
		return false
	}
	r.logger.Infof("%x raising its commit index from %d to %d: a configuration change follows the one at %d in its log, so that one is committed",
		r.id, r.log.committed, settled, settled)
	r.log.raiseCommit(settled)
	return true
}

// settledConfChange returns the index of the second-to-last configuration
// change among the entries above the commit index, or 0 if fewer than two
// are there. Only that tail is read, in pages no larger than those handed
// out for applying; it is empty or short unless storage lost a commit
// index.
func (r *raft) settledConfChange() uint64 {
	l := r.log
	lo, hi := l.committed+1, l.last()+1
	if lo >= hi {
		return 0
	}
	var last, secondLast uint64
	err := l.pages(lo, hi, l.pacing.limit, func(ents []pb.Entry) error {
		for i := range ents {
			if isConfChangeEntry(&ents[i]) {
				last, secondLast = ents[i].Index, last
			}
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("raft: %x scanning the log [%d, %d) for configuration changes: %v", r.id, lo, hi, err))
	}
	return secondLast
}
