/*
Package sim is a deterministic simulator of raft clusters, for finding
safety and liveness bugs under faults and reproducing them exactly.

A simulation runs 3, 5 or 7 RawNodes (more as configuration changes add
nodes) on the caller's goroutine. Every choice (which message is delivered
next, when time passes, which faults strike, what clients do, even raft's
election timeouts) is drawn from one PRNG seeded by Options.Seed, and no
wall clock is read, so a seed always produces the same run; the run's
trace hash (Stats.TraceHash) proves it.

# What happens in a run

Nodes follow the Ready contract of package raft, synchronously or with
AsyncStorageWrites (drawn per seed): persist, send, apply, Advance; or
hand the append and apply work to simulated storage threads and deliver
their responses when the work is done. Each node has a disk that holds
exactly what the contract made durable: a Ready's writes once persisted
(a HardState written with MustSync false stays buffered until the next
synced write), an append thread's writes once processed, and snapshots
the node took itself. A crash loses everything else, including the
append work not yet done; a crash in the middle of persisting (a torn
batch) keeps an arbitrary prefix of the batch (snapshot, then each entry,
then the HardState).

The workload: clients put, get, delete and compare-and-set keys of a
key-value store replicated through the log (KeyValue, the default; see
"Your own state machine" below for another), one operation at a time,
retrying at another node and giving up after a deadline; reads go
through ReadIndex, in ReadOnlySafe or, with CheckQuorum,
ReadOnlyLeaseBased mode, drawn per seed; an operator adds and removes learners and voters, replaces voters
(the leader too) through joint configurations with automatic or explicit
leaving, and transfers leadership; nodes snapshot and compact their logs,
and leaders send snapshots to followers that lag behind. Faults:
symmetric and asymmetric partitions and their healing, message drops,
duplicates, reordering and delays, crashes with restarts, torn writes.

Each node ticks from its own clock: at a rate drawn per seed, at most
(ElectionTick-1)/(ElectionTick-2) - 1 (12.5%) faster than the slowest,
the skew lease reads are meant to tolerate, and out of phase with the
others (Options.LockStepTicks ticks them all at once instead).

After the faulty phase (Options.Steps steps) the network heals and the
crashed nodes restart; within a bounded number of ticks a leader must
commit a fresh write that a quorum of its configuration applies.

# Invariants

After every step the simulator checks: at most one leader per term; log
matching (an index and term always pin the same entry and the same
previous term, checked as entries are written); leader completeness (a
leader's log holds every entry committed before it, and the entries it
counts as committed); state machine safety (every node applies the same
entry at each index, across restarts); every entry a leader counts as
committed is on the disks of a quorum of the configuration that counted
it, and stays on a quorum across crashes; the durable term and commit
index never go back and a durable vote never changes within a term; no
node grants two different votes in one term, across restarts; and the
quorums of consecutive committing configurations intersect; and lease
safety: no read is answered from a ReadOnlyLeaseBased leader's lease once
a leader of a later term exists (lease.go says how the simulator tells a
lease answer from a heartbeat round's). State
machine safety covers the application state too: the snapshots nodes
take when they compact at the same index must be identical. At the end
the history of client operations, with invocation and response steps, is
checked for linearizability with porcupine
(github.com/anishathalye/porcupine); operations whose clients gave up are
checked as ones that may or may not have happened.

# Your own state machine

Options.Workload puts application logic of your own under the same
faults, crashes, invariants and linearizability check. Implement a
StateMachine (apply a committed write, answer a read, snapshot and
restore the state) and a Workload around it (a fresh state machine, the
operations clients draw, how a write encodes into a proposal and back,
and the porcupine model of the answers):

	type add struct{ Delta int64 } // a write's input; a read's is read{}

	type counter struct{ total int64 }

	func (c *counter) Apply(in interface{}) interface{} { c.total += in.(add).Delta; return c.total }
	func (c *counter) Read(interface{}) interface{}     { return c.total }
	func (c *counter) Snapshot() []byte                 { return binary.AppendVarint(nil, c.total) }
	func (c *counter) Restore(b []byte) error           { c.total, _ = binary.Varint(b); return nil }

	// counterWorkload implements Workload: NewStateMachine, Next (one read
	// in three, else an add), Encode/Decode (client, seq and delta as
	// varints), Model (state: the total), LivenessWrite.

	st, err := sim.Run(sim.Options{Seed: seed, Workload: counterWorkload{}})
	// err is a *sim.Violation naming the seed, the step and the invariant.

The simulator handles what is the same for every application: client
sessions (a write retried at another node, or duplicated by the network,
reaches Apply once, and its duplicate is answered with the first
answer; the session table travels in snapshots next to the state
machine's bytes), routing reads through ReadIndex and serving them once
the state machine has caught up, and settling writes whose clients gave
up from what the nodes applied. Apply and Read must be deterministic,
and Snapshot must encode equal states as equal bytes. The counter, and a
counter with planted bugs that the simulator catches, are in
workload_test.go.

# Reproducing a failure

A violation is a *Violation: the seed, the step, the invariant, and the
recent events; running the same Options again reproduces it, and
Options.Trace shows every event. For the built-in workload, the test
replays a seed with

	go test ./rafttest/sim -run TestSimulation -sim.seed=N -sim.v

and prints the figures of a run over many seeds with

	go test ./rafttest/sim -run TestSimulation -sim.seeds=N -v

(-sim.soak runs many more). On failure the test also shrinks the schedule:
it cuts the run at the failing step and disables fault kinds one by one
(Options.Disable) while the same invariant still fails; disabled kinds
keep their random draws, so the rest of the schedule stays the same.
*/
package sim
