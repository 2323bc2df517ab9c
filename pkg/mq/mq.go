// Package mq holds the RocketMQ plumbing both services share: the name-server resolver, making
// sure the topic exists before a producer or consumer relies on it, a readiness probe, and routing
// the client library's own log into the service's slog logger.
package mq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/google/uuid"
)

// Resolver returns a fixed name-server list. Always pass one: the client's default resolver first
// asks a remote HTTP endpoint for the name-server addresses.
func Resolver(namesrv []string) primitive.NsResolver {
	return primitive.NewPassthroughResolver(namesrv)
}

// InstanceName is unique per producer or consumer. The client library shares one internal client
// (and one check-back handler) among everything created with the same instance name in a process;
// the check-back handler then belongs to whichever was created first and transaction checks for
// the others are dropped ("producer group is not equal").
func InstanceName(prefix string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s@%d@%s", prefix, host, os.Getpid(), uuid.NewString()[:8])
}

// Admin checks and creates topics and answers readiness probes.
type Admin struct {
	adm     admin.Admin
	namesrv []string
}

// NewAdmin connects an admin client to the name servers.
func NewAdmin(namesrv []string) (*Admin, error) {
	adm, err := admin.NewAdmin(admin.WithResolver(Resolver(namesrv)))
	if err != nil {
		return nil, fmt.Errorf("rocketmq admin: %w", err)
	}
	return &Admin{adm: adm, namesrv: namesrv}, nil
}

// Close releases the admin client.
func (a *Admin) Close() error { return a.adm.Close() }

// Ping asks the name server for the topic's route (a network round trip every time). It fails when
// the name server is down, or when no live broker serves the topic.
func (a *Admin) Ping(ctx context.Context, topic string) error {
	clusters, err := a.adm.FetchClusterList(topic)
	if err != nil {
		return fmt.Errorf("route of topic %s: %w", topic, err)
	}
	if len(clusters) == 0 {
		return fmt.Errorf("route of topic %s: no broker", topic)
	}
	return nil
}

// ErrNoTopic means the topic does not exist and the service was not told where to create it.
var ErrNoTopic = errors.New("topic does not exist")

// Brokers splits ROCKETMQ_BROKER_ADDR: one broker address, or in a cluster the master of every
// broker group, separated by ';' (or ',').
func Brokers(list string) []string {
	var out []string
	for _, a := range strings.FieldsFunc(list, func(r rune) bool { return r == ';' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// routeBrokers asks a name server which broker groups serve topic (with writable queues and a live
// master). The admin client caches the routes it has seen, so each question takes a fresh one.
func (a *Admin) routeBrokers(topic string) (int, error) {
	adm, err := admin.NewAdmin(admin.WithResolver(Resolver(a.namesrv)))
	if err != nil {
		return 0, fmt.Errorf("rocketmq admin: %w", err)
	}
	defer adm.Close()
	mqs, err := adm.FetchPublishMessageQueues(context.Background(), topic)
	if err != nil {
		return 0, fmt.Errorf("route of topic %s: %w", topic, err)
	}
	groups := map[string]bool{}
	for _, q := range mqs {
		groups[q.BrokerName] = true
	}
	return len(groups), nil
}

// EnsureTopic waits (bounded by ctx) until the name server knows a route for topic. While the
// topic is missing and brokers is set, it keeps trying to create it there with the given number of
// queues: at start-up the broker may still be booting, as MySQL may be.
//
// brokers is one address, or in a cluster the master of every broker group (see Brokers): the
// topic must then exist on each of them with the same queue count, or producers and consumers would
// see only part of the cluster. EnsureTopic returns once the route names as many broker groups as
// there are brokers that answered the creation: a broker that is down at that moment does not hold
// the service's start up; it keeps its topics in its store and serves them again when it returns.
//
// A push consumer refuses to start on a missing topic, and a transactional producer cannot
// receive check-backs from a broker that has not seen its heartbeat, which it only sends to brokers
// whose routes it knows: so both services settle the topic before anything else touches it.
func (a *Admin) EnsureTopic(ctx context.Context, topic, brokers string, queues int) error {
	addrs := Brokers(brokers)
	if len(addrs) <= 1 {
		return a.ensureTopicOn(ctx, topic, brokers, queues)
	}
	for {
		groups, err := a.routeBrokers(topic)
		if err == nil && groups >= len(addrs) {
			return nil
		}
		// CreateTopic ignores the broker's answer (and is harmless on a topic that exists), so
		// success is only known once the route shows up, on a later turn of this loop.
		answered := 0
		var cerr error
		for _, b := range addrs {
			if e := a.adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(b),
				admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues)); e != nil {
				cerr = fmt.Errorf("create topic %s on %s: %w", topic, b, e)
				continue
			}
			answered++
		}
		if answered > 0 {
			if groups, err = a.routeBrokers(topic); err == nil && groups >= answered {
				return nil
			}
		}
		if err == nil {
			err = cerr
		}
		if err == nil {
			err = fmt.Errorf("route of topic %s: %d of %d broker groups", topic, groups, len(addrs))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not available on every broker: %w", topic, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ensureTopicOn is EnsureTopic for one broker (or none).
func (a *Admin) ensureTopicOn(ctx context.Context, topic, broker string, queues int) error {
	for {
		err := a.Ping(ctx, topic)
		if err == nil {
			return nil
		}
		if broker == "" {
			return fmt.Errorf("%w: %s (create it, or set ROCKETMQ_BROKER_ADDR so the service can)", ErrNoTopic, topic)
		}
		// CreateTopic ignores the broker's answer, so success is only known once the route shows
		// up, on a later turn of this loop.
		if cerr := a.adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(broker),
			admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues)); cerr != nil {
			err = fmt.Errorf("create topic %s on %s: %w", topic, broker, cerr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not available: %w", topic, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// RouteClientLogs sends the client library's log (logrus on stderr by default) to log, keeping
// only warnings and errors: its info level prints several lines a second. The library's logger is
// a process-wide variable that its goroutines read without locking, so it is set once, before any
// client exists; later calls (several services started in one test binary) change nothing.
func RouteClientLogs(log *slog.Logger) {
	routeOnce.Do(func() { rlog.SetLogger(&rlogAdapter{log: log.With("component", "rocketmq-client")}) })
}

var routeOnce sync.Once

type rlogAdapter struct{ log *slog.Logger }

func attrs(fields map[string]any) []any {
	out := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		out = append(out, k, v)
	}
	return out
}

func (r *rlogAdapter) Debug(string, map[string]any) {}
func (r *rlogAdapter) Info(string, map[string]any)  {}
func (r *rlogAdapter) Warning(msg string, fields map[string]any) {
	r.log.Warn(msg, attrs(fields)...)
}

func (r *rlogAdapter) Error(msg string, fields map[string]any) {
	// The transactional producer logs this at error level for every local transaction that does
	// not answer Commit, including deliberate Rollback and Unknown answers; the service logs those
	// itself, with the order ID.
	if msg == "executeLocalTransaction but state unexpected" {
		return
	}
	r.log.Error(msg, attrs(fields)...)
}
func (r *rlogAdapter) Fatal(msg string, fields map[string]any) { r.log.Error(msg, attrs(fields)...) }
func (r *rlogAdapter) Level(string)                            {}
func (r *rlogAdapter) OutputPath(string) error                 { return nil }
