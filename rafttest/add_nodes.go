package rafttest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// cmdAddNodes: add-nodes N [voters=(..)] [learners=(..)] [index=I]
// [content=S] [inflight=N] [async-storage-writes=bool] [prevote=bool]
// [checkquorum=bool] [max-committed-size-per-ready=N]
// [disable-conf-change-validation=bool] [read-only=safe|lease-based]
// [step-down-on-removal=bool]
//
// Giving any of voters, learners, index or content bootstraps the new nodes
// from a snapshot at (index, term 1); otherwise they start empty. Unknown
// keys are ignored.
//
// raftkit adds keys for the limits etcd's language leaves at their
// defaults, max-size-per-msg=N, max-inflight-bytes=N,
// max-uncommitted-size=N and disable-proposal-forwarding=bool, and for its
// own options: fast-failover=bool (RawNode.SetFastFailover, kept across
// restarts). Since unknown keys are ignored, a file using them still
// parses under etcd, but they then do not apply there.
func cmdAddNodes(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	n := firstArgInt(t, d)
	cfg := defaultConfig()
	var snap pb.Snapshot
	bootstrap, fast := false, false
	for _, arg := range d.CmdArgs[1:] {
		for i, val := range arg.Vals {
			if dest, ok := configKeys(&cfg)[arg.Key]; ok {
				arg.Scan(t, i, dest)
				continue
			}
			switch arg.Key {
			case "voters", "learners":
				var id uint64
				arg.Scan(t, i, &id)
				cs := &snap.Metadata.ConfState
				if arg.Key == "voters" {
					cs.Voters = append(cs.Voters, id)
				} else {
					cs.Learners = append(cs.Learners, id)
				}
				bootstrap = true
			case "index":
				arg.Scan(t, i, &snap.Metadata.Index)
				cfg.Applied = snap.Metadata.Index
				bootstrap = true
			case "content":
				snap.Data = []byte(val)
				bootstrap = true
			case "read-only":
				opt, err := parseReadOnlyOption(val)
				if err != nil {
					return err
				}
				cfg.ReadOnlyOption = opt
			case "fast-failover":
				arg.Scan(t, i, &fast)
			}
		}
	}
	first := len(env.Nodes)
	var err error
	if bootstrap {
		err = env.addBootstrappedNodes(n, cfg, snap)
	} else {
		err = env.AddNodes(n, cfg, snap)
	}
	for i := first; i < len(env.Nodes); i++ {
		env.Nodes[i].SetFastFailover(fast)
	}
	return err
}

// configKeys maps the add-nodes keys that set a Config field directly to
// that field of cfg, as a Scan destination.
func configKeys(cfg *raft.Config) map[string]interface{} {
	return map[string]interface{}{
		// etcd's keys.
		"inflight":                       &cfg.MaxInflightMsgs,
		"async-storage-writes":           &cfg.AsyncStorageWrites,
		"prevote":                        &cfg.PreVote,
		"checkquorum":                    &cfg.CheckQuorum,
		"max-committed-size-per-ready":   &cfg.MaxCommittedSizePerReady,
		"disable-conf-change-validation": &cfg.DisableConfChangeValidation,
		"step-down-on-removal":           &cfg.StepDownOnRemoval,
		// raftkit's additions.
		"max-size-per-msg":            &cfg.MaxSizePerMsg,
		"max-inflight-bytes":          &cfg.MaxInflightBytes,
		"max-uncommitted-size":        &cfg.MaxUncommittedEntriesSize,
		"disable-proposal-forwarding": &cfg.DisableProposalForwarding,
	}
}

func parseReadOnlyOption(s string) (raft.ReadOnlyOption, error) {
	switch s {
	case "safe":
		return raft.ReadOnlySafe, nil
	case "lease-based":
		return raft.ReadOnlyLeaseBased, nil
	}
	return 0, fmt.Errorf("invalid read-only option %q", s)
}

