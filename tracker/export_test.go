package tracker

// SentCommitOf exposes the unexported sent-commit index to the external
// tests, which otherwise could only infer it through CanBumpCommit.
func SentCommitOf(pr *Progress) uint64 { return pr.sentCommit }
