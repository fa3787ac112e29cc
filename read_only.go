package raft

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
)

// ReadState answers a ReadIndex request: once the application has applied
// the log up to Index, a read issued with the request's context RequestCtx
// observes every write committed before the request (thesis §6.4).
// Applications must match RequestCtx to their own requests.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

// ReadOnlyOption selects how the leader confirms that it is still leader
// when serving a ReadIndex request.
type ReadOnlyOption int

const (
	// ReadOnlySafe confirms leadership with a quorum of heartbeat answers
	// for every request. It is the default and the recommended option.
	ReadOnlySafe ReadOnlyOption = iota
	// ReadOnlyLeaseBased trusts the leader lease instead, and requires
	// CheckQuorum. The leader answers at once only while a quorum of voters
	// acknowledged a heartbeat it sent less than ElectionTick-2 of its ticks
	// ago, after it committed an entry of its term, and never in a term in
	// which it sent MsgTimeoutNow; otherwise the read takes a heartbeat
	// round, as with ReadOnlySafe (answered later, never refused). Followers
	// that honour a lease refuse Campaign and ForgetLeader, and a node that
	// restarts with a term on disk ignores vote requests for ElectionTick
	// ticks (see lease.go).
	//
	// Clocks: the margin tolerates a voter whose ticks run up to
	// (ElectionTick-1)/(ElectionTick-2) - 1 faster than the leader's (12.5%
	// at ElectionTick 10; nodes tick out of phase, so the full ElectionTick
	// would be unsafe even at equal rates). Stalled ticks on the leader,
	// bursts of ticks on a voter (catching up after a pause), or ticks
	// fast-forwarded after a restart break the bound, and with it the
	// guarantee that reads are not stale.
	ReadOnlyLeaseBased
)

// readIndexStatus is a safe read request waiting for a quorum to confirm
// the leader: the request req, to be served at index (the commit index when
// it arrived), acks, the voters that confirmed so far (a set; it maps to
// bool because that is what quorum.VoteResult takes), round, the token its
// heartbeats carry, and ctx, the same token as the heartbeats' context
// (handed to the application with the messages, so never written after it
// is made).
//
// A local request's entry is copied into own, and req.Entries points
// there: a RawNode leader steps its reads from a buffer of its own (see
// RawNode.ReadIndex), and only the entry's Data, the application's
// context, leaves raft (in the ReadState). A forwarded request keeps the
// entries it came with, which go back to the follower in the answer.
type readIndexStatus struct {
	index uint64
	acks  map[uint64]bool
	req   pb.Message
	own   [1]pb.Entry
	round roundID
	ctx   []byte
	// seq is the round's sequence number (see readOnly's invariants);
	// hash is the request context's hash, and sameHash the next pending
	// status whose context has the same hash.
	seq      uint64
	hash     uint64
	sameHash *readIndexStatus
}

// context is the request's context, which identifies it.
func (rs *readIndexStatus) context() []byte { return rs.req.Entries[0].Data }

// roundID is a read round's token (see roundToken).
type roundID [16]byte

// readOnly is a leader's queue of safe read requests, each known by its
// context (the data of its single entry) and by its round token.
//
// Heartbeats confirming a read carry the request's round token, not the
// application's context (etcd/raft v3.6 sends the context itself). The
// token names one registration of one request by this leader in this term,
// so a heartbeat answer can confirm only the registration it was sent for:
// a late answer to an earlier round, for a read already served under the
// same context, finds no pending round and is ignored, where matching by
// context would let it confirm a later retry before any heartbeat of that
// retry was answered (a stale read; etcd fixed this after v3.6). Followers
// echo the context unread, so the change is invisible to them.
//
// Nothing here allocates per read in steady state: statuses are recycled,
// round tokens are cut from shared chunks, pending contexts are found
// through their hashes (a map of uint64 keys, no string per request), and
// rounds by their position in the queue.
//
// Invariants:
//  1. queue holds the pending statuses in arrival order, each once, and
//     their rounds were registered in that order with consecutive
//     sequence numbers: queue[k].seq == queue[0].seq+k. (A duplicate gets
//     no round of its own, and requests leave from the front only.)
//  2. byHash[h] heads the chain, linked by sameHash, of the pending
//     statuses whose context hashes to h; no two of them have equal
//     contexts.
type readOnly struct {
	queue  []*readIndexStatus
	byHash map[uint64]*readIndexStatus
	option ReadOnlyOption
	// rounds counts the registrations of this readOnly, which lives for one
	// term of one node (raft.reset replaces it), so that (term, rounds)
	// never repeats.
	rounds uint64
	// tokens is the unused rest of the chunk that round tokens are cut
	// from; a token is never written after it is cut.
	tokens []byte

	// spare holds served requests' statuses for startRound to reuse, acks
	// map and all; done is confirm's result array, reused by the next
	// confirm. Both are private to the leader: statuses never leave raft,
	// and the caller of confirm is done with its result before the next
	// call (see confirm and recycle).
	spare []*readIndexStatus
	done  []*readIndexStatus
}

