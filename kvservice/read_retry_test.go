package kvservice

import (
	"context"
	"testing"
	"time"
)

// TestReadIndexAskedAgain drops the first read request, as raft does when
// no leader can confirm it: the read must ask again with the same context
// and get its index, well before its timeout.
func TestReadIndexAskedAgain(t *testing.T) {
	ch := make(chan uint64, 1)
	asks := 0
	ask := func() error {
		asks++
		if asks >= 2 {
			ch <- 42
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	index, err := awaitReadIndex(ctx, ask, ch, time.Millisecond, nil)
	if err != nil || index != 42 {
		t.Fatalf("got index %d, %v; want 42 from the second request", index, err)
	}
	if asks != 2 {
		t.Fatalf("asked %d times, want 2", asks)
	}
}

// TestReadIndexWaitEnds checks the wait's other exits: the context's end
// (index 0) and the server's stop (ErrStopped).
func TestReadIndexWaitEnds(t *testing.T) {
	ask := func() error { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if index, err := awaitReadIndex(ctx, ask, make(chan uint64), time.Hour, nil); index != 0 || err != nil {
		t.Fatalf("ended context: got %d, %v; want 0, nil", index, err)
	}
	donec := make(chan struct{})
	close(donec)
	if _, err := awaitReadIndex(context.Background(), ask, make(chan uint64), time.Hour, donec); err != ErrStopped {
		t.Fatalf("stopped server: got %v, want ErrStopped", err)
	}
}
