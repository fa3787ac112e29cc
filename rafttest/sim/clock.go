package sim

import "fmt"

// Tick skew. Real nodes tick from their own clocks: at slightly different
// rates and never at the same instant. ReadOnlyLeaseBased tolerates a
// voter ticking up to (ElectionTick-1)/(ElectionTick-2) - 1 faster than
// the leader (12.5% at ElectionTick 10), and out-of-phase ticks; the
// simulator draws each node's clock within that bound, so the lease-safety
// check runs against the clocks the lease rule promises to survive.
//
// Time is counted in subTicks per tick of the simulation's clock (the one
// clients, message delays and downtimes use). A node ticks every period
// subTicks, with period between minPeriod (the fastest allowed) and
// subTicks (the slowest), from a phase drawn at random. Per seed, the
// periods are drawn at random (clockMode 0), or one voter runs at the
// bound and the others at the slowest rate (1), or all run at one rate,
// out of phase (2).

const (
	// subTicks is chosen so that minPeriod is exact.
	subTicks  = 72
	minPeriod = subTicks * (electionTick - 2) / (electionTick - 1)
)

// drawClock gives n its period and the time of its first tick.
func (s *Sim) drawClock(n *node) {
	switch s.clockMode {
	case 0:
		n.period = int64(minPeriod + s.clockRng.Intn(subTicks-minPeriod+1))
	case 1:
		n.period = subTicks
		if n.id == s.clockFast {
			n.period = minPeriod
		}
	default:
		n.period = subTicks
	}
	n.nextTick = s.subNow + 1 + s.clockRng.Int63n(n.period)
}

// tickSkewed lets time pass up to the next whole tick, node tick by node
// tick, and stops early at a node tick that gave some node work (a
// heartbeat to send, an election to start), so that the work interleaves
// with the other nodes' ticks as it would between clocks out of phase.
func (s *Sim) tickSkewed() {
	for !s.tickNext() {
		for _, id := range s.ids {
			if n := s.nodes[id]; n.up && n.rn.HasReady() {
				return
			}
		}
	}
}

// tickNext advances time to the next tick of an up node or the next whole
// tick, whichever comes first, and ticks the nodes due then. It reports
// whether a whole tick ended.
func (s *Sim) tickNext() bool {
	next := int64(s.ticks+1) * subTicks
	for _, id := range s.ids {
		if n := s.nodes[id]; n.up && n.nextTick < next {
			next = n.nextTick
		}
	}
	s.subNow = next
	for _, id := range s.ids {
		if n := s.nodes[id]; n.up && n.nextTick == next {
			n.nextTick += n.period
			n.ticked++
			n.rn.Tick()
		}
	}
	if next == int64(s.ticks+1)*subTicks {
		s.wholeTick()
		return true
	}
	return false
}

// clockSummary describes the clocks for the setup event.
func (s *Sim) clockSummary() string {
	if s.opts.LockStepTicks {
		return "lockstep"
	}
	return fmt.Sprintf("skew mode=%d fast=%d", s.clockMode, s.clockFast)
}
