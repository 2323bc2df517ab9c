package mq

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unsafe"
)

// Re-registering with a broker that restarted.
//
// A broker knows a producer group only from the heartbeats of its clients, and it sends a
// transaction check-back only to a client it knows. A broker that restarts knows nobody, so the half
// messages it holds wait until some producer of the group heartbeats again. The Go client
// (github.com/apache/rocketmq-client-go/v2, the commit order-service pins) heartbeats from one ticker
// every 30 s, a constant with no option (internal/client.go, _HeartbeatBrokerInterval; upstream
// issue #1004 "How to adjust the heartbeat interval", where the maintainers welcome a change). It
// also refreshes topic routes only every 30 s, and sends heartbeats only to brokers in the routes it
// holds: after a restart the first check-back could wait up to a minute. (The Java client heartbeats
// on every new connection as well, which the Go client does not.)
//
// The client's public API has no way to ask for either. Its internal client, though, has both as
// exported methods of its own interface (internal.RMQClient): UpdateTopicRouteInfo and
// SendHeartbeatToAllBrokerWithLock, the two calls its tickers make. KeepRegistered finds that
// client in the producer (the unexported field "client" of the default producer, itself the field
// "producer" of a transactional one) and makes the same two calls on a short period. It adds no
// behaviour the client does not have: the heartbeat takes the client's own lock and carries the
// same data as the 30 s one. The upstreamable change is an option for the interval (the Java
// client's heartbeatBrokerInterval) or a heartbeat on each new broker connection; with it, this
// file goes away. If a new client version moves the fields, KeepRegistered returns an error (its
// test fails) and the service keeps the client's 30 s behaviour.

// registrar is what KeepRegistered needs of the client's internal client.
type registrar interface {
	UpdateTopicRouteInfo()
	SendHeartbeatToAllBrokerWithLock()
}

// RegisterPeriod is how often KeepRegistered refreshes the routes and heartbeats: a broker that
// restarts knows the producers again at most this long after it is up, and its next transaction
// check (transactionCheckInterval) reaches them. Per client and period: one route query per topic to
// a NameServer and one heartbeat to each broker, a tenth of the client's own 30 s rhythm's length.
const RegisterPeriod = 3 * time.Second

// KeepRegistered refreshes the routes of client p (a producer or transactional producer of
// rocketmq-client-go) and heartbeats to every broker in them, every period, until ctx ends. It
// returns at once; the error says the client is not of the shape it knows, and nothing runs.
func KeepRegistered(ctx context.Context, p any, period time.Duration) error {
	r, err := internalClient(p)
	if err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Routes first: a broker back in the route is where the heartbeat goes.
				r.UpdateTopicRouteInfo()
				r.SendHeartbeatToAllBrokerWithLock()
			}
		}
	}()
	return nil
}

// internalClient digs out the client's internal client: p.producer.client for a transactional
// producer, p.client for a default producer.
func internalClient(p any) (registrar, error) {
	v := reflect.ValueOf(p)
	for range 4 { // a bounded walk: transactionProducer -> defaultProducer -> client
		for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil, errors.New("rocketmq client: nil")
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			break
		}
		if f := v.FieldByName("client"); f.IsValid() && f.CanAddr() {
			f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			if r, ok := f.Interface().(registrar); ok && !f.IsNil() {
				return r, nil
			}
			break
		}
		next := v.FieldByName("producer")
		if !next.IsValid() || !next.CanAddr() {
			break
		}
		v = reflect.NewAt(next.Type(), unsafe.Pointer(next.UnsafeAddr())).Elem()
	}
	return nil, fmt.Errorf("rocketmq client %T: no internal client with UpdateTopicRouteInfo and SendHeartbeatToAllBrokerWithLock (client version changed?)", p)
}
