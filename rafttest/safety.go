package rafttest

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"sync"
	"weak"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// The safety checker keeps, per environment, what it has seen so far: the
// leader of each term and each node's highest commit index. InteractionEnv's
// fields are fixed by compatibility, so that memory lives in a side table
// keyed weakly by the environment and dropped when the environment is
// collected.
var (
	ledgersMu sync.Mutex
	ledgers   = map[weak.Pointer[InteractionEnv]]*safetyLedger{}
)

// safetyLedger is the checker's memory of one environment.
type safetyLedger struct {
	leaders map[uint64]uint64 // term -> the node seen leading it
	commits map[uint64]uint64 // node ID -> highest commit index seen
}

func (env *InteractionEnv) ledger() *safetyLedger {
	key := weak.Make(env)
	ledgersMu.Lock()
	defer ledgersMu.Unlock()
	if l, ok := ledgers[key]; ok {
		return l
	}
	l := &safetyLedger{leaders: map[uint64]uint64{}, commits: map[uint64]uint64{}}
	ledgers[key] = l
	runtime.AddCleanup(env, func(k weak.Pointer[InteractionEnv]) {
		ledgersMu.Lock()
		delete(ledgers, k)
		ledgersMu.Unlock()
	}, key)
	return l
}

// durableLog is what the checker reads of one node's storage: the terms
// of indexes base..last (base being the snapshot index, whose term storage
// still knows), the entries above base, and the durable commit index.
type durableLog struct {
	id      uint64
	base    uint64
	terms   []uint64   // terms[i] is the term at index base+i
	entries []pb.Entry // entries[i] is at index base+1+i
	commit  uint64
}

func (l *durableLog) last() uint64 { return l.base + uint64(len(l.terms)) - 1 }

func (l *durableLog) term(i uint64) uint64 { return l.terms[i-l.base] }

// entry returns the entry at index i, if it is above the snapshot.
func (l *durableLog) entry(i uint64) (pb.Entry, bool) {
	if i <= l.base {
		return pb.Entry{}, false
	}
	return l.entries[i-l.base-1], true
}

func readDurableLog(id uint64, s raft.Storage) (*durableLog, error) {
	first, last, err := storageBounds(s)
	if err != nil {
		return nil, err
	}
	hs, _, err := s.InitialState()
	if err != nil {
		return nil, err
	}
	l := &durableLog{id: id, base: first - 1, commit: hs.Commit}
	for i := l.base; i <= last; i++ {
		t, err := s.Term(i)
		if err != nil {
			return nil, err
		}
		l.terms = append(l.terms, t)
	}
	if last >= first {
		if l.entries, err = s.Entries(first, last+1, math.MaxUint64); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// checkSafety checks Raft's safety properties across the group and returns
// a description of each violation:
//
//  1. Election safety: at most one node ever leads a given term (over the
//     whole life of the environment, not just now).
//  2. Commit indexes never decrease.
//  3. Log matching, on durable logs: if two logs hold an entry with the
//     same index and term, they hold identical entries up to that index.
//  4. State machine safety, on durable logs: below both nodes' durable
//     commit indexes the two logs agree.
func (env *InteractionEnv) checkSafety() []string {
	var out []string
	led := env.ledger()
	logs := make([]*durableLog, 0, len(env.Nodes))
	for i := range env.Nodes {
		n := &env.Nodes[i]
		st := n.BasicStatus()
		if st.RaftState == raft.StateLeader {
			if prev, ok := led.leaders[st.Term]; ok && prev != st.ID {
				out = append(out, fmt.Sprintf("term %d has two leaders: %d and %d", st.Term, prev, st.ID))
			} else {
				led.leaders[st.Term] = st.ID
			}
		}
		if prev := led.commits[st.ID]; st.Commit < prev {
			out = append(out, fmt.Sprintf("node %d's commit index went back from %d to %d", st.ID, prev, st.Commit))
		}
		led.commits[st.ID] = max(led.commits[st.ID], st.Commit)
		l, err := readDurableLog(st.ID, n.Storage)
		if err != nil {
			out = append(out, fmt.Sprintf("node %d: reading the durable log: %v", st.ID, err))
			continue
		}
		logs = append(logs, l)
	}
	for i, a := range logs {
		for _, b := range logs[i+1:] {
			out = append(out, compareLogs(a, b)...)
		}
	}
	return out
}

// compareLogs checks properties 3 and 4 for one pair of durable logs, over
// the indexes both know the term of.
func compareLogs(a, b *durableLog) []string {
	lo, hi := max(a.base, b.base), min(a.last(), b.last())
	if lo > hi {
		return nil
	}
	// The highest index where the terms agree: by log matching, everything
	// at or below it must agree as well.
	match := uint64(0)
	for i := hi; i >= lo && i > 0; i-- {
		if a.term(i) == b.term(i) {
			match = i
			break
		}
	}
	committed := min(a.commit, b.commit, hi)
	var out []string
	for i := lo; i <= max(match, committed) && i <= hi; i++ {
		if i == 0 {
			continue
		}
		if ta, tb := a.term(i), b.term(i); ta != tb {
			why := "log matching"
			if i <= committed {
				why = "committed entries disagree"
			}
			out = append(out, fmt.Sprintf("%s: index %d has term %d on node %d but term %d on node %d (agreeing at %d)",
				why, i, ta, a.id, tb, b.id, match))
			break
		}
		ea, okA := a.entry(i)
		eb, okB := b.entry(i)
		if okA && okB && (ea.Type != eb.Type || !bytes.Equal(ea.Data, eb.Data)) {
			out = append(out, fmt.Sprintf("log matching: entry %d/%d differs between node %d (%s) and node %d (%s)",
				ea.Term, i, a.id, raft.DescribeEntry(ea, formatData), b.id, raft.DescribeEntry(eb, formatData)))
			break
		}
	}
	return out
}
