// Package quorumscript runs the quorum package's datadriven scenario
// language, so that the package's own tests and the compat module (which
// runs etcd/raft v3.6's scenario files) drive the same code.
//
// The language:
//
//	committed cfg=(ids) [cfgj=(ids)|cfgj=zero] idx=(n|_,...)
//	vote      cfg=(ids) [cfgj=(ids)|cfgj=zero] votes=(y|n|_,...)
//
// cfg is a majority configuration; giving cfgj (possibly as the empty
// "zero" configuration) turns the case into a joint one. idx and votes hold
// one value per distinct voter, in the order the voters first appear in cfg
// and then cfgj; "_" means nothing is known about that voter. A count that
// does not match the voters is reported as output, not as a failure.
//
// committed prints the Describe table and the committed index; vote prints
// the VoteResult. Before printing the answer, the harness recomputes it in
// ways that must agree and prints a line for every way that does not, so a
// correct implementation prints none of them.
//
// Directives are independent of each other: there is no per-file state.
package quorumscript

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft/quorum"
)

// RunFile runs the scenario file at path and compares the output strictly,
// as datadriven.RunTest does (so -rewrite rewrites the file).
func RunFile(t *testing.T, path string) {
	t.Helper()
	datadriven.RunTest(t, path, Handle)
}

