package sim

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand"
	"sort"
	"strings"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
)

// electionTick is every node's election timeout in ticks; heartbeats go
// every tick.
const electionTick = 10

// FaultKinds lists the kinds of faults the simulator injects, by the names
// used in Stats.Faults and Options.Disable.
var FaultKinds = []string{
	"partition", "asymmetric-partition", "heal", "drop", "duplicate",
	"reorder", "delay", "crash", "torn-write",
}

// Options say what to simulate. Everything not fixed here is drawn from
// Seed.
type Options struct {
	// Seed drives every choice the simulation makes.
	Seed int64
	// Steps is the number of steps of the faulty phase, after which the
	// faults heal and the cluster must make progress again. Zero means
	// 2000.
	Steps int
	// Nodes is the initial number of voters (3, 5 or 7); zero draws it
	// from the seed.
	Nodes int
	// Async forces Config.AsyncStorageWrites on (1) or off (-1); zero
	// draws it from the seed.
	Async int
	// FastFailover forces RawNode.SetFastFailover on (1) or off (-1); zero
	// draws it from the seed, apart from the schedule's draws, so that
	// a seed's other choices stay what they were before the option. With
	// it on, nodes hear of peers lost to a crash or a partition as a
	// transport would report them (ReportUnreachable).
	FastFailover int
	// Disable turns off fault kinds by name (see FaultKinds). The random
	// draws still happen, so the rest of the schedule stays the same; this
	// is what shrinking relies on.
	Disable map[string]bool
	// TraceTail is how many recent events a violation reports; zero means
	// 40.
	TraceTail int
	// Trace, if set, receives every event as it happens.
	Trace func(step int, event string)
	// Workload is what the clients do and the state machine they do it
	// to; nil means KeyValue(). A workload of your own puts your state
	// machine under the same faults and checks (see StateMachine).
	Workload Workload
	// Reads fixes how leaders confirm reads (ReadsSafe or ReadsLease);
	// ReadsMixed, the zero value, draws it per seed (lease one seed in
	// three). The draw happens either way, so the rest of the schedule
	// stays the same.
	Reads ReadMode
	// LockStepTicks ticks every node at once and at the same rate. By
	// default each node ticks at its own rate, drawn per seed within the
	// skew ReadOnlyLeaseBased tolerates, and out of phase with the
	// others (see tickSkewed).
	LockStepTicks bool
}

// ReadMode selects the ReadOnlyOption of a run.
type ReadMode int

const (
	// ReadsMixed draws ReadOnlySafe or ReadOnlyLeaseBased per seed.
	ReadsMixed ReadMode = iota
	// ReadsSafe runs every node with ReadOnlySafe.
	ReadsSafe
	// ReadsLease runs every node with ReadOnlyLeaseBased (and CheckQuorum).
	ReadsLease
)

// Stats are the figures of one run.
type Stats struct {
	Seed  int64
	Nodes int
	Async bool
	// FastFailover says the nodes ran with RawNode.SetFastFailover.
	FastFailover bool
	ReadOnly     string // "safe" or "lease"
	Steps        int
	Ticks        int
	Operations   int // client operations with an answer
	Checked      int // operations in the history checked for linearizability
	Unanswered   int // writes whose clients gave up (checked as what they turned out to be)
	Reads        int
	Writes       int
	Faults       map[string]int
	Crashes      int
	TornWrites   int
	ConfChanges  int // conf changes applied by a leader
	Transfers    int
	Compactions  int
	Leaders      int // terms with a leader
	// LeaseReads are reads a ReadOnlyLeaseBased leader answered from its
	// lease; RoundReads those it answered after a heartbeat round (see
	// judgeRead). Both count answers, whether or not a client got them.
	LeaseReads int
	RoundReads int
	// UnreachableReports counts the ReportUnreachable calls of runs with
	// FastFailover.
	UnreachableReports int
	TraceHash          uint64
}

