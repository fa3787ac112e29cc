package kvservice

import (
	"testing"

	"go.uber.org/zap"
)

// A sharded member's host heartbeats every other tick, so that an
// election timeout still spans at least five heartbeats; a timeout too
// short for that keeps heartbeats at every tick.
func TestShardsHeartbeatEveryOtherTick(t *testing.T) {
	for _, tc := range []struct{ election, heartbeat int }{{10, 2}, {30, 2}, {9, 1}, {5, 1}, {2, 1}} {
		s := &ShardedServer{cfg: Config{ID: 1, Shards: 4, ElectionTicks: tc.election}, lg: zap.NewNop()}
		hc := s.hostConfig(nil, nil)
		if hc.HeartbeatTick != tc.heartbeat || hc.ElectionTick != tc.election {
			t.Fatalf("election timeout %d ticks: host heartbeats every %d ticks (election %d), want every %d",
				tc.election, hc.HeartbeatTick, hc.ElectionTick, tc.heartbeat)
		}
		if hc.ElectionTick < 5*hc.HeartbeatTick && hc.HeartbeatTick > 1 {
			t.Fatalf("election timeout %d ticks spans fewer than five heartbeats every %d", hc.ElectionTick, hc.HeartbeatTick)
		}
	}
}
