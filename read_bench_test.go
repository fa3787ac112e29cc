package raft

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// BenchmarkReadIndex serves reads on a leader of three voters whose
// followers answer every heartbeat: safe reads through a round each, lease
// reads from the lease.
func BenchmarkReadIndex(b *testing.B) {
	for _, tc := range []struct {
		name   string
		option ReadOnlyOption
	}{{"safe", ReadOnlySafe}, {"lease", ReadOnlyLeaseBased}} {
		b.Run(tc.name, func(b *testing.B) {
			nw := newTestNet(b, 3, nil, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, tc.option })
			nw.campaign(1)
			r := nw.node(1).r()
			req := pb.Message{From: 1, Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: []byte("ctx")}}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = r.Step(req)
				for _, m := range r.msgs {
					if m.Type == pb.MsgHeartbeat {
						_ = r.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgHeartbeatResp, Term: r.Term, Context: m.Context})
					}
				}
				r.msgs, r.readStates = r.msgs[:0], r.readStates[:0]
			}
		})
	}
}