// contextSeed seeds the hash of read contexts. Forwarded reads come from
// peers, so the seed is random (per process), to keep colliding contexts
// from being chosen in advance; collisions cost time, never correctness
// (contexts are compared in full).
var contextSeed = maphash.MakeSeed()

// tokenChunk is how many round tokens one allocation holds.
const tokenChunk = 64

// newReadQueue returns an empty queue for reads served as option says.
func newReadQueue(option ReadOnlyOption) *readOnly {
	return &readOnly{option: option, byHash: make(map[uint64]*readIndexStatus)}
}

// startRound queues request m, to be served at index, under a new round of
// term, and returns its status. A request whose context is already queued
// is a duplicate: it is not queued again, and the pending status is
// returned, so that the retry's heartbeats help the original round. Only
// the entries of a forwarded request (From not None or self) are kept.
func (ro *readOnly) startRound(index uint64, m *pb.Message, self, term uint64) *readIndexStatus {
	return ro.startHashedRound(maphash.Bytes(contextSeed, m.Entries[0].Data), index, m, self, term)
}

// startHashedRound is startRound for a request whose context hashes to h.
func (ro *readOnly) startHashedRound(h, index uint64, m *pb.Message, self, term uint64) *readIndexStatus {
	data := m.Entries[0].Data
	for rs := ro.byHash[h]; rs != nil; rs = rs.sameHash {
		if bytes.Equal(rs.context(), data) {
			return rs
		}
	}
	rs := ro.takeSpare()
	rs.index, rs.req = index, *m
	if m.From == None || m.From == self {
		rs.own[0] = m.Entries[0]
		rs.req.Entries = rs.own[:]
	}
	ro.rounds++
	rs.seq, rs.round = ro.rounds, roundToken(term, ro.rounds)
	rs.ctx = ro.cutToken(rs.round)
	rs.hash, rs.sameHash = h, ro.byHash[h]
	ro.byHash[h] = rs
	ro.queue = append(ro.queue, rs)
	return rs
}

// cutToken returns a copy of round in a slice of its own (capped), cut
// from the current chunk.
func (ro *readOnly) cutToken(round roundID) []byte {
	n := len(round)
	if len(ro.tokens) < n {
		ro.tokens = make([]byte, tokenChunk*n)
	}
	tok := ro.tokens[:n:n]
	ro.tokens = ro.tokens[n:]
	copy(tok, round[:])
	return tok
}

// roundToken encodes a read round as the context its heartbeats carry:
// term and sequence number, 16 bytes, never zero since seq starts at 1 (an
// empty context means "no read" to handleHeartbeatResp, and the zero
// roundID "none" to lastPendingRound's callers).
func roundToken(term, seq uint64) roundID {
	var b roundID
	binary.BigEndian.PutUint64(b[:8], term)
	binary.BigEndian.PutUint64(b[8:], seq)
	return b
}

// roundOf is the round a heartbeat context names, if it can name one.
func roundOf(ctx []byte) (roundID, bool) {
	var id roundID
	if len(ctx) != len(id) {
		return id, false
	}
	copy(id[:], ctx)
	return id, true
}

// takeSpare returns an empty status, a recycled one if there is one.
func (ro *readOnly) takeSpare() *readIndexStatus {
	n := len(ro.spare)
	if n == 0 {
		return &readIndexStatus{acks: make(map[uint64]bool, 1)}
	}
	rs := ro.spare[n-1]
	ro.spare[n-1] = nil
	ro.spare = ro.spare[:n-1]
	return rs
}

