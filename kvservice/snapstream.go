package kvservice

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// Snapshots of a shard never pass through memory whole. The raft snapshot
// in the WAL holds only a descriptor (snapDescriptor); the state is in the
// store. A leader streams a follower the shard as of the snapshot's index
// from a Pebble snapshot it holds for that index (heldSnapshot), and the
// follower writes the stream to a file, then replaces the shard's key range
// with the file's keys, batch by batch. The stream:
//
//	"RKVSNAP1"
//	uvarint length, snapHeader (JSON)
//	header.Keys times: uvarint length, key, uvarint length, value
//	"END."

const (
	snapMagic   = "RKVSNAP1"
	snapTrailer = "END."
	// installBatchBytes is how much of a snapshot is written to the store
	// per batch while installing it.
	installBatchBytes = 4 << 20
	// snapDirName is the directory (under Config.Dir) for received
	// snapshots not yet installed.
	snapDirName = "snapshots"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapDescriptor is the Data of a raft snapshot of this service: it says
// the state is in the store and, for a snapshot received from a leader and
// not yet installed, which file holds it. Snapshots written before the
// store existed (and the first snapshot of a new cluster) hold a kvState in
// JSON instead; Format tells them apart.
//
// A ShardedServer's streamed shard snapshot (sharded_snap.go) also says
// where the state was taken: the applied index, the shard's estimated
// size and the member that took it.
type snapDescriptor struct {
	Format  string `json:"format"`
	Group   uint64 `json:"group"`
	File    string `json:"file,omitempty"`
	Applied uint64 `json:"applied,omitempty"`
	Size    uint64 `json:"size,omitempty"`
	Source  uint64 `json:"source,omitempty"`
}

func (d snapDescriptor) marshal() []byte {
	b, _ := json.Marshal(d)
	return b
}

// decodeDescriptor reports whether data is a descriptor (and not a kvState).
func decodeDescriptor(data []byte) (snapDescriptor, bool) {
	var d snapDescriptor
	if err := json.Unmarshal(data, &d); err != nil || d.Format != storeLayoutVersion {
		return d, false
	}
	return d, true
}

// snapHeader opens a snapshot stream. Index is the raft snapshot's; the
// state may be newer: a shard streamed from a Pebble snapshot taken when
// the stream starts holds what its leader applied by then, Applied
// (committed entries, so the same on every member; the follower skips
// them when raft hands them after the snapshot). Zero means Index.
type snapHeader struct {
	Group   uint64      `json:"group"`
	Index   uint64      `json:"index"`
	Applied uint64      `json:"applied,omitempty"`
	Keys    uint64      `json:"keys"`
	Config  shardConfig `json:"config"`
}

// applied is the index the stream's state is at.
func (h snapHeader) applied() uint64 { return max(h.Index, h.Applied) }

// heldSnapshot is a Pebble snapshot of a shard at a raft snapshot's index,
// kept while followers may need it. refs counts the holder and the streams
// reading it; the last release closes it.
type heldSnapshot struct {
	snap *pebble.Snapshot
	hdr  snapHeader
	refs atomic.Int32
}

func (h *heldSnapshot) release() {
	if h.refs.Add(-1) == 0 {
		h.snap.Close()
	}
}

// pin holds the shard's current state as the view followers are sent for a
// raft snapshot at applied. Only the loop calls it, with nothing applied
// since applied.
func (sh shard) pin(applied, keys uint64, cfg shardConfig) {
	h := &heldSnapshot{snap: sh.st.db.NewSnapshot(),
		hdr: snapHeader{Group: sh.group, Index: applied, Keys: keys, Config: cfg.clone()}}
	h.refs.Store(1)
	sh.st.mu.Lock()
	old := sh.st.held
	sh.st.held = h
	sh.st.mu.Unlock()
	if old != nil {
		old.release()
	}
}

// acquire returns the held view if it is at index.
func (st *stateStore) acquire(index uint64) (*heldSnapshot, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.held
	if h == nil || h.hdr.Index != index {
		held := uint64(0)
		if h != nil {
			held = h.hdr.Index
		}
		return nil, fmt.Errorf("kvservice: no state held for snapshot index %d (holding %d)", index, held)
	}
	h.refs.Add(1)
	return h, nil
}

// snapSource streams a held view; it implements transport.SnapshotSource.
type snapSource struct {
	h    *heldSnapshot
	sh   shard
	size uint64
	sum  uint32
}

// openSnapSource acquires the view for index and measures the stream (a
// first pass over the view, which does not change).
func (sh shard) openSnapSource(index uint64) (*snapSource, error) {
	h, err := sh.st.acquire(index)
	if err != nil {
		return nil, err
	}
	src := &snapSource{h: h, sh: sh}
	cw := &crcCounter{}
	if _, err := src.WriteTo(cw); err != nil {
		h.release()
		return nil, err
	}
	src.size, src.sum = cw.n, cw.sum
	return src, nil
}

func (s *snapSource) Size() uint64     { return s.size }
func (s *snapSource) Checksum() uint32 { return s.sum }
func (s *snapSource) Close() error     { s.h.release(); return nil }

// WriteTo writes the stream.
func (s *snapSource) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 64<<10)}
	hdr, err := json.Marshal(s.h.hdr)
	if err != nil {
		return 0, err
	}
	cw.write([]byte(snapMagic))
	cw.writeBytes(hdr)
	lo, hi := s.sh.dataSpan()
	it, err := s.h.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return cw.n, err
	}
	var keys uint64
	for it.First(); it.Valid() && cw.err == nil; it.Next() {
		cw.writeBytes(it.Key()[len(lo):])
		cw.writeBytes(it.Value())
		keys++
	}
	if err := it.Close(); err != nil {
		return cw.n, err
	}
	cw.write([]byte(snapTrailer))
	if cw.err == nil {
		cw.err = cw.w.(*bufio.Writer).Flush()
	}
	if cw.err == nil && keys != s.h.hdr.Keys {
		return cw.n, fmt.Errorf("kvservice: snapshot at %d holds %d keys, its count says %d", s.h.hdr.Index, keys, s.h.hdr.Keys)
	}
	return cw.n, cw.err
}

