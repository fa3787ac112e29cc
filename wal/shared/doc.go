// Package shared is a write-ahead log that hosts many Raft groups in one
// set of files: a process running thousands of groups pays one append and
// one fsync per batch of their writes, not one per group.
//
// # Using it
//
// Open the directory, create groups with CreateGroup (or find them after a
// restart with GroupIDs and Group), and give each group's view, a *Group,
// to its RawNode as raft.Config.Storage. A host that handles the Readys of
// many groups in one round persists them with one SaveBatch call, a
// GroupUpdate (HardState, entries, snapshot) per group, before sending any
// of their messages; SaveBatch returns once what raft.MustSync requires of
// any group in the batch is on disk. Hosts with several workers may call
// SaveBatch concurrently: their fsyncs are shared. Each view also has the
// single-group writes of raft.MemoryStorage (Append, SetHardState,
// ApplySnapshot, CreateSnapshot, Compact) and Save. With
// raft.Config.AsyncStorageWrites, AppendUpdate turns each MsgStorageAppend
// into a GroupUpdate; its responses are delivered once SaveBatch returns.
//
// # Layout
//
// The directory holds LOCK (flock'ed while open), segments
// 0000000000000001.swal, ... appended to the newest only, and snap/, one
// file per group with a snapshot, <group>-<term>-<index>.snap (hex). While
// open it may also hold spare.tmp, the next segment prepared ahead (see
// Options.NoPreallocate); like every temporary file, recovery deletes it.
//
// Records are framed as in package wal (length, type, CRC32C over all of
// it, payload). A segment starts with a header record: the checkpoint of
// every live group at the time (compaction point, last index, HardState,
// snapshot reference). Then come batches: the records of one write, each
// naming its group (create, remove, entry, HardState, snapshot, compact),
// closed by a batch-end record giving the batch's start and record count.
// Recovery applies a batch only when it has read its end, so a batch is
// atomic for every group in it: a torn write never keeps one group's
// entries while losing the HardState written with them, for any group
// (TestTornBatchEveryGroupBeforeOrAfter). A commit-only HardState written
// without a sync becomes durable with any later synced batch, since
// recovery keeps a prefix of the batches.
//
// # Recovery
//
// Open replays every segment from the oldest: its header gives the starting
// state of every group, later headers must agree with what was replayed. A
// partial batch at the end of the newest segment is cut off; any other
// damage (a bad checksum in a sealed segment, a bad record followed by
// complete batches, a record that contradicts its group's log, a missing
// segment or snapshot file) fails Open with a *CorruptionError naming the
// file and offset. Snapshot files are checked for presence and size at
// Open and fully (checksum, metadata) when read.
//
// # Reclaiming space
//
// A segment can be deleted once no live group has a live entry in it
// (entries above its compaction point): compaction, snapshot installs and
// group removal free segments, and since every segment header carries all
// checkpoints, recovery may start at any segment. Before deleting, the WAL
// syncs, so the records that made the segment dead are on disk; it deletes
// oldest first, so a crash part way leaves a valid suffix. One freed
// segment may be renamed to spare.tmp instead, to be zeroed and reused as
// the next segment: to recovery the same as deleted.
//
// One idle group that never compacts would hold the oldest segment, and
// every segment after it, forever. So when a rotation leaves more than
// Options.MaxSegments segments, the groups with live entries in the oldest
// segment get their whole live log appended again (entries rewritten with
// their own index and term leave the log unchanged, now located in the
// active segment), and the oldest segments are deleted. A group with more
// than 4096 live entries, or more than a quarter of Options.SegmentSize of
// them, is not rewritten: it holds its segments until it compacts. A removed group's entries are dead at once; its snapshot file
// is deleted when the removal is durable, and its segments go with the
// first collection that finds them unneeded.
//
// # Memory and disk per group
//
// Per group: its state (about 300 bytes plus the ConfState), 8 bytes per
// live entry (segment and offset of its record; entries of other groups
// interleave, so a sparse index would have to scan them), a term per run
// of equal terms, and a cache of its newest entries (Options.GroupCacheSize
// per group, Options.CacheSize over all groups). Snapshot data stays on
// disk. An idle group that has compacted its log holds no entries and no
// cache: about 460 bytes of heap each, measured over 10,000 groups
// (TestIdleGroupMemory). Each segment header repeats every group's
// checkpoint, about 75 bytes per group without a ConfState: 750 KB for
// 10,000 groups, against the 64 MiB default segment. Recovery reads one
// segment at a time; for 10,000 groups of 20 entries in 15 segments it
// takes about 210 ms of CPU (BenchmarkRecover).
//
// # Serving a multi-group host
//
// A host whose storage interface is "open a group's raft.Storage, save a
// batch of updates, remove a group" maps onto OpenGroup, SaveBatch (one
// GroupUpdate per update) and RemoveGroup. SaveBatch decides for itself
// which updates need an fsync (raft.MustSync), so a MustSync flag computed
// by the host can be ignored.
//
// # Platform
//
// Linux only, like package wal, whose file primitives it uses.
package shared