// maxSpareReads bounds how many served statuses readOnly keeps for reuse:
// enough for a burst of reads per heartbeat round, not a growing cache.
const maxSpareReads = 16

// recycle takes back the statuses of served requests (the result of the
// last confirm, which the caller no longer uses), emptied so that they hold
// on to no request.
func (ro *readOnly) recycle(served []*readIndexStatus) {
	for i, rs := range served {
		if len(ro.spare) < maxSpareReads {
			clear(rs.acks)
			*rs = readIndexStatus{acks: rs.acks}
			ro.spare = append(ro.spare, rs)
		}
		served[i] = nil
	}
}

// pendingRound returns the pending status of the round that token round
// names, or nil. By invariant 1 its place in the queue follows from its
// sequence number; the whole token is compared, term included.
func (ro *readOnly) pendingRound(round []byte) *readIndexStatus {
	key, ok := roundOf(round)
	if !ok || len(ro.queue) == 0 {
		return nil
	}
	k := binary.BigEndian.Uint64(key[8:]) - ro.queue[0].seq // wraps if older
	if k >= uint64(len(ro.queue)) || ro.queue[k].round != key {
		return nil
	}
	return ro.queue[k]
}

// confirm records that id confirmed leadership for the request of round
// token round. Once the round's confirmations win voters' vote, it removes
// and returns, in order, that request and every request queued before it:
// a confirmation of leadership at some point confirms it for all earlier
// requests too. It returns nil otherwise, and for a round that is not
// pending. The result is valid until the next call; the caller hands it
// back through recycle.
func (ro *readOnly) confirm(id uint64, round []byte, voters quorum.JointConfig) []*readIndexStatus {
	target := ro.pendingRound(round)
	if target == nil {
		return nil
	}
	target.acks[id] = true
	if voters.VoteResult(target.acks) != quorum.VoteWon {
		return nil
	}
	return ro.takeThrough(target)
}

// takeThrough removes and returns, in order, the queued requests up to and
// including target.
func (ro *readOnly) takeThrough(target *readIndexStatus) []*readIndexStatus {
	done := ro.done[:0]
	for i, rs := range ro.queue {
		ro.unlink(rs)
		done = append(done, rs)
		if rs == target {
			ro.dropServed(i + 1)
			break
		}
	}
	ro.done = done
	return done
}

// unlink removes rs from its hash chain (invariant 2).
func (ro *readOnly) unlink(rs *readIndexStatus) {
	if head := ro.byHash[rs.hash]; head == rs {
		if rs.sameHash == nil {
			delete(ro.byHash, rs.hash)
		} else {
			ro.byHash[rs.hash] = rs.sameHash
		}
	} else {
		for prev := head; prev != nil; prev = prev.sameHash {
			if prev.sameHash == rs {
				prev.sameHash = rs.sameHash
				break
			}
		}
	}
	rs.sameHash = nil
}

// dropServed removes the first n requests from the queue. An emptied queue
// starts again at the front of its array, so that a steady trickle of reads
// does not keep moving it to fresh arrays.
func (ro *readOnly) dropServed(n int) {
	if n < len(ro.queue) {
		clear(ro.queue[:n])
		ro.queue = ro.queue[n:]
		return
	}
	clear(ro.queue)
	ro.queue = ro.queue[:0]
}

// lastPendingRound is the heartbeat context of the latest queued request's
// round, or nil.
func (ro *readOnly) lastPendingRound() []byte {
	if n := len(ro.queue); n > 0 {
		return ro.queue[n-1].ctx
	}
	return nil
}

// handleReadIndex serves a read request on the leader. A single voter
// answers at once; otherwise the request waits until the leader has
// committed an entry of its own term, since until then its commit index
// may trail its predecessor's.
func (r *raft) handleReadIndex(m *pb.Message) {
	switch {
	case r.trk.IsSingleton():
		r.answerRead(m, r.log.committed)
	case !r.committedInTerm():
		// Kept past this step: the entries must be the message's own (a
		// RawNode leader steps its reads from a buffer it reuses).
		deferred := *m
		deferred.Entries = append([]pb.Entry(nil), m.Entries...)
		r.pendingReadIndexMessages = append(r.pendingReadIndexMessages, deferred)
	default:
		r.serveRead(m)
	}
}