// Add accumulates o into s (for totals over many seeds).
func (s *Stats) Add(o Stats) {
	s.Steps += o.Steps
	s.Ticks += o.Ticks
	s.Operations += o.Operations
	s.Checked += o.Checked
	s.Unanswered += o.Unanswered
	s.Reads += o.Reads
	s.Writes += o.Writes
	s.Crashes += o.Crashes
	s.TornWrites += o.TornWrites
	s.ConfChanges += o.ConfChanges
	s.Transfers += o.Transfers
	s.Compactions += o.Compactions
	s.Leaders += o.Leaders
	s.LeaseReads += o.LeaseReads
	s.RoundReads += o.RoundReads
	s.UnreachableReports += o.UnreachableReports
	if s.Faults == nil {
		s.Faults = map[string]int{}
	}
	for k, v := range o.Faults {
		s.Faults[k] += v
	}
}

// Violation is a broken invariant, with what is needed to reproduce it.
type Violation struct {
	Seed      int64
	Step      int
	Invariant string
	Detail    string
	Recent    []string
	// custom is set when the run used a workload other than the
	// built-in one, which the test's -sim.seed flag cannot replay.
	custom bool
}

func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: step %d: invariant %q violated: %s\n", v.Seed, v.Step, v.Invariant, v.Detail)
	if v.custom {
		fmt.Fprintf(&b, "replay: run the same Options with Seed %d (Options.Trace receives every event)\n", v.Seed)
	} else {
		fmt.Fprintf(&b, "replay: go test ./rafttest/sim -run TestSimulation -sim.seed=%d -sim.v\n", v.Seed)
	}
	b.WriteString("recent events:\n")
	for _, e := range v.Recent {
		b.WriteString("  ")
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

// faultRates are per-opportunity probabilities, drawn once per run.
type faultRates struct {
	drop, dup, reorder, delay, torn float64
	// event is the weight of fault events (partitions, heals, crashes)
	// among the step choices.
	event float64
}

// workRates are the weights of the workload's choices.
type workRates struct {
	client, admin float64
	compact       float64
}

// Sim is one simulated cluster. It is not safe for concurrent use; all
// its nodes run on the caller's goroutine.
type Sim struct {
	opts  Options
	rng   *rand.Rand
	stats Stats

	nodes      map[uint64]*node
	ids        []uint64 // sorted, so that iteration is deterministic
	nextID     uint64
	everMember map[uint64]bool
	net        network
	scratch    []int

	step, ticks int
	// Tick skew (tickSkewed): the time in subTicks, the source of the
	// clock draws, and the node that runs fast (0: none, or all drawn).
	subNow    int64
	clockRng  *rand.Rand
	clockFast uint64
	clockMode int
	faults    faultRates
	saved     faultRates
	work      workRates
	healing   bool

	async        bool
	fastFailover bool
	preVote      bool
	checkQuorum  bool
	readOnly     raft.ReadOnlyOption
	maxMsgSize   uint64
	maxInflight  int

	workload  Workload
	clients   []*client
	hist      history
	nextOp    uint64
	abandoned []*clientOp
	effects   map[[2]uint64]effect // (client, seq) -> first effect
	// arrivals are the read requests that reached a leader, by (node,
	// read ID), for the lease-safety check.
	arrivals map[[2]uint64][]readArrival

	check checker

	trace     hash.Hash64
	recent    []string
	recentPos int
	violation *Violation
}

// New builds a cluster as opts say, with all its initial voters up.
func New(opts Options) *Sim {
	if opts.Steps == 0 {
		opts.Steps = 2000
	}
	if opts.TraceTail == 0 {
		opts.TraceTail = 40
	}
	if opts.Workload == nil {
		opts.Workload = KeyValue()
	}
	s := &Sim{
		opts:       opts,
		workload:   opts.Workload,
		rng:        rand.New(rand.NewSource(opts.Seed)),
		nodes:      map[uint64]*node{},
		everMember: map[uint64]bool{},
		effects:    map[[2]uint64]effect{},
		arrivals:   map[[2]uint64][]readArrival{},
		net:        network{blocked: map[[2]uint64]bool{}},
		trace:      fnv.New64a(),
		recent:     make([]string, 0, opts.TraceTail),
	}
	s.check.init()
	// The clocks draw from their own source, so that turning skew off
	// leaves the main schedule as it was.
	s.clockRng = rand.New(rand.NewSource(opts.Seed ^ 0x7c1c5e3d))
	s.stats.Seed = opts.Seed
	s.stats.Faults = map[string]int{}
	s.drawSetup()
	s.clockMode = s.clockRng.Intn(3)
	if s.clockMode == 1 {
		s.clockFast = uint64(1 + s.clockRng.Intn(s.stats.Nodes))
	}
	voters := make([]uint64, s.stats.Nodes)
	for i := range voters {
		voters[i] = uint64(i + 1)
		s.everMember[voters[i]] = true
	}
	boot := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: pb.ConfState{Voters: voters}}}
	initial := replica{sm: s.workload.NewStateMachine(), sessions: map[int]uint64{}}
	boot.Data = initial.snapshotData()
	for _, id := range voters {
		n := &node{id: id}
		n.disk.snap = boot
		n.disk.hs = pb.HardState{Term: 1, Commit: 5}
		s.addNode(n)
	}
	s.nextID = uint64(len(voters) + 1)
	for i := 0; i < 3+s.rng.Intn(4); i++ {
		s.clients = append(s.clients, &client{id: i + 1})
	}
	s.event("setup nodes=%d async=%v fastfailover=%v prevote=%v checkquorum=%v readonly=%s clocks=%s drop=%.2f dup=%.2f reorder=%.2f delay=%.2f torn=%.3f",
		s.stats.Nodes, s.async, s.fastFailover, s.preVote, s.checkQuorum, s.stats.ReadOnly, s.clockSummary(), s.faults.drop, s.faults.dup, s.faults.reorder, s.faults.delay, s.faults.torn)
	return s
}

