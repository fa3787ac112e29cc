// Package wal is a durable raft.Storage: a write-ahead log in a directory
// that survives process crashes and restarts. The raft core does no I/O;
// this package is the battery that does it for applications that do not
// bring their own storage.
//
// # Using it
//
// Open the directory, hand the Storage to raft.Config.Storage, and in the
// Ready loop call Save(rd.HardState, rd.Entries, rd.Snapshot) before
// sending rd.Messages; Save returns once what raft.MustSync requires is on
// disk. With Config.AsyncStorageWrites, give the MsgStorageAppend messages
// to an AppendThread (or call PersistAppends) and deliver the responses it
// returns; they are released only after the fsync. Compact and
// CreateSnapshot work as on raft.MemoryStorage, and the log can be read
// back through the raft.Storage methods after a restart.
//
// # Layout
//
// The directory holds:
//
//   - LOCK, flock'ed exclusively while a Storage has the directory open;
//   - segments, 0000000000000001.wal, 0000000000000002.wal, ...: the log,
//     appended to the newest one only; past it, the next segment's file,
//     prepared ahead without a header (the spare);
//   - at most one snapshot file, <term>-<index>.snap (hex), holding the
//     latest snapshot unless that snapshot is small enough to live in its
//     log record;
//   - transiently, *.tmp files, written and then renamed into place, and
//     the files of compacted segments kept for reuse (*.recycled.tmp).
//
// Everything is a sequence of records: a 4-byte length, a 1-byte type, a
// CRC32C (Castagnoli) of length, type and payload, and the payload; in a
// segment, every record after the header has its CRC started from the
// segment's sequence number, so that a reused file's old records never
// pass for the new segment's (format version 2). A segment starts with a header record that names it and carries a
// checkpoint of the log's state (compaction point, last index, HardState,
// snapshot reference) at the time it was started; after that come batches.
// A batch is the records of one write (a snapshot reference, entries, a
// HardState, a compaction) closed by a batch-end record; recovery applies a
// batch only when it has read its end, so a Save is atomic across crashes:
// a torn Save never keeps its entries while losing the HardState written
// with them (TestTornSaveKeepsEntriesWithTheirHardState). Since recovery
// keeps a prefix of the batches, a commit-only HardState written without a
// sync is durable as soon as any later Save is. raft relies on both: a node
// whose entries outlive their commit index can restart configurations
// behind (see restart_commit.go in the raft package).
// Snapshot files are a single record; the log's snapshot record carries the
// file payload's checksum and length as well. A snapshot taken by
// CreateSnapshot with at most 64 KiB of data is written in its snapshot
// record instead, and the segment holding that record is kept while the
// snapshot is the latest.
//
// # Durability and recovery
//
// Writes go to the file at once and are fsynced (fdatasync) when the write
// needs it (raft.MustSync, snapshots, compaction before deleting segments)
// and on request (Sync). Concurrent writers share fsyncs: while one fsync
// runs, later writes queue behind it and the next fsync covers them all.
//
// Open replays every segment and checks every checksum. A partial batch at
// the end of the newest segment, the trace of a write a crash interrupted,
// is cut off. Any other damage (a bad checksum in a sealed segment, a bad
// record followed by complete batches, a record that contradicts the log, a
// missing segment or snapshot file) makes Open fail with a
// *CorruptionError naming the file and the offset: dropping it could lose
// an acknowledged entry, so the decision is left to an operator.
//
// A segment is sealed (truncated to its data and fsynced) when it reaches
// Options.SegmentSize and a new one is started; new segments are
// preallocated with fallocate so that appends do not change the file size.
// The next segment's file is created under its own name, preallocated and
// made durable with its directory entry ahead, by a goroutine of the
// Storage once the active one is half full, so that rotation, under the
// write lock, only writes its header and data-syncs it. Recovery deletes
// a last segment that holds a torn copy of the header rotation would have
// written, zeros, and no record of its own past them: a spare a crash left
// unused. Segments holding only entries below the compaction point are
// retired after the compaction (or snapshot) is durable, oldest first, by
// a goroutine of the Storage, so that Compact and CreateSnapshot do not
// make their caller wait for the file system (Close finishes a pending
// removal): up to Options.RecycleSegments of their files are kept and made
// the next spares (their start zeroed, no unlink, no new allocation), the
// others deleted. Because each segment header carries a checkpoint,
// recovery can start at any segment.
//
// # Memory
//
// The in-memory index stores, per run of consecutive entries in a segment,
// the offset of every 32nd entry, and the term only where it changes: about
// 0.25 bytes per entry. Entry payloads are kept only for the newest entries
// (Options.CacheSize bytes); older ones are read back from their segment,
// their checksums verified again. The latest snapshot is kept in memory.
// Recovery reads one segment at a time.
//
// Raft itself keeps the entries it still needs in memory and reads Storage
// mostly below that (a lagging follower, a restart). It reads the log's
// bounds often, through raft.StorageBounds, which Storage implements
// without taking its lock (LogBounds).
//
// # Platform
//
// Linux only: the package relies on flock(2) for the directory lock,
// fallocate(2) and fdatasync(2). On other systems Open fails.
package wal
