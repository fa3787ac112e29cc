package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"sort"

	"github.com/anishathalye/porcupine"
)

// StateMachine is application logic that raft's log drives: the thing a
// user of the simulator wants to prove correct under faults. The simulator
// keeps one per node incarnation, feeds it the node's committed writes in
// log order, asks it to answer reads once they are linearizable, and moves
// its state through raft snapshots (log compaction, snapshots sent to
// lagging followers, restarts after crashes).
//
// The simulator runs every node on one goroutine, so implementations need
// no locking. They must be deterministic: two instances fed the same
// writes answer the same (that is what replication relies on).
type StateMachine interface {
	// Apply executes one committed write, given as the Input its
	// Workload decoded from the log entry, and returns the Output the
	// client is told (porcupine checks it against the Workload's model).
	// Each write reaches Apply at most once per state: the simulator
	// drops re-proposals and network duplicates by client sequence
	// number before calling it, and answers them with the output the
	// write got when it first took effect.
	Apply(input interface{}) (output interface{})
	// Read answers a read operation (an Op with Read set) from the state
	// as applied so far. The simulator calls it only after the state
	// machine has applied everything up to the read's ReadIndex, which is
	// what makes the read linearizable; it must not change the state.
	Read(input interface{}) (output interface{})
	// Snapshot encodes the whole state. The bytes travel in raft
	// snapshots and come back through Restore, possibly on another node.
	Snapshot() []byte
	// Restore replaces the whole state with that of a Snapshot's bytes.
	// It is called on a fresh state machine when a node (re)starts from
	// its disk, and on the running one when raft installs a snapshot.
	Restore(data []byte) error
}

// Op is one client operation, as a Workload draws it.
type Op struct {
	// Input is what the client asks: porcupine's input, the argument of
	// StateMachine.Read for reads, and for writes what Workload.Encode
	// carries through the log to StateMachine.Apply. Its %v form appears
	// in the trace, so a String method makes traces readable.
	Input interface{}
	// Read sends the operation through ReadIndex (safe or lease-based,
	// as the seed chose) to StateMachine.Read instead of proposing it.
	Read bool
}

// Call is a write as it travels through the log: the client that issued
// it, the client's sequence number for it (from 1, one per operation),
// and the operation's input. Client and Seq make a write idempotent: a
// client that retries at another node proposes the same Call again, and
// only its first application takes effect.
type Call struct {
	Client int
	Seq    uint64
	Input  interface{}
}

// ClientState is what a Workload knows of the client it draws an
// operation for.
type ClientState struct {
	// ID is the client's number, from 1 to Clients.
	ID int
	// Seq is the sequence number the new operation will carry; earlier
	// operations of this client carried 1 to Seq-1.
	Seq uint64
	// Clients is the number of clients in the run.
	Clients int
}

// Workload is what the clients of a simulated cluster do to a state
// machine, and the specification their answers are checked against. The
// built-in key-value workload (KeyValue) is one; Options.Workload plugs in
// another, and the simulator then runs the same faults, invariant checks,
// crashes and linearizability check against it.
type Workload interface {
	// NewStateMachine returns a state machine in its initial state, the
	// one every node starts with.
	NewStateMachine() StateMachine
	// Model is the sequential specification that the history of client
	// operations (inputs from Op.Input, outputs from Apply and Read) is
	// checked against. A Partition function (e.g. by key) keeps the
	// check fast on long runs; without one, keep the state small.
	Model() porcupine.Model
	// Next draws a client's next operation. rng is the simulation's PRNG
	// and the only randomness Next may use, so that a seed keeps
	// reproducing the same run.
	Next(rng *rand.Rand, c ClientState) Op
	// Encode turns a write into the payload of a raft proposal; Decode
	// turns a committed entry's payload back into the Call, exactly. An
	// entry Decode rejects is reported as a violation.
	Encode(c Call) []byte
	Decode(data []byte) (Call, error)
	// LivenessWrite is the input of a write the simulator proposes after
	// the faults heal, to prove that the cluster makes progress again;
	// it is checked like any other write.
	LivenessWrite(seed int64) interface{}
}

// replica is a node's application state: the user's state machine, the
// client sessions that keep writes idempotent, and the log index applied.
// Sessions are replicated state like the rest, so they travel in
// snapshots with it. Invariant: applied is the index of the last log entry
// folded in, and sessions[c] is the highest Seq of client c applied.
type replica struct {
	sm       StateMachine
	sessions map[int]uint64
	applied  uint64
}

// newReplica restores a replica from snapshot data taken at index. A node
// added by a configuration change starts with an empty disk (no data): it
// starts from the initial state and raft sends it a snapshot.
func newReplica(w Workload, data []byte, index uint64) (*replica, error) {
	r := &replica{sm: w.NewStateMachine(), sessions: map[int]uint64{}, applied: index}
	if len(data) == 0 {
		return r, nil
	}
	if err := r.restore(data, index); err != nil {
		return nil, err
	}
	return r, nil
}

// apply folds in the write c committed at index, reporting whether it took
// effect (false for a duplicate of an applied write).
func (r *replica) apply(index uint64, c Call) (output interface{}, took bool) {
	r.applied = index
	if c.Seq <= r.sessions[c.Client] {
		return nil, false
	}
	r.sessions[c.Client] = c.Seq
	return r.sm.Apply(c.Input), true
}

// snapshotData frames the sessions and the state machine's own snapshot:
// a uvarint count of sessions, that many (client, seq) uvarint pairs in
// client order (so equal states encode equally), then the state machine's
// bytes.
func (r *replica) snapshotData() []byte {
	clients := make([]int, 0, len(r.sessions))
	for c := range r.sessions {
		clients = append(clients, c)
	}
	sort.Ints(clients)
	b := binary.AppendUvarint(nil, uint64(len(clients)))
	for _, c := range clients {
		b = binary.AppendUvarint(b, uint64(c))
		b = binary.AppendUvarint(b, r.sessions[c])
	}
	return append(b, r.sm.Snapshot()...)
}

var errSnapshotFrame = errors.New("truncated session table")

// restore replaces the replica's state with snapshot data taken at index.
// Every snapshot of a run is framed by snapshotData, the bootstrap one
// included, so data that does not parse is a violation.
func (r *replica) restore(data []byte, index uint64) error {
	n, k := binary.Uvarint(data)
	if k <= 0 {
		return fmt.Errorf("decoding a snapshot: %w", errSnapshotFrame)
	}
	data = data[k:]
	sessions := make(map[int]uint64, n)
	for i := uint64(0); i < n; i++ {
		c, k1 := binary.Uvarint(data)
		if k1 <= 0 {
			return fmt.Errorf("decoding a snapshot: %w", errSnapshotFrame)
		}
		seq, k2 := binary.Uvarint(data[k1:])
		if k2 <= 0 {
			return fmt.Errorf("decoding a snapshot: %w", errSnapshotFrame)
		}
		sessions[int(c)] = seq
		data = data[k1+k2:]
	}
	if err := r.sm.Restore(data); err != nil {
		return fmt.Errorf("decoding a snapshot: %w", err)
	}
	r.sessions, r.applied = sessions, index
	return nil
}