// drawSetup draws the cluster's configuration and fault rates.
func (s *Sim) drawSetup() {
	s.stats.Nodes = s.opts.Nodes
	if s.stats.Nodes == 0 {
		s.stats.Nodes = []int{3, 5, 7}[s.rng.Intn(3)]
	}
	s.async = s.rng.Intn(2) == 0
	switch s.opts.Async {
	case 1:
		s.async = true
	case -1:
		s.async = false
	}
	s.stats.Async = s.async
	s.fastFailover = s.opts.FastFailover > 0 || (s.opts.FastFailover == 0 && sideDraw(s.opts.Seed))
	s.stats.FastFailover = s.fastFailover
	s.preVote = s.rng.Intn(2) == 0
	s.checkQuorum = s.rng.Intn(2) == 0
	s.readOnly = raft.ReadOnlySafe
	s.stats.ReadOnly = "safe"
	lease := s.rng.Intn(3) == 0
	switch s.opts.Reads {
	case ReadsSafe:
		lease = false
	case ReadsLease:
		lease = true
	}
	if lease {
		// Lease reads are only sound with CheckQuorum.
		s.readOnly, s.checkQuorum = raft.ReadOnlyLeaseBased, true
		s.stats.ReadOnly = "lease"
	}
	s.maxMsgSize = []uint64{256, 4096, 1 << 20}[s.rng.Intn(3)]
	s.maxInflight = 1 + s.rng.Intn(16)
	s.faults = faultRates{
		drop:    s.rng.Float64() * 0.1,
		dup:     s.rng.Float64() * 0.05,
		reorder: s.rng.Float64() * 0.3,
		delay:   s.rng.Float64() * 0.1,
		torn:    s.rng.Float64() * 0.01,
		event:   0.002 + s.rng.Float64()*0.01,
	}
	s.work = workRates{client: 0.2, admin: 0.01 + s.rng.Float64()*0.02, compact: 0.05 + s.rng.Float64()*0.1}
	// A disabled fault keeps its draws but never fires.
	for name, off := range s.opts.Disable {
		if !off {
			continue
		}
		switch name {
		case "drop":
			s.faults.drop = 0
		case "duplicate":
			s.faults.dup = 0
		case "reorder":
			s.faults.reorder = 0
		case "delay":
			s.faults.delay = 0
		case "torn-write":
			s.faults.torn = 0
		}
	}
}

func (s *Sim) addNode(n *node) {
	s.drawClock(n)
	s.nodes[n.id] = n
	s.ids = append(s.ids, n.id)
	sort.Slice(s.ids, func(i, j int) bool { return s.ids[i] < s.ids[j] })
	s.start(n)
}

// chance draws a random number and reports whether it fell below p. It
// always draws, so that disabling a fault does not shift later draws.
func (s *Sim) chance(p float64) bool { return s.rng.Float64() < p }

