package quorum

import "github.com/raftkit/raft/internal/commitrule"

// StackVoters lets the external tests size configurations around the
// threshold at which CommittedIndex stops gathering indexes on the stack.
const StackVoters = commitrule.StackVoters