// committedInTerm reports whether the entry at the commit index is of the
// current term. (A leader's term is never 0, so an unknown term, reported
// as 0, never matches.)
func (r *raft) committedInTerm() bool {
	return r.log.termOrZero(r.log.committed) == r.Term
}

// serveDeferredReads serves the requests deferred until the leader
// committed in its term. The caller has just seen that happen; the cheap
// emptiness test comes first because the term check reads the log.
func (r *raft) serveDeferredReads() {
	if len(r.pendingReadIndexMessages) > 0 && !r.committedInTerm() {
		r.logger.Error("pending MsgReadIndex should be released only after first commit in current term")
		return
	}
	for len(r.pendingReadIndexMessages) > 0 {
		next := r.pendingReadIndexMessages[0]
		r.pendingReadIndexMessages = r.pendingReadIndexMessages[1:]
		r.serveRead(&next)
	}
	r.pendingReadIndexMessages = nil
}

// serveRead serves m at the current commit index: in lease mode right
// away, in safe mode once a quorum confirms leadership through a heartbeat
// round (the leader's own confirmation counts at once).
func (r *raft) serveRead(m *pb.Message) {
	readIndex := r.log.committed
	switch r.readOnly.option {
	case ReadOnlyLeaseBased:
		if r.leaseValid() {
			r.answerRead(m, readIndex)
			return
		}
	case ReadOnlySafe:
	default:
		return
	}
	rs := r.readOnly.startRound(readIndex, m, r.id, r.Term)
	rs.acks[r.id] = true
	r.beat(rs.ctx)
}

// answerRead answers req at readIndex: a local request becomes a
// ReadState, a forwarded one gets a MsgReadIndexResp back to its sender.
func (r *raft) answerRead(req *pb.Message, readIndex uint64) {
	if req.From == None || req.From == r.id {
		r.addReadState(ReadState{Index: readIndex, RequestCtx: req.Entries[0].Data})
		return
	}
	resp := pb.Message{Type: pb.MsgReadIndexResp, To: req.From, Index: readIndex, Entries: req.Entries}
	r.send(&resp)
}

// handleReadIndexResp records the leader's answer to a forwarded read.
func (r *raft) handleReadIndexResp(m *pb.Message) {
	if len(m.Entries) != 1 {
		r.logger.Errorf("%x invalid format of MsgReadIndexResp from %x, entries count: %d", r.id, m.From, len(m.Entries))
		return
	}
	r.addReadState(ReadState{Index: m.Index, RequestCtx: m.Entries[0].Data})
}

// readStateChunk is the room for read states that a full readStates grows
// by at least; see addReadState.
const readStateChunk = 8

// addReadState queues rs for the next Ready. A Ready takes the queued read
// states as a capped prefix of their array, and raft continues in the rest
// of it (RawNode.handOutReadStates), so the array serves several Readys;
// like the outboxes, it is only ever written past its length, so slots a
// Ready handed out are never written again, unless the application lends
// them back (RawNode.LendReadStates).
func (r *raft) addReadState(rs ReadState) {
	if len(r.readStates) == cap(r.readStates) {
		grown := make([]ReadState, len(r.readStates), 2*len(r.readStates)+readStateChunk)
		copy(grown, r.readStates)
		r.readStates = grown
	}
	r.readStates = append(r.readStates, rs)
}

// confirmReadsByHeartbeat is the heartbeat half of read confirmation: an
// answer to a heartbeat counts as m.From's confirmation of the read round
// its echoed context names (under ReadOnlyLeaseBased the context also
// carries the send tick, which renews the lease first), and once a quorum
// confirmed a round, that read and every one queued before it is served.
func (r *raft) confirmReadsByHeartbeat(m *pb.Message) {
	round := m.Context
	switch r.readOnly.option {
	case ReadOnlyLeaseBased:
		round = r.noteHeartbeatAnswer(m.From, round)
	case ReadOnlySafe:
	default:
		return
	}
	if len(round) == 0 {
		return
	}
	served := r.readOnly.confirm(m.From, round, r.trk.Voters)
	for _, rs := range served {
		r.answerRead(&rs.req, rs.index)
	}
	r.readOnly.recycle(served)
}