// event records one line of the trace: it feeds the trace hash and the
// ring of recent events.
func (s *Sim) event(format string, args ...interface{}) {
	e := fmt.Sprintf(format, args...)
	line := fmt.Sprintf("%d@%d %s", s.step, s.ticks, e)
	_, _ = s.trace.Write([]byte(line))
	_, _ = s.trace.Write([]byte{'\n'})
	if s.opts.Trace != nil {
		s.opts.Trace(s.step, e)
	}
	if len(s.recent) < cap(s.recent) {
		s.recent = append(s.recent, line)
		return
	}
	s.recent[s.recentPos] = line
	s.recentPos = (s.recentPos + 1) % len(s.recent)
}

// fail records the first violated invariant; the run stops after the
// current step.
func (s *Sim) fail(invariant, format string, args ...interface{}) {
	if s.violation != nil {
		return
	}
	detail := fmt.Sprintf(format, args...)
	s.event("VIOLATION %s: %s", invariant, detail)
	recent := append(append([]string(nil), s.recent[s.recentPos:]...), s.recent[:s.recentPos]...)
	_, builtin := s.workload.(kvWorkload)
	s.violation = &Violation{Seed: s.opts.Seed, Step: s.step, Invariant: invariant, Detail: detail, Recent: recent, custom: !builtin}
}

// Run simulates the faulty phase, heals everything, checks liveness and
// finally linearizability. It returns the figures and the first violation
// (a *Violation), if any. A panic inside raft is a violation too.
func (s *Sim) Run() (stats Stats, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.fail("no panic", "%v", r)
		}
		s.stats.Steps, s.stats.Ticks = s.step, s.ticks
		s.stats.TraceHash = s.trace.Sum64()
		stats = s.stats
		if s.violation != nil {
			err = s.violation
		}
	}()
	for s.step < s.opts.Steps && s.violation == nil {
		s.step++
		s.oneStep()
		s.check.afterStep(s)
	}
	if s.violation != nil {
		return
	}
	s.heal()
	s.awaitLiveness()
	if s.violation != nil {
		return
	}
	s.finishClients()
	s.stats.Checked = len(s.hist.ops)
	if e := s.hist.check(s.workload.Model(), checkTimeout); e != nil {
		s.fail("linearizability", "%v", e)
	}
	return
}

// oneStep picks one thing to happen, with weights that keep the cluster
// busy between ticks: work that is ready (Readys, storage threads,
// deliverable messages) usually goes first, and time passes when nothing
// else is pending or now and then regardless.
func (s *Sim) oneStep() {
	var readyNodes, appendNodes, applyNodes []*node
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up {
			continue
		}
		if n.rn.HasReady() {
			readyNodes = append(readyNodes, n)
		}
		if len(n.appendQ) > 0 {
			appendNodes = append(appendNodes, n)
		}
		if len(n.applyQ) > 0 {
			applyNodes = append(applyNodes, n)
		}
	}
	deliverable := s.deliverable()
	busy := len(readyNodes)+len(appendNodes)+len(applyNodes)+len(deliverable) > 0
	weights := []float64{
		weightIf(len(readyNodes) > 0, 1),
		weightIf(len(appendNodes) > 0, 0.7),
		weightIf(len(applyNodes) > 0, 0.7),
		weightIf(len(deliverable) > 0, 1),
		0.02, // tick
		s.work.client,
		weightIf(!s.healing, s.work.admin),
		weightIf(!s.healing, s.faults.event),
	}
	if !busy {
		weights[4] = 1
	}
	switch s.pick(weights) {
	case 0:
		s.handleReady(readyNodes[s.rng.Intn(len(readyNodes))])
	case 1:
		s.processAppend(appendNodes[s.rng.Intn(len(appendNodes))])
	case 2:
		s.processApply(applyNodes[s.rng.Intn(len(applyNodes))])
	case 3:
		s.deliverOne(deliverable)
	case 4:
		s.tick()
	case 5:
		s.clientStep()
	case 6:
		s.adminStep()
	case 7:
		s.faultStep()
	}
}

func weightIf(cond bool, w float64) float64 {
	if cond {
		return w
	}
	return 0
}

// pick draws an index with probability proportional to its weight.
func (s *Sim) pick(weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := s.rng.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// tick lets time pass: in lock step, one tick on every up node; with
// skew, up to the next tick of some node or the next whole tick.
func (s *Sim) tick() {
	if s.opts.LockStepTicks {
		for _, id := range s.ids {
			if n := s.nodes[id]; n.up {
				n.rn.Tick()
			}
		}
		s.wholeTick()
		return
	}
	s.tickSkewed()
}

// wholeTick ends one unit of the simulation's time: crashed nodes come
// back after their downtime; clients time out.
func (s *Sim) wholeTick() {
	s.ticks++
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up && !n.retired && s.ticks >= n.downAt {
			s.restart(n)
		}
	}
	s.clientTimeouts()
}

