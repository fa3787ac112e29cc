package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// msgClass is a bit set describing a message type.
type msgClass uint8

const (
	// classLocal: the message never crosses the network; the node sends it
	// to itself or exchanges it with its storage threads.
	classLocal msgClass = 1 << iota
	// classResponse: the message answers another message.
	classResponse
	// classFromPeer: only another node sends it, never this node itself.
	classFromPeer
	// classTermed: it always carries the sender's term.
	classTermed
)

// msgClasses classifies every message type that has a class; types absent
// from it (proposals, reads, transfer and forget-leader requests) are plain
// requests that may come from the application or be relayed by a peer.
// Proposals and reads are relayed without a term; a relayed transfer request
// carries the relaying follower's, as every message send stamps.
var msgClasses = [...]msgClass{
	pb.MsgHup:               classLocal,
	pb.MsgBeat:              classLocal,
	pb.MsgCheckQuorum:       classLocal,
	pb.MsgSnapStatus:        classLocal,
	pb.MsgUnreachable:       classLocal | classResponse,
	pb.MsgStorageAppend:     classLocal,
	pb.MsgStorageAppendResp: classLocal | classResponse,
	pb.MsgStorageApply:      classLocal,
	pb.MsgStorageApplyResp:  classLocal | classResponse,

	pb.MsgApp:           classFromPeer | classTermed,
	pb.MsgSnap:          classFromPeer | classTermed,
	pb.MsgHeartbeat:     classFromPeer | classTermed,
	pb.MsgVote:          classFromPeer | classTermed,
	pb.MsgPreVote:       classFromPeer | classTermed,
	pb.MsgTimeoutNow:    classFromPeer | classTermed,
	pb.MsgHeartbeatResp: classFromPeer | classTermed | classResponse,
	pb.MsgReadIndexResp: classFromPeer | classTermed | classResponse,
	// Append and vote responses may come from the node itself (its own
	// acknowledgement and its own vote).
	pb.MsgAppResp:     classTermed | classResponse,
	pb.MsgVoteResp:    classTermed | classResponse,
	pb.MsgPreVoteResp: classTermed | classResponse,
}

func (c msgClass) has(bit msgClass) bool { return c&bit != 0 }

// classOf looks up the class of msgt; unknown types have none.
func classOf(msgt pb.MessageType) msgClass {
	if int(msgt) < 0 || int(msgt) >= len(msgClasses) {
		return 0
	}
	return msgClasses[msgt]
}

// IsLocalMsg reports whether messages of type msgt stay within the node:
// they are stepped locally or exchanged with the storage threads, and a
// peer never sends them.
func IsLocalMsg(msgt pb.MessageType) bool { return classOf(msgt).has(classLocal) }

// IsResponseMsg reports whether messages of type msgt answer another
// message.
func IsResponseMsg(msgt pb.MessageType) bool { return classOf(msgt).has(classResponse) }

// IsLocalMsgTarget reports whether id names one of the local storage threads
// rather than a node.
func IsLocalMsgTarget(id uint64) bool {
	return id == LocalAppendThread || id == LocalApplyThread
}

// voteAnswerType is the response type to a vote request type. Any other
// type is a caller bug.
func voteAnswerType(msgt pb.MessageType) pb.MessageType {
	if msgt != pb.MsgVote && msgt != pb.MsgPreVote {
		panic(fmt.Sprintf("raft: voteAnswerType(%s): not a vote request", msgt))
	}
	if msgt == pb.MsgVote {
		return pb.MsgVoteResp
	}
	return pb.MsgPreVoteResp
}
