package multiraft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/raftkit/raft/raftpb"
)

// ItemKind says what an Item carries.
type ItemKind uint8

const (
	// KindRaft is a raft message for the group's replica on the receiving
	// host.
	KindRaft ItemKind = 1
	// KindQuiesce is a MsgHeartbeat from a leader that quiesces the group:
	// the follower steps it as a heartbeat and then stops ticking if its
	// log matches the leader's (see the package documentation).
	KindQuiesce ItemKind = 2
	// KindWake asks the receiving host's replica (the leader, as far as
	// the sender knows) to wake the group. Msg carries only From and To.
	KindWake ItemKind = 3
)

func (k ItemKind) String() string {
	switch k {
	case KindRaft:
		return "raft"
	case KindQuiesce:
		return "quiesce"
	case KindWake:
		return "wake"
	case kindHeartbeats:
		return "heartbeats"
	case kindHeartbeatResp:
		return "heartbeat-resps"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Item is one group's message inside a Batch.
type Item struct {
	Group GroupID
	Kind  ItemKind
	Msg   raftpb.Message
}

// Batch is what one host sends another at once: the messages of all its
// groups for that host, and nothing else. An empty batch is a liveness
// ping: hosts track each other's liveness once, for all their groups.
type Batch struct {
	From  HostID
	Items []Item
	// Heartbeats and HeartbeatResps are the groups' plain heartbeats and
	// their answers, coalesced (see Heartbeat); the receiver steps them
	// after Items.
	Heartbeats     []Heartbeat
	HeartbeatResps []Heartbeat
}

// batchVersion opens every encoded batch, so that the layout can change.
const batchVersion = 1

// ErrBadBatch is returned, wrapped with the reason, by DecodeBatch for a
// malformed batch. The receiver drops such a batch whole.
var ErrBadBatch = errors.New("multiraft: malformed batch")

// AppendBatch appends b's encoding to dst: a version byte, the sender and
// the item count as uvarints, then per item the group (uvarint), the kind
// (one byte) and the length-prefixed protobuf encoding of the message;
// then, if any, one item of each list of coalesced heartbeats (group 0,
// its kind, the length-prefixed list: appendHeartbeats).
func AppendBatch(dst []byte, b *Batch) ([]byte, error) {
	dst = append(dst, batchVersion)
	dst = binary.AppendUvarint(dst, b.From)
	dst = binary.AppendUvarint(dst, uint64(b.wireItems()))
	for i := range b.Items {
		it := &b.Items[i]
		dst = binary.AppendUvarint(dst, uint64(it.Group))
		dst = append(dst, byte(it.Kind))
		n := it.Msg.Size()
		dst = binary.AppendUvarint(dst, uint64(n))
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		if _, err := it.Msg.MarshalTo(dst[start:]); err != nil {
			return nil, fmt.Errorf("multiraft: encoding a message of group %d: %w", it.Group, err)
		}
	}
	dst = appendHeartbeats(dst, kindHeartbeats, b.Heartbeats)
	dst = appendHeartbeats(dst, kindHeartbeatResp, b.HeartbeatResps)
	return dst, nil
}

// minItemLen is the least number of bytes one encoded item takes, used to
// refuse item counts that the payload cannot hold before allocating.
const minItemLen = 3

// DecodeBatch decodes a batch encoded by AppendBatch. It never panics on
// bad input: anything malformed returns ErrBadBatch. Messages do not alias
// data.
func DecodeBatch(data []byte) (Batch, error) {
	var b Batch
	if len(data) == 0 || data[0] != batchVersion {
		return b, fmt.Errorf("%w: unknown version", ErrBadBatch)
	}
	r := reader{buf: data[1:]}
	b.From = r.uvarint()
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.buf))/minItemLen {
		return Batch{}, fmt.Errorf("%w: bad header", ErrBadBatch)
	}
	b.Items = itemsWithRoom(int(n))
	for i := uint64(0); i < n; i++ {
		if err := r.itemInto(&b); err != nil {
			return Batch{}, fmt.Errorf("%w: item %d: %v", ErrBadBatch, i, err)
		}
	}
	if len(r.buf) != 0 {
		return Batch{}, fmt.Errorf("%w: %d trailing bytes", ErrBadBatch, len(r.buf))
	}
	return b, nil
}

type reader struct {
	buf []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// itemInto decodes one item into b: a group's message into b.Items, or a
// list of coalesced heartbeats into b.Heartbeats or b.HeartbeatResps.
func (r *reader) itemInto(b *Batch) error {
	group := GroupID(r.uvarint())
	if r.err != nil || len(r.buf) < 1 {
		return errors.New("truncated")
	}
	kind := ItemKind(r.buf[0])
	r.buf = r.buf[1:]
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.buf)) {
		return errors.New("truncated message")
	}
	payload := r.buf[:n]
	r.buf = r.buf[n:]
	var err error
	switch {
	case group == 0 && kind == kindHeartbeats:
		b.Heartbeats, err = decodeHeartbeats(payload, kind, b.Heartbeats)
		return err
	case group == 0 && kind == kindHeartbeatResp:
		b.HeartbeatResps, err = decodeHeartbeats(payload, kind, b.HeartbeatResps)
		return err
	case group == 0 || kind < KindRaft || kind > KindWake:
		return fmt.Errorf("group %d, kind %s", group, kind)
	}
	it := Item{Group: group, Kind: kind}
	if err := it.Msg.Unmarshal(payload); err != nil {
		return err
	}
	b.Items = append(b.Items, it)
	return nil
}
