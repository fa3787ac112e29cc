package raft

import (
	"fmt"
	"strconv"
	"strings"

	pb "github.com/raftkit/raft/raftpb"
)

// The Describe functions render raft's types as the one-line (or, for long
// entry lists, multi-line) text that logs, tests and the rafttest scenario
// files use. The layouts are a compatibility surface: scenario files written
// for etcd/raft compare this output byte for byte, so any change here is a
// breaking change.

// EntryFormatter renders the payload of an EntryNormal for the Describe
// functions. A nil EntryFormatter quotes the payload with Go's %q.
type EntryFormatter func([]byte) string

// quotePayload is the formatter used when the caller passes none.
func quotePayload(data []byte) string { return strconv.Quote(string(data)) }

// DescribeHardState renders hs as "Term:T Vote:V Commit:C"; Vote is left
// out while it is zero (no vote cast in this term).
func DescribeHardState(hs pb.HardState) string {
	var b strings.Builder
	writeHardState(&b, hs)
	return b.String()
}

func writeHardState(b *strings.Builder, hs pb.HardState) {
	b.WriteString("Term:")
	b.WriteString(strconv.FormatUint(hs.Term, 10))
	if hs.Vote != 0 {
		b.WriteString(" Vote:")
		b.WriteString(strconv.FormatUint(hs.Vote, 10))
	}
	b.WriteString(" Commit:")
	b.WriteString(strconv.FormatUint(hs.Commit, 10))
}

// DescribeSoftState renders ss as "Lead:L State:StateX".
func DescribeSoftState(ss SoftState) string {
	return "Lead:" + strconv.FormatUint(ss.Lead, 10) + " State:" + ss.RaftState.String()
}

// DescribeConfState renders every field of cs, the ID lists in Go's %v form
// ("[1 2 3]", "[]" when empty).
func DescribeConfState(cs pb.ConfState) string {
	return fmt.Sprintf("Voters:%v VotersOutgoing:%v Learners:%v LearnersNext:%v AutoLeave:%v",
		cs.Voters, cs.VotersOutgoing, cs.Learners, cs.LearnersNext, cs.AutoLeave)
}

// DescribeSnapshot renders the snapshot's metadata (its data is opaque and
// left out): "Index:I Term:T ConfState:...".
func DescribeSnapshot(snap pb.Snapshot) string {
	md := &snap.Metadata
	return "Index:" + strconv.FormatUint(md.Index, 10) +
		" Term:" + strconv.FormatUint(md.Term, 10) +
		" ConfState:" + DescribeConfState(md.ConfState)
}

// DescribeReady renders rd as a header line "Ready MustSync=bool:" followed by
// one section per non-empty part of rd, in the order in which an application
// handles them; an empty rd renders as "<empty Ready>". Entry payloads go
// through f (nil quotes them).
func DescribeReady(rd Ready, f EntryFormatter) string {
	var body strings.Builder
	if rd.SoftState != nil {
		body.WriteString(DescribeSoftState(*rd.SoftState))
		body.WriteByte('\n')
	}
	if !IsEmptyHardState(rd.HardState) {
		body.WriteString("HardState ")
		writeHardState(&body, rd.HardState)
		body.WriteByte('\n')
	}
	if len(rd.ReadStates) != 0 {
		fmt.Fprintf(&body, "ReadStates %v\n", rd.ReadStates)
	}
	writeEntrySection(&body, "Entries:\n", rd.Entries, f)
	if !IsEmptySnap(rd.Snapshot) {
		body.WriteString("Snapshot ")
		body.WriteString(DescribeSnapshot(rd.Snapshot))
		body.WriteByte('\n')
	}
	writeEntrySection(&body, "CommittedEntries:\n", rd.CommittedEntries, f)
	if len(rd.Messages) != 0 {
		body.WriteString("Messages:\n")
		for i := range rd.Messages {
			writeMessage(&body, "", &rd.Messages[i], f)
			body.WriteByte('\n')
		}
	}
	if body.Len() == 0 {
		return "<empty Ready>"
	}
	return "Ready MustSync=" + strconv.FormatBool(rd.MustSync) + ":\n" + body.String()
}

// writeEntrySection writes title and then one line per entry, or nothing at
// all when there are no entries.
func writeEntrySection(b *strings.Builder, title string, ents []pb.Entry, f EntryFormatter) {
	if len(ents) == 0 {
		return
	}
	b.WriteString(title)
	writeEntryLines(b, ents, f)
}

// DescribeMessage renders m on one line, "FROM->TO Type Term:T Log:LT/I"
// followed by the optional parts (rejection, commit, vote, entries). Entry
// lists longer than one entry, a snapshot and the Responses of a local storage
// message continue on further lines, each nested level indented by two more
// spaces.
func DescribeMessage(m pb.Message, f EntryFormatter) string {
	var b strings.Builder
	writeMessage(&b, "", &m, f)
	return b.String()
}

