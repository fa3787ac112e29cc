package kvservice

import (
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// value returns the single sample of an unlabeled counter or gauge.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok || len(mf.Metric) != 1 {
		t.Fatalf("metric %s: missing or labeled (%v)", name, mf)
	}
	m := mf.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %s is neither counter nor gauge", name)
	return 0
}

// TestMetricsScrape scrapes two members of one in-process cluster: each
// has its own registry (registering on a shared one would panic or mix
// their numbers), with the Go and process collectors and the raft-level
// metrics, in a format the Prometheus parser accepts.
func TestMetricsScrape(t *testing.T) {
	c := newLocalCluster(t, 3, nil)
	lead := c.waitLeader()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := c.retry(func() error { _, err := c.srv[lead].Put(ctx, k, "v"); return err }); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint64{lead, lead%3 + 1} {
		mfs := scrape(t, c.srv[id])
		for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total",
			"raftkv_proposals_failed_total", "raftkv_transport_snapshots_sent_total"} {
			if _, ok := mfs[name]; !ok {
				t.Errorf("member %d: no %s", id, name)
			}
		}
		if v := value(t, mfs, "raftkv_term"); v < 1 {
			t.Errorf("member %d: term %v", id, v)
		}
		if v := value(t, mfs, "raftkv_leader_changes_total"); v < 1 {
			t.Errorf("member %d: leader changes %v", id, v)
		}
		st := c.srv[id].Status()
		if v := value(t, mfs, "raftkv_commit_index"); v < 4 {
			t.Errorf("member %d: commit %v after three writes", id, v)
		}
		if v := value(t, mfs, "raftkv_applied_index"); v > float64(st.Applied) || v < 1 {
			t.Errorf("member %d: applied %v, status says %d", id, v, st.Applied)
		}
		h := mfs["raftkv_wal_fsync_duration_seconds"]
		if h == nil || h.GetType() != dto.MetricType_HISTOGRAM || h.Metric[0].Histogram.GetSampleCount() == 0 {
			t.Errorf("member %d: fsync histogram %v", id, h)
		}
		if id == lead {
			if v := value(t, mfs, "raftkv_proposals_total"); v < 3 {
				t.Errorf("leader counted %v proposals, want at least 3", v)
			}
		} else if v := value(t, mfs, "raftkv_proposals_total"); v != 0 {
			t.Errorf("follower counted %v proposals, want 0 (its registry is its own)", v)
		}
	}
}
