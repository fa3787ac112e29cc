package multiraft_test

import (
	"fmt"
	"log"
	"sort"
	"sync"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
)

// kvApp is the application of one host: it records, per group, the data
// of the normal entries its groups commit, and tells the example when
// something was applied.
type kvApp struct {
	mu      sync.Mutex
	applied map[multiraft.GroupID][]string
	changed chan struct{}
}

func newKVApp() *kvApp {
	return &kvApp{applied: map[multiraft.GroupID][]string{}, changed: make(chan struct{}, 1)}
}

// Apply is called by the host's workers, in log order per group.
func (a *kvApp) Apply(g multiraft.GroupID, ents []raftpb.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range ents {
		// Empty entries are the ones a new leader appends; configuration
		// changes were already applied to raft by the host.
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			a.applied[g] = append(a.applied[g], string(e.Data))
		}
	}
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// ReadIndexDone is not used here: the example makes no linearizable reads.
func (a *kvApp) ReadIndexDone(multiraft.GroupID, []raft.ReadState) {}

// Restore would replace a group's state with a snapshot's data; these
// groups are never compacted, so no snapshot is ever sent.
func (a *kvApp) Restore(multiraft.GroupID, raftpb.Snapshot) error { return nil }

func (a *kvApp) count(g multiraft.GroupID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.applied[g])
}

// Three hosts in one process run two Raft groups, each with a replica on
// every host; a proposal made at any host is applied on all three. Over
// real connections, NewNetTransport takes the place of MemNetwork, and a
// shared WAL (package walstore) the place of MemStorage.
func Example() {
	network := multiraft.NewMemNetwork()
	ids := []multiraft.HostID{1, 2, 3}
	hosts, apps := startHosts(network, ids)
	defer func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}()

	// Every member creates its replica with the same member list. Each
	// group's leader is placed by asking one host to campaign: host 1 for
	// group 10, host 2 for group 20.
	for _, g := range []multiraft.GroupID{10, 20} {
		for _, h := range hosts {
			if err := h.CreateGroup(multiraft.GroupConfig{ID: g, Members: ids}); err != nil {
				log.Fatal(err)
			}
		}
		_ = hosts[g/10-1].Campaign(g)
	}

	// Propose through host 3, which leads neither group: a follower
	// forwards the proposal to its leader. A proposal made while no leader
	// is known is dropped, so propose again until it is applied.
	want := map[multiraft.GroupID]string{10: "x=1", 20: "y=2"}
	deadline := time.Now().Add(30 * time.Second)
	for g, data := range want {
		for !appliedEverywhere(apps, g) {
			if time.Now().After(deadline) {
				log.Fatalf("group %d: not applied everywhere", g)
			}
			if lead, _ := hosts[2].Leader(g); lead != 0 {
				_ = hosts[2].Propose(g, []byte(data))
			}
			select {
			case <-apps[2].changed:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	groups := hosts[0].Groups()
	sort.Slice(groups, func(i, j int) bool { return groups[i] < groups[j] })
	for _, g := range groups {
		for i, a := range apps {
			a.mu.Lock()
			// A proposal retried before the first one was applied can be
			// applied twice: print the first.
			fmt.Printf("group %d: host %d applied %s\n", g, ids[i], a.applied[g][0])
			a.mu.Unlock()
		}
	}
	// Output:
	// group 10: host 1 applied x=1
	// group 10: host 2 applied x=1
	// group 10: host 3 applied x=1
	// group 20: host 1 applied y=2
	// group 20: host 2 applied y=2
	// group 20: host 3 applied y=2
}

func appliedEverywhere(apps []*kvApp, g multiraft.GroupID) bool {
	for _, a := range apps {
		if a.count(g) == 0 {
			return false
		}
	}
	return true
}

// startHosts starts one host per ID, each with its own storage and a
// worker pool, all on network.
func startHosts(network *multiraft.MemNetwork, ids []multiraft.HostID) ([]*multiraft.Host, []*kvApp) {
	var hosts []*multiraft.Host
	var apps []*kvApp
	for _, id := range ids {
		var peers []multiraft.HostID
		for _, p := range ids {
			if p != id {
				peers = append(peers, p)
			}
		}
		app := newKVApp()
		h, err := multiraft.New(multiraft.HostConfig{
			ID: id, Peers: peers,
			Storage:   multiraft.NewMemStorage(),
			Transport: network.Endpoint(id),
			App:       app,
			Workers:   2, TickInterval: 10 * time.Millisecond,
			CheckQuorum: true, PreVote: true,
		})
		if err != nil {
			log.Fatal(err)
		}
		network.Attach(h) // hands what other hosts send to h.Receive
		hosts, apps = append(hosts, h), append(apps, app)
	}
	return hosts, apps
}