// errBootstrapIndex is returned when a bootstrap snapshot would sit at index
// 0 or 1: MemoryStorage keeps a dummy entry at the snapshot index, and a
// snapshot at index 1 could not be told apart from an empty log.
var errBootstrapIndex = errors.New("index must be specified as > 1 due to bootstrap")

// addBootstrappedNodes is AddNodes for a directive that asked for a
// bootstrap snapshot: unlike AddNodes, it refuses an empty one.
func (env *InteractionEnv) addBootstrappedNodes(n int, cfg raft.Config, snap pb.Snapshot) error {
	if snap.Metadata.Index <= 1 {
		return errBootstrapIndex
	}
	return env.AddNodes(n, cfg, snap)
}

// AddNodes creates n nodes, numbered on from the last existing one, each
// with a copy of cfg (ID filled in) and storage seeded with snap, which may
// be empty.
//
// A non-empty snapshot is stamped with term 1 and must sit above index 1.
// Each node's History starts with the snapshot (empty or not).
func (env *InteractionEnv) AddNodes(n int, cfg raft.Config, snap pb.Snapshot) error {
	bootstrap := !isZeroSnapshot(snap)
	if bootstrap {
		if snap.Metadata.Index <= 1 {
			return errBootstrapIndex
		}
		snap.Metadata.Term = 1
	}
	for range n {
		if err := env.addNode(cfg, snap, bootstrap); err != nil {
			return err
		}
	}
	return nil
}

// addNode creates one node with the next free ID.
func (env *InteractionEnv) addNode(template raft.Config, snap pb.Snapshot, bootstrap bool) error {
	id := uint64(len(env.Nodes) + 1)
	s := newHistoryStorage(func() pb.Snapshot {
		h := env.Nodes[id-1].History
		return h[len(h)-1]
	})
	if bootstrap {
		if err := s.ApplySnapshot(snap); err != nil {
			return err
		}
		// MemoryStorage truncates to the snapshot; another engine might not,
		// and the scenarios rely on the log starting right after it.
		fi, err := s.FirstIndex()
		if err != nil {
			return err
		}
		if want := snap.Metadata.Index + 1; fi != want {
			return fmt.Errorf("failed to establish first index %d; got %d", want, fi)
		}
	}
	cfg, err := env.nodeConfig(template, id, s)
	if err != nil {
		return err
	}
	rn, err := raft.NewRawNode(cfg)
	if err != nil {
		return err
	}
	env.Nodes = append(env.Nodes, Node{RawNode: rn, Storage: s, Config: cfg, History: []pb.Snapshot{snap}})
	return nil
}

// nodeConfig derives node id's Config from the template: it plugs in the
// ID, storage and the environment's logger, and lets the OnConfig hook
// adjust the rest. The hook may not touch the ID (IDs double as positions
// in env.Nodes) or the logger (the output is the logger).
func (env *InteractionEnv) nodeConfig(template raft.Config, id uint64, s Storage) (*raft.Config, error) {
	cfg := template
	cfg.ID, cfg.Storage = id, s
	if hook := env.Options.OnConfig; hook != nil {
		hook(&cfg)
	}
	switch {
	case cfg.ID != id:
		return nil, errors.New("OnConfig must not change the ID")
	case cfg.Logger != nil:
		return nil, errors.New("OnConfig must not set Logger")
	}
	cfg.Logger = env.Output
	return &cfg, nil
}

// isZeroSnapshot reports whether snap carries nothing at all: no metadata,
// no configuration, no data.
func isZeroSnapshot(snap pb.Snapshot) bool {
	cs := snap.Metadata.ConfState
	return snap.Metadata.Index == 0 && snap.Metadata.Term == 0 && len(snap.Data) == 0 &&
		len(cs.Voters) == 0 && len(cs.Learners) == 0 && len(cs.VotersOutgoing) == 0 &&
		len(cs.LearnersNext) == 0 && !cs.AutoLeave
}