// crash stops n at once: whatever is not on its disk is gone.
func (s *Sim) crash(n *node) {
	n.up = false
	n.rn, n.store, n.rep, n.unsynced = nil, nil, nil, nil
	n.appendQ, n.applyQ, n.reads = nil, nil, nil
	n.downAt = s.ticks + 1 + s.rng.Intn(4*electionTick)
	s.stats.Crashes++
	s.event("crash node=%d disk=[hs %s snap %d last %d]", n.id, fmtHS(n.disk.hs), n.disk.snap.Metadata.Index, n.disk.lastIndex())
	for _, id := range s.ids {
		s.reportUnreachable(id, n.id)
	}
}

// reportUnreachable tells node at, if it is up, that it lost its stream
// to peer, as raftkit's transport does when a stream breaks; only in runs
// with FastFailover, so that the others keep their schedules.
func (s *Sim) reportUnreachable(at, peer uint64) {
	n := s.nodes[at]
	if !s.fastFailover || at == peer || n == nil || !n.up {
		return
	}
	n.rn.ReportUnreachable(peer)
	s.stats.UnreachableReports++
}

// sideDraw draws a coin from seed apart from the schedule's source.
func sideDraw(seed int64) bool {
	x := uint64(seed)*0x9e3779b97f4a7c15 + 0x2545f4914f6cdd1d
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 32
	return x&1 == 1
}

func (s *Sim) restart(n *node) {
	// Its clock ran on while it was down; it resumes on its own phase.
	for n.nextTick <= s.subNow {
		n.nextTick += n.period
	}
	s.start(n)
	s.event("restart node=%d hs=%s", n.id, fmtHS(n.disk.hs))
	s.check.afterRestart(s, n)
}

// retire shuts down a node the configuration no longer has.
func (s *Sim) retire(n *node) {
	n.retired = true
	n.up = false
	s.event("retire node=%d", n.id)
}

// faultStep injects one fault event.
func (s *Sim) faultStep() {
	kind := []string{"partition", "asymmetric-partition", "heal", "crash"}[s.rng.Intn(4)]
	var live []uint64
	for _, id := range s.ids {
		if !s.nodes[id].retired {
			live = append(live, id)
		}
	}
	victim := s.nodes[live[s.rng.Intn(len(live))]]
	side := make([]bool, len(live))
	for i := range side {
		side[i] = s.rng.Intn(2) == 0
	}
	if s.opts.Disable[kind] {
		return
	}
	s.stats.Faults[kind]++
	switch kind {
	case "partition":
		for i, a := range live {
			for j, b := range live {
				if side[i] != side[j] {
					s.net.cut(a, b)
					s.reportUnreachable(a, b)
				}
			}
		}
		s.event("partition %v", sides(live, side))
	case "asymmetric-partition":
		// Everything the victim sends is lost, but it still hears.
		for _, b := range live {
			if b != victim.id {
				s.net.cut(victim.id, b)
				s.reportUnreachable(victim.id, b)
			}
		}
		s.event("asymmetric partition: %d cannot send", victim.id)
	case "heal":
		s.net.heal()
		s.event("heal network")
	case "crash":
		if victim.up {
			s.crash(victim)
		}
	}
}

func sides(ids []uint64, side []bool) string {
	var a, b []uint64
	for i, id := range ids {
		if side[i] {
			a = append(a, id)
		} else {
			b = append(b, id)
		}
	}
	return fmt.Sprintf("%v | %v", a, b)
}

// heal ends the faulty phase: the network heals, message faults stop,
// crashed nodes restart, and the workload is reduced to what liveness
// needs.
func (s *Sim) heal() {
	s.healing = true
	s.saved = s.faults
	s.faults = faultRates{}
	s.net.heal()
	for _, id := range s.ids {
		if n := s.nodes[id]; !n.up && !n.retired {
			s.restart(n)
		}
	}
	s.event("heal all")
}