// countWriter writes until the first error and counts what it wrote.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
	len [binary.MaxVarintLen64]byte // scratch for lengths
}

func (c *countWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func (c *countWriter) writeBytes(p []byte) {
	c.write(c.len[:binary.PutUvarint(c.len[:], uint64(len(p)))])
	c.write(p)
}

// crcCounter measures what is written to it.
type crcCounter struct {
	n   uint64
	sum uint32
}

func (c *crcCounter) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	c.sum = crc32.Update(c.sum, castagnoli, p)
	return len(p), nil
}

// snapSink writes an incoming stream to a file under Dir/snapshots; it
// implements transport.SnapshotSink.
type snapSink struct {
	f     *os.File
	final string
	group uint64
}

func newSnapSink(dir string, group uint64, m raftpb.Message) (*snapSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "incoming-*.tmp")
	if err != nil {
		return nil, err
	}
	meta := m.Snapshot.Metadata
	name := fmt.Sprintf("%016x-%016x-%016x.rkvsnap", group, meta.Term, meta.Index)
	return &snapSink{f: f, final: filepath.Join(dir, name), group: group}, nil
}

func (s *snapSink) Write(p []byte) (int, error) { return s.f.Write(p) }

// Commit makes the file durable under its final name and returns the
// descriptor naming it.
func (s *snapSink) Commit() ([]byte, error) {
	if err := s.f.Sync(); err != nil {
		return nil, err
	}
	if err := s.f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(s.f.Name(), s.final); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(s.final)); err != nil {
		return nil, err
	}
	return snapDescriptor{Format: storeLayoutVersion, Group: s.group, File: filepath.Base(s.final)}.marshal(), nil
}

// Abort removes the file. After Commit it leaves it: a later copy of the
// same snapshot (same term and index, so the same data) may have replaced
// it, and raft may have accepted that one.
func (s *snapSink) Abort() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// snapStreams connects the transport to the store.
type snapStreams struct{ s *Server }

var _ transport.SnapshotStreams = snapStreams{}

// OpenSnapshot streams the shard as of the snapshot's index.
func (ss snapStreams) OpenSnapshot(m raftpb.Message) (transport.SnapshotSource, error) {
	return ss.s.shard.openSnapSource(m.Snapshot.Metadata.Index)
}

// ReceiveSnapshot writes the stream to a file for the loop to install.
func (ss snapStreams) ReceiveSnapshot(m raftpb.Message, size uint64) (transport.SnapshotSink, error) {
	return newSnapSink(filepath.Join(ss.s.cfg.Dir, snapDirName), ss.s.shard.group, m)
}

