package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A member's counters are summed over their labels (a single-group
// member counts messages per peer), and load's cost line explains a run
// with them.
func TestLoadCostFromMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`# HELP raftkv_wal_bytes_written_total Bytes.
# TYPE raftkv_wal_bytes_written_total counter
raftkv_wal_bytes_written_total 64000
raftkv_transport_messages_sent_total{peer="2"} 150
raftkv_transport_messages_sent_total{peer="3"} 50
raftkv_multiraft_rounds_total 10
raftkv_multiraft_groups_run_total 250
raftkv_multiraft_round_step_seconds_total 0.015
raftkv_multiraft_round_save_seconds_total 0.03
raftkv_multiraft_round_apply_wait_seconds_total 0.005
raftkv_wal_fsyncs_total 7
`))
	}))
	defer srv.Close()
	counters, err := scrapeCounters(context.Background(), srv.Client(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	var spent memberCost
	spent.add(counters)
	if spent.msgs != 200 || spent.walBytes != 64000 || spent.fsyncs != 7 || spent.rounds != 10 || spent.groupsRun != 250 {
		t.Fatalf("cost %+v from %v", spent, counters)
	}
	got := costLine(loadResult{writes: 100, elapsed: time.Second}, spent)
	want := "per write: 640 WAL bytes, 2.00 messages; 10 host rounds (all members), 25.0 shards per round" +
		"; a round's mean: step 1.50 ms, save 3.00 ms, apply wait 0.50 ms"
	if got != want {
		t.Fatalf("cost line %q, want %q", got, want)
	}
}
