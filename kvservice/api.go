package kvservice

import "context"

// service is what the HTTP API serves: a member of one raft group (Server)
// or a member hosting many shards (ShardedServer). Both answer with the
// same errors, which the API maps to the same status codes.
type service interface {
	Put(ctx context.Context, key, value string) (Result, error)
	Delete(ctx context.Context, key string) (Result, error)
	CompareAndSet(ctx context.Context, key string, expect *string, value string) (Result, error)
	Get(ctx context.Context, key string, serializable bool) (string, bool, error)
	Members() []Member
	AddMember(ctx context.Context, m Member) ([]Member, error)
	RemoveMember(ctx context.Context, id uint64) ([]Member, error)
	PromoteMember(ctx context.Context, id uint64) ([]Member, error)
	TransferLeader(ctx context.Context, to uint64) error
	Status() Status
}

// api is the HTTP face of a service: routing, authorization, request
// decoding and error mapping, shared by both kinds of member.
type api struct {
	svc service
	cfg *Config
	m   *metrics
}

func newAPI(svc service, cfg *Config, m *metrics) *api {
	return &api{svc: svc, cfg: cfg, m: m}
}