// installFile replaces the shard's keys with those of a received snapshot
// file taken at index, and makes the store durable. Batches before the last
// leave the applied index as it was (below index): a crash part way
// through is found at restart and the install done again from the file,
// which is removed only once the store holds the whole snapshot.
func (sh shard) installFile(path string, index uint64) (snapHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapHeader{}, fmt.Errorf("kvservice: snapshot at index %d: %w", index, err)
	}
	defer f.Close()
	hdr, err := sh.installStream(bufio.NewReaderSize(f, 64<<10), index)
	if err != nil {
		return hdr, fmt.Errorf("kvservice: installing %s: %w", path, err)
	}
	if err := sh.st.sync(); err != nil {
		return hdr, err
	}
	if err := os.Remove(path); err != nil {
		return hdr, err
	}
	return hdr, nil
}

func (sh shard) installStream(r *bufio.Reader, index uint64) (snapHeader, error) {
	var hdr snapHeader
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapMagic {
		return hdr, errors.New("not a snapshot stream")
	}
	raw, err := readBytes(r)
	if err == nil {
		err = json.Unmarshal(raw, &hdr)
	}
	if err != nil {
		return hdr, fmt.Errorf("snapshot header: %w", err)
	}
	if hdr.Index != index || hdr.Group != sh.group {
		return hdr, fmt.Errorf("holds group %d at index %d, want group %d at %d", hdr.Group, hdr.Index, sh.group, index)
	}
	b := sh.st.db.NewBatch()
	defer func() { b.Close() }()
	lo, hi := sh.dataSpan()
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return hdr, err
	}
	var prev []byte
	for i := uint64(0); i < hdr.Keys; i++ {
		k, err := readBytes(r)
		if err != nil {
			return hdr, fmt.Errorf("key %d of %d: %w", i, hdr.Keys, err)
		}
		// The sender iterates the shard in order: a key out of order
		// (or twice) would make the key count lie.
		if i > 0 && bytes.Compare(k, prev) <= 0 {
			return hdr, fmt.Errorf("key %d of %d out of order", i, hdr.Keys)
		}
		prev = k
		v, err := readBytes(r)
		if err != nil {
			return hdr, fmt.Errorf("value %d of %d: %w", i, hdr.Keys, err)
		}
		if err := b.Set(sh.dataKey(string(k)), v, nil); err != nil {
			return hdr, err
		}
		if b.Len() >= installBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return hdr, err
			}
			b.Close()
			b = sh.st.db.NewBatch()
		}
	}
	trailer := make([]byte, len(snapTrailer))
	if _, err := io.ReadFull(r, trailer); err != nil || string(trailer) != snapTrailer {
		return hdr, errors.New("snapshot stream without its trailer")
	}
	if err := sh.putMeta(b, hdr.applied(), hdr.Keys, &hdr.Config); err != nil {
		return hdr, err
	}
	return hdr, b.Commit(pebble.NoSync)
}

// maxSnapField bounds one key or value read from a snapshot file.
const maxSnapField = 1 << 30

func readBytes(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxSnapField {
		return nil, fmt.Errorf("field of %d bytes", n)
	}
	if n > 1<<20 {
		// Grown as the bytes arrive: a length the stream does not
		// hold allocates no more than the stream.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return nil, fmt.Errorf("field of %d bytes: %w", n, err)
		}
		return buf.Bytes(), nil
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// removeSnapFilesUpTo deletes the group's received snapshot files up to
// index: snapshots raft received but ignored (older than what it had), now
// superseded. Files of later snapshots, and streams still arriving, stay.
func removeSnapFilesUpTo(dir string, group, index uint64, lg *zap.Logger) {
	names, err := filepath.Glob(filepath.Join(dir, "*.rkvsnap"))
	if err != nil {
		return
	}
	for _, name := range names {
		var g, term, i uint64
		if _, err := fmt.Sscanf(filepath.Base(name), "%016x-%016x-%016x.rkvsnap", &g, &term, &i); err != nil {
			continue
		}
		if g == group && i <= index {
			if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
				lg.Warn("removing a superseded snapshot file", zap.String("file", name), zap.Error(err))
			}
		}
	}
}