// livenessTicks bounds the ticks a healed cluster may take to elect a
// leader and commit a fresh write on every member.
const livenessTicks = 30 * electionTick

// awaitLiveness runs the healed cluster until a leader has committed a
// fresh write that a quorum has applied, or fails after livenessTicks.
func (s *Sim) awaitLiveness() {
	marker := &client{id: 0}
	s.clients = append(s.clients, marker)
	start := s.ticks
	var op *clientOp
	for s.violation == nil {
		if s.ticks-start > livenessTicks {
			s.fail("liveness", "no leader committed a write within %d ticks of healing (leader: %d); nodes: %s",
				livenessTicks, s.leader(), s.nodeSummary())
			return
		}
		if op == nil && marker.op == nil {
			op = s.invoke(marker, Op{Input: s.workload.LivenessWrite(s.opts.Seed)})
		}
		if op != nil && op.done && s.quorumApplied(op.appliedAt) {
			s.event("live: write committed at %d and applied by a quorum", op.appliedAt)
			return
		}
		if op != nil && op.done && op.unknown {
			op = nil // gave up; try again
		}
		s.step++
		s.oneStep()
		s.leaveJointIfNeeded()
		s.check.afterStep(s)
	}
}

// quorumApplied reports whether a quorum of the leader's configuration
// has applied index. Not every member need have: without PreVote and
// CheckQuorum, a node that campaigned to a high term with a stale
// configuration ignores the leader's lower-term messages and sends its own
// only to the members it knows (etcd/raft behaves the same), so it may
// stay behind for good while the group makes progress.
func (s *Sim) quorumApplied(index uint64) bool {
	lead := s.leader()
	if index == 0 || lead == 0 {
		return false
	}
	cfg := s.nodes[lead].rn.Status().Config
	votes := map[uint64]bool{}
	for id := range cfg.Voters.IDs() {
		n := s.nodes[id]
		votes[id] = n != nil && n.up && n.rep.applied >= index
	}
	return cfg.Voters.VoteResult(votes) == quorum.VoteWon
}

// leader returns the up leader of the highest term, or 0.
func (s *Sim) leader() uint64 {
	var lead, term uint64
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up {
			continue
		}
		bs := n.rn.BasicStatus()
		if bs.RaftState == raft.StateLeader && bs.Term >= term {
			lead, term = id, bs.Term
		}
	}
	return lead
}

// describe renders a message compactly for the trace.
func describe(m pb.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d->%d %s t%d", m.From, m.To, m.Type, m.Term)
	if m.Index != 0 || m.LogTerm != 0 {
		fmt.Fprintf(&b, " %d/%d", m.LogTerm, m.Index)
	}
	if m.Commit != 0 {
		fmt.Fprintf(&b, " c%d", m.Commit)
	}
	if len(m.Entries) > 0 {
		fmt.Fprintf(&b, " n%d", len(m.Entries))
	}
	if m.Reject {
		fmt.Fprintf(&b, " rej%d", m.RejectHint)
	}
	if m.Snapshot != nil && m.Snapshot.Metadata.Index != 0 {
		fmt.Fprintf(&b, " snap%d/%d", m.Snapshot.Metadata.Term, m.Snapshot.Metadata.Index)
	}
	return b.String()
}

// ErrViolation matches every *Violation with errors.Is.
var ErrViolation = errors.New("sim: invariant violated")

// Is makes errors.Is(err, ErrViolation) hold for violations.
func (v *Violation) Is(target error) bool { return target == ErrViolation }

// Run simulates one seed with opts: New(opts).Run().
func Run(opts Options) (Stats, error) { return New(opts).Run() }

// nodeSummary describes every node's state in one line, for reports.
func (s *Sim) nodeSummary() string {
	var b strings.Builder
	for _, id := range s.ids {
		n := s.nodes[id]
		switch {
		case n.retired:
			fmt.Fprintf(&b, "[%d retired]", id)
		case !n.up:
			fmt.Fprintf(&b, "[%d down]", id)
		default:
			bs := n.rn.BasicStatus()
			fmt.Fprintf(&b, "[%d %s term=%d lead=%d commit=%d applied=%d ready=%v appendq=%d applyq=%d]", id, bs.RaftState,
				bs.Term, bs.Lead, bs.Commit, n.rep.applied, n.rn.HasReady(), len(n.appendQ), len(n.applyQ))
		}
	}
	return b.String()
}
