package transport

import (
	"net"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	tests := []struct {
		attempt int
		u       float64
		want    time.Duration
	}{
		{0, 0.5, 10 * time.Millisecond}, // u=0.5 is no jitter
		{0, 0, 5 * time.Millisecond},    // lowest spread
		{0, 0.999, 14990 * time.Microsecond},
		{3, 0.5, 80 * time.Millisecond},
		{6, 0.5, 640 * time.Millisecond},
		{7, 0.5, time.Second}, // 1.28s capped
		{7, 0, 500 * time.Millisecond},
		{7, 0.999, time.Second},  // jitter never exceeds the cap
		{5000, 0.5, time.Second}, // no overflow
		{1 << 30, 0, time.Second / 2},
	}
	for _, tt := range tests {
		got := b.Delay(tt.attempt, tt.u)
		if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.u, got, tt.want)
		}
	}
}

func TestBackoffDefaults(t *testing.T) {
	if got := (Backoff{}).withDefaults(); got != DefaultBackoff {
		t.Fatalf("zero backoff became %+v", got)
	}
	got := Backoff{Initial: time.Second, Max: time.Millisecond, Multiplier: 0.5, Jitter: 2}.withDefaults()
	want := Backoff{Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: DefaultBackoff.Jitter}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	got = Backoff{Initial: time.Second}.withDefaults()
	want = Backoff{Initial: time.Second, Max: DefaultBackoff.Max, Multiplier: 2, Jitter: 0}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// stepClock is a Clock whose timers fire only when the test says so; it
// reports every delay it is asked for.
type stepClock struct {
	asked chan time.Duration
	fire  chan time.Time
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.asked <- d
	return c.fire
}

// Redials to a dead peer wait the jittered, growing, capped delays of the
// policy, in the sequence the seed determines.
func TestRedialSchedule(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()

	clock := &stepClock{asked: make(chan time.Duration), fire: make(chan time.Time)}
	policy := Backoff{Initial: 100 * time.Millisecond, Max: 3 * time.Second, Multiplier: 2, Jitter: 0.25}
	a := startMember(t, 1, func(c *Config) {
		c.Clock = clock
		c.Backoff = policy
		c.RandSeed = 42
	})
	if err := a.AddPeer(7, dead); err != nil {
		t.Fatal(err)
	}
	rnd := a.peerRand(7)
	for attempt := 0; attempt < 10; attempt++ {
		var got time.Duration
		select {
		case got = <-clock.asked:
		case <-time.After(guard):
			t.Fatalf("no redial timer for attempt %d", attempt)
		}
		if want := policy.Delay(attempt, rnd.Float64()); got != want {
			t.Fatalf("attempt %d waited %v, want %v", attempt, got, want)
		}
		if got > policy.Max {
			t.Fatalf("attempt %d waited %v, above the cap", attempt, got)
		}
		if attempt >= 5 && got < policy.Max*3/4 {
			t.Fatalf("attempt %d waited %v; the delay should have reached the cap", attempt, got)
		}
		select {
		case clock.fire <- time.Time{}:
		case <-time.After(guard):
			t.Fatal("redial loop stopped waiting")
		}
	}
	// Close must not wait for a timer that never fires.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); len(st.Peers) != 0 {
		t.Fatalf("stats after close %+v", st)
	}
}
