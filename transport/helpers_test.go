package transport

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// guard bounds every wait in these tests. It is a failure guard, never a way
// to order events: every wait ends on a channel as soon as the awaited event
// happens.
const guard = 20 * time.Second

// snapReport is one ReportSnapshot call.
type snapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// recorder is a Raft that hands everything it is told to the test through
// buffered channels.
type recorder struct {
	msgs        chan raftpb.Message
	unreachable chan uint64
	snaps       chan snapReport
	// processErr, if set, is returned by Process for MsgSnap.
	processErr error
}

func newRecorder() *recorder {
	return &recorder{
		msgs:        make(chan raftpb.Message, 1<<14),
		unreachable: make(chan uint64, 1<<10),
		snaps:       make(chan snapReport, 64),
	}
}

func (r *recorder) Process(ctx context.Context, m raftpb.Message) error {
	if m.Type == raftpb.MsgSnap && r.processErr != nil {
		return r.processErr
	}
	select {
	case r.msgs <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) ReportUnreachable(id uint64) {
	select {
	case r.unreachable <- id:
	default: // the test has seen enough of them
	}
}

func (r *recorder) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	r.snaps <- snapReport{id, status}
}

// logEntry is a log line with its fields flattened to strings.
type logEntry struct {
	level  zapcore.Level
	msg    string
	fields map[string]string
}

func (e logEntry) String() string { return fmt.Sprintf("%s %q %v", e.level, e.msg, e.fields) }

// logTap is a zap core that forwards every entry to a channel, so that tests
// can wait for the transport to say something instead of sleeping.
type logTap struct {
	ch     chan logEntry
	fields []zapcore.Field
	// backlog holds entries read while waiting for another one, for later
	// waits; only the test goroutine touches it.
	backlog *[]logEntry
}

func newLogTap() *logTap {
	return &logTap{ch: make(chan logEntry, 1<<12), backlog: new([]logEntry)}
}

func (l *logTap) Enabled(zapcore.Level) bool { return true }
func (l *logTap) With(fs []zapcore.Field) zapcore.Core {
	return &logTap{ch: l.ch, backlog: l.backlog, fields: append(append([]zapcore.Field(nil), l.fields...), fs...)}
}
func (l *logTap) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, l)
}
func (l *logTap) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field(nil), l.fields...), fs...) {
		f.AddTo(enc)
	}
	out := logEntry{level: e.Level, msg: e.Message, fields: map[string]string{}}
	for k, v := range enc.Fields {
		out.fields[k] = fmt.Sprint(v)
	}
	select {
	case l.ch <- out:
	default:
		panic("logTap: channel full; a test is not draining its logs")
	}
	return nil
}
func (l *logTap) Sync() error { return nil }

// waitLog waits for an entry with the given message whose fields contain
// every key=substring pair in want, consumes it and returns it. Entries that
// do not match stay for later waits, so each logged entry satisfies at most
// one wait, and the order of waits need not follow the order of logging.
func (l *logTap) waitLog(t *testing.T, msg string, want ...string) logEntry {
	t.Helper()
	for i, e := range *l.backlog {
		if e.msg == msg && matches(e, want) {
			*l.backlog = append((*l.backlog)[:i], (*l.backlog)[i+1:]...)
			return e
		}
	}
	timeout := time.After(guard)
	for {
		select {
		case e := <-l.ch:
			if e.msg == msg && matches(e, want) {
				return e
			}
			*l.backlog = append(*l.backlog, e)
		case <-timeout:
			t.Fatalf("no log %q with %v within %s", msg, want, guard)
		}
	}
}

func matches(e logEntry, want []string) bool {
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.Contains(e.fields[k], v) {
			return false
		}
	}
	return true
}

// member is one transport under test with its recorder and log tap.
type member struct {
	*Transport
	r   *recorder
	log *logTap
}

// cluster is the cluster ID used unless a test asks for another.
const cluster = 0xc1

// startMember starts a transport on a free loopback port; edit may adjust
// the config first. The transport is closed when the test ends.
func startMember(t *testing.T, id uint64, edit func(*Config)) *member {
	t.Helper()
	m := &member{r: newRecorder(), log: newLogTap()}
	cfg := Config{
		ClusterID:  cluster,
		ID:         id,
		ListenAddr: "127.0.0.1:0",
		Raft:       m.r,
		Logger:     zap.New(m.log),
		Backoff:    Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2, Jitter: 0.2},
		RandSeed:   int64(id),
	}
	if edit != nil {
		edit(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Transport = tr
	t.Cleanup(func() { _ = tr.Close() })
	return m
}

// connect makes every member a peer of every other and waits until every
// message stream is up.
func connect(t *testing.T, ms ...*member) {
	t.Helper()
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				if err := a.AddPeer(b.cfg.ID, b.Addr().String()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				a.log.waitLog(t, "established message stream to peer", "peer-id="+memberID(b.cfg.ID).String())
			}
		}
	}
}

// recv waits for the next message a member's raft gets.
func (m *member) recv(t *testing.T) raftpb.Message {
	t.Helper()
	select {
	case msg := <-m.r.msgs:
		return msg
	case <-time.After(guard):
		t.Fatalf("member %d received nothing within %s", m.cfg.ID, guard)
	}
	return raftpb.Message{}
}

func (m *member) waitUnreachable(t *testing.T, id uint64) {
	t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case got := <-m.r.unreachable:
			if got == id {
				return
			}
		case <-timeout:
			t.Fatalf("member %d: no ReportUnreachable(%d) within %s", m.cfg.ID, id, guard)
		}
	}
}

func (m *member) waitSnapReport(t *testing.T) snapReport {
	t.Helper()
	select {
	case r := <-m.r.snaps:
		return r
	case <-time.After(guard):
		t.Fatalf("member %d: no ReportSnapshot within %s", m.cfg.ID, guard)
	}
	return snapReport{}
}

// app builds a MsgApp from one member to another carrying one entry whose
// data names the message.
func app(from, to, seq uint64, size int) raftpb.Message {
	data := make([]byte, size)
	copy(data, fmt.Sprintf("%d->%d #%d", from, to, seq))
	return raftpb.Message{
		Type: raftpb.MsgApp, From: from, To: to, Term: 3, Index: seq, LogTerm: 3, Commit: seq,
		Entries: []raftpb.Entry{{Term: 3, Index: seq + 1, Data: data}},
	}
}