// Handle runs one directive and returns its output. Malformed directives
// (unknown commands or arguments, unparsable values, an index of 0) fail t.
func Handle(t *testing.T, d *datadriven.TestData) string {
	qc := parseCase(t, d)
	if msg, ok := qc.checkArity(); !ok {
		return msg
	}
	switch d.Cmd {
	case "committed":
		return qc.committed()
	case "vote":
		return qc.vote()
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

// Encoding of ballots in testCase.values. It is also how they show up in
// the arity error, which prints the values as numbers: the text of that
// error is part of the scenario format shared with etcd/raft.
const (
	ballotNone quorum.Index = 0
	ballotNo   quorum.Index = 1
	ballotYes  quorum.Index = 2
)

// testCase is one parsed directive.
type testCase struct {
	joint bool
	// cfg and cfgj are the IDs as written, repeats included.
	cfg, cfgj []uint64
	// values are the idx or votes values as written; 0 (ballotNone) stands
	// for "_". Real indexes are never 0: parsing rejects that, so that "_"
	// and an index stay distinguishable.
	values []quorum.Index
}

func parseCase(t *testing.T, d *datadriven.TestData) *testCase {
	t.Helper()
	qc := &testCase{}
	parseID := func(key, s string) uint64 {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %s: %v", d.Pos, key, err)
		}
		return id
	}
	for _, arg := range d.CmdArgs {
		switch arg.Key {
		case "cfg":
			for _, v := range arg.Vals {
				qc.cfg = append(qc.cfg, parseID(arg.Key, v))
			}
		case "cfgj":
			qc.joint = true
			if len(arg.Vals) == 1 && arg.Vals[0] == "zero" {
				continue
			}
			for _, v := range arg.Vals {
				if v == "zero" {
					t.Fatalf("%s: cfgj=zero cannot be combined with IDs", d.Pos)
				}
				qc.cfgj = append(qc.cfgj, parseID(arg.Key, v))
			}
		case "idx":
			for _, v := range arg.Vals {
				if v == "_" {
					qc.values = append(qc.values, ballotNone)
					continue
				}
				n := parseID(arg.Key, v)
				if n == 0 {
					t.Fatalf("%s: idx 0 is not allowed (use _ for an unknown index)", d.Pos)
				}
				qc.values = append(qc.values, quorum.Index(n))
			}
		case "votes":
			for _, v := range arg.Vals {
				switch v {
				case "y":
					qc.values = append(qc.values, ballotYes)
				case "n":
					qc.values = append(qc.values, ballotNo)
				case "_":
					qc.values = append(qc.values, ballotNone)
				default:
					t.Fatalf("%s: unknown vote %q", d.Pos, v)
				}
			}
		default:
			t.Fatalf("%s: unknown argument %q", d.Pos, arg.Key)
		}
	}
	return qc
}

func (qc *testCase) majorities() (quorum.MajorityConfig, quorum.MajorityConfig) {
	build := func(ids []uint64) quorum.MajorityConfig {
		c := quorum.MajorityConfig{}
		for _, id := range ids {
			c[id] = struct{}{}
		}
		return c
	}
	return build(qc.cfg), build(qc.cfgj)
}

// checkArity returns the error output when the number of values does not
// match the number of distinct voters.
func (qc *testCase) checkArity() (string, bool) {
	c, cj := qc.majorities()
	voters := quorum.JointConfig{c, cj}.IDs()
	if len(voters) == len(qc.values) {
		return "", true
	}
	return fmt.Sprintf("error: mismatched input (explicit or _) for voters %v: %v", voters, qc.values), false
}

// assignments maps each distinct voter, in order of first appearance, to
// its value, leaving out the "_" ones. Assumes checkArity passed.
func (qc *testCase) assignments() AckedIndexes {
	m := AckedIndexes{}
	next := 0
	for _, id := range append(append([]uint64(nil), qc.cfg...), qc.cfgj...) {
		if _, seen := m[id]; seen {
			continue
		}
		m[id] = qc.values[next]
		next++
	}
	for id, v := range m {
		if v == ballotNone {
			delete(m, id)
		}
	}
	return m
}

func (qc *testCase) committed() string {
	c, cj := qc.majorities()
	acked := qc.assignments()
	var out strings.Builder
	if qc.joint {
		cc := quorum.JointConfig{c, cj}
		out.WriteString(cc.Describe(acked))
		idx := cc.CommittedIndex(acked)
		if swapped := (quorum.JointConfig{cj, c}).CommittedIndex(acked); swapped != idx {
			fmt.Fprintf(&out, "%s <-- via symmetry\n", swapped)
		}
		fmt.Fprintf(&out, "%s\n", idx)
		return out.String()
	}

	out.WriteString(c.Describe(acked))
	idx := c.CommittedIndex(acked)
	if ref := ReferenceMajorityCommitted(c, acked); ref != idx {
		fmt.Fprintf(&out, "%s <-- via alternative computation\n", ref)
	}
	if viaZero := (quorum.JointConfig{c, quorum.MajorityConfig{}}).CommittedIndex(acked); viaZero != idx {
		fmt.Fprintf(&out, "%s <-- via zero-joint quorum\n", viaZero)
	}
	if viaSelf := (quorum.JointConfig{c, c}).CommittedIndex(acked); viaSelf != idx {
		fmt.Fprintf(&out, "%s <-- via self-joint quorum\n", viaSelf)
	}
	checkLowering(&out, c, acked, idx)
	fmt.Fprintf(&out, "%s\n", idx)
	return out.String()
}

// checkLowering verifies that the commit index is monotone in each voter's
// acked index: a voter whose index is already below the committed index can
// drop further (by one, or to 0) without changing the result. (These two
// lines carry no newline and name the voter's original index, as etcd/raft's
// harness prints them.)
func checkLowering(out *strings.Builder, c quorum.MajorityConfig, acked AckedIndexes, idx quorum.Index) {
	for _, id := range c.Slice() {
		orig, ok := acked[id]
		if !ok || orig == 0 || orig >= idx {
			continue
		}
		for _, try := range []struct{ to, label quorum.Index }{{orig - 1, orig}, {0, 0}} {
			alt := AckedIndexes{}
			for vid := range c {
				if v, ok := acked[vid]; ok {
					alt[vid] = v
				}
			}
			alt[id] = try.to
			if got := c.CommittedIndex(alt); got != idx {
				fmt.Fprintf(out, "%s <-- overlaying %d->%d", got, id, uint64(try.label))
			}
		}
	}
}

func (qc *testCase) vote() string {
	c, cj := qc.majorities()
	votes := map[uint64]bool{}
	for id, b := range qc.assignments() {
		votes[id] = b == ballotYes
	}
	if !qc.joint {
		return c.VoteResult(votes).String() + "\n"
	}
	var out strings.Builder
	res := quorum.JointConfig{c, cj}.VoteResult(votes)
	if swapped := (quorum.JointConfig{cj, c}).VoteResult(votes); swapped != res {
		fmt.Fprintf(&out, "%s <-- via symmetry\n", swapped)
	}
	fmt.Fprintf(&out, "%s\n", res)
	return out.String()
}
