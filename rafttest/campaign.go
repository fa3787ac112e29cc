package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdCampaign: campaign ID — the node starts an election.
func cmdCampaign(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	return env.Campaign(env.firstArgNode(t, d))
}

// Campaign makes the node at index idx start an election.
func (env *InteractionEnv) Campaign(idx int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	return n.Campaign()
}