// writeMessage writes m with continuation lines indented by indent (the first
// line is written as is; the caller has positioned it).
func writeMessage(b *strings.Builder, indent string, m *pb.Message, f EntryFormatter) {
	b.WriteString(endpointName(m.From))
	b.WriteString("->")
	b.WriteString(endpointName(m.To))
	fmt.Fprintf(b, " %v Term:%d Log:%d/%d", m.Type, m.Term, m.LogTerm, m.Index)
	if m.Reject {
		fmt.Fprintf(b, " Rejected (Hint: %d)", m.RejectHint)
	}
	if m.Commit != 0 {
		fmt.Fprintf(b, " Commit:%d", m.Commit)
	}
	if m.Vote != 0 {
		fmt.Fprintf(b, " Vote:%d", m.Vote)
	}
	switch len(m.Entries) {
	case 0:
	case 1:
		b.WriteString(" Entries:[")
		writeEntry(b, &m.Entries[0], f)
		b.WriteByte(']')
	default:
		b.WriteString(" Entries:[")
		for i := range m.Entries {
			b.WriteByte('\n')
			b.WriteString(indent)
			b.WriteString("  ")
			writeEntry(b, &m.Entries[i], f)
		}
		b.WriteByte('\n')
		b.WriteString(indent)
		b.WriteByte(']')
	}
	if m.Snapshot != nil && !IsEmptySnap(*m.Snapshot) {
		b.WriteByte('\n')
		b.WriteString(indent)
		b.WriteString("  Snapshot: ")
		b.WriteString(DescribeSnapshot(*m.Snapshot))
	}
	if len(m.Responses) != 0 {
		nested := indent + "  "
		b.WriteString(" Responses:[")
		for i := range m.Responses {
			b.WriteByte('\n')
			b.WriteString(nested)
			writeMessage(b, nested, &m.Responses[i], f)
		}
		b.WriteByte('\n')
		b.WriteString(indent)
		b.WriteByte(']')
	}
}

// endpointName names a message endpoint: peers in lowercase hex (the form
// raft's log lines use for node IDs), the local storage threads and None by
// name.
func endpointName(id uint64) string {
	switch id {
	case None:
		return "None"
	case LocalAppendThread:
		return "AppendThread"
	case LocalApplyThread:
		return "ApplyThread"
	}
	return strconv.FormatUint(id, 16)
}

// DescribeEntry renders e as "TERM/INDEX Type" plus its payload: for
// EntryNormal the formatter's rendering of the data (nil quotes it), for the
// two conf-change entry types the changes as tokens ("v1 l2 r3"), or the
// decoding error if the data does not decode. An empty payload rendering is
// left out together with its separating space.
func DescribeEntry(e pb.Entry, f EntryFormatter) string {
	var b strings.Builder
	writeEntry(&b, &e, f)
	return b.String()
}

func writeEntry(b *strings.Builder, e *pb.Entry, f EntryFormatter) {
	b.WriteString(strconv.FormatUint(e.Term, 10))
	b.WriteByte('/')
	b.WriteString(strconv.FormatUint(e.Index, 10))
	b.WriteByte(' ')
	b.WriteString(e.Type.String())
	if payload := entryPayloadText(e, f); payload != "" {
		b.WriteByte(' ')
		b.WriteString(payload)
	}
}

// entryPayloadText renders the payload of e; entry types it does not know
// render as nothing.
func entryPayloadText(e *pb.Entry, f EntryFormatter) string {
	var cc pb.ConfChangeI
	switch e.Type {
	case pb.EntryNormal:
		if f == nil {
			f = quotePayload
		}
		return f(e.Data)
	case pb.EntryConfChange:
		var v1 pb.ConfChange
		if err := v1.Unmarshal(e.Data); err != nil {
			return err.Error()
		}
		cc = v1
	case pb.EntryConfChangeV2:
		var v2 pb.ConfChangeV2
		if err := v2.Unmarshal(e.Data); err != nil {
			return err.Error()
		}
		cc = v2
	default:
		return ""
	}
	// The context (and the transition) carry application data that the
	// formatter has no say over, so only the changes are shown.
	return pb.ConfChangesToString(cc.AsV2().Changes)
}

// DescribeEntries renders each entry as DescribeEntry does, one per line,
// every line ending in a newline.
func DescribeEntries(ents []pb.Entry, f EntryFormatter) string {
	var b strings.Builder
	writeEntryLines(&b, ents, f)
	return b.String()
}

func writeEntryLines(b *strings.Builder, ents []pb.Entry, f EntryFormatter) {
	for i := range ents {
		writeEntry(b, &ents[i], f)
		b.WriteByte('\n')
	}
}
