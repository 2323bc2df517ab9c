package mq

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
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

// A second gap: the client forgets a broker (its cleanOfflineBroker, on the 30 s ticker) once the
// routes it holds no longer name it, and only a route learns it again. A broker that restarts
// returns to the NameServers' routes on its own registration timer, about 10 s after it started
// (measured with 5.3.3: its registration at start-up races its first connection to the NameServers,
// and the next one is scheduled 10 s later). So KeepRegistered also remembers the brokers it has
// seen and puts a vanished one back in the client's heartbeat list for RememberBrokers: the
// heartbeat then reaches it as soon as it listens again. A broker that is down makes that heartbeat
// fail fast (connection refused; the client logs a warning), and a broker removed for good is
// forgotten after RememberBrokers.

// Third, for consumers: a consumer takes up the queues of a broker that is back in its routes only
// at its next rebalance, which the client runs every 20 s; KeepRegistered rebalances on its own
// period too (the client's RebalanceIfNotPaused, which respects a paused consumer).

// RememberBrokers is how long KeepRegistered keeps heartbeating a broker that left the routes.
const RememberBrokers = 2 * time.Minute

// registrar is what KeepRegistered needs of the client's internal client.
type registrar interface {
	UpdateTopicRouteInfo()
	SendHeartbeatToAllBrokerWithLock()
}

// RegisterPeriod is how often KeepRegistered refreshes the routes and heartbeats: a broker that
// restarts knows the producers again at most this long after it is up, and its next transaction
// check (transactionCheckInterval) reaches them. Per client and period: one route query per topic to
// a NameServer, one heartbeat to each broker and, for a consumer, a rebalance: ten times the
// client's own rhythm, cheap for a few clients, worth revisiting for thousands.
const RegisterPeriod = 3 * time.Second

// KeepRegistered refreshes the routes of client p (a producer, transactional producer or push
// consumer of rocketmq-client-go, started), heartbeats to every broker in them and to those that
// left them less than RememberBrokers ago, and rebalances its consumers, every period, until ctx
// ends. It returns at once; an error says the client is not of the shape it knows, and nothing
// runs.
func KeepRegistered(ctx context.Context, p any, period time.Duration) error {
	r, err := internalClient(p)
	if err != nil {
		return err
	}
	mem, err := newBrokerMemory(r)
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
				mem.keep(time.Now())
				r.SendHeartbeatToAllBrokerWithLock()
				// A consumer takes up the queues of a broker back in its routes at its next
				// rebalance, every 20 s: now instead (a no-op for a client without consumers).
				if rb, ok := r.(interface{ RebalanceIfNotPaused() }); ok {
					rb.RebalanceIfNotPaused()
				}
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

// brokerMemory keeps the client's broker list (namesrvs.brokerAddressesMap, a sync.Map of broker
// name to *BrokerData, guarded for writes by namesrvs.lockNamesrv) from losing brokers too soon.
type brokerMemory struct {
	list *sync.Map
	lock *sync.Mutex
	seen map[any]rememberedBroker // broker name -> copy of its BrokerData
}

type rememberedBroker struct {
	data reflect.Value // a *BrokerData of the client's, copied
	last time.Time
}

func newBrokerMemory(r registrar) (*brokerMemory, error) {
	get := reflect.ValueOf(r).MethodByName("GetNameSrv")
	if !get.IsValid() || get.Type().NumIn() != 0 || get.Type().NumOut() != 1 {
		return nil, errors.New("rocketmq client: no GetNameSrv (client version changed?)")
	}
	ns := get.Call(nil)[0]
	for ns.Kind() == reflect.Interface || ns.Kind() == reflect.Pointer {
		if ns.IsNil() {
			return nil, errors.New("rocketmq client: nil name server list")
		}
		ns = ns.Elem()
	}
	if ns.Kind() != reflect.Struct {
		return nil, errors.New("rocketmq client: name server list is not a struct (client version changed?)")
	}
	m, l := ns.FieldByName("brokerAddressesMap"), ns.FieldByName("lockNamesrv")
	if !m.IsValid() || !l.IsValid() || m.Type() != reflect.TypeFor[sync.Map]() || l.Type() != reflect.TypeFor[sync.Mutex]() || !m.CanAddr() {
		return nil, errors.New("rocketmq client: no brokerAddressesMap/lockNamesrv (client version changed?)")
	}
	return &brokerMemory{
		list: (*sync.Map)(unsafe.Pointer(m.UnsafeAddr())),
		lock: (*sync.Mutex)(unsafe.Pointer(l.UnsafeAddr())),
		seen: map[any]rememberedBroker{},
	}, nil
}

// keep records the brokers in the client's list and puts back those that left it less than
// RememberBrokers ago.
func (b *brokerMemory) keep(now time.Time) {
	b.lock.Lock()
	defer b.lock.Unlock()
	present := map[any]bool{}
	b.list.Range(func(name, data any) bool {
		present[name] = true
		if c, ok := copyBrokerData(reflect.ValueOf(data)); ok {
			b.seen[name] = rememberedBroker{data: c, last: now}
		}
		return true
	})
	for name, rb := range b.seen {
		switch {
		case present[name]:
		case now.Sub(rb.last) > RememberBrokers:
			delete(b.seen, name)
		default:
			if c, ok := copyBrokerData(rb.data); ok {
				b.list.Store(name, c.Interface())
			}
		}
	}
}

// copyBrokerData copies a *BrokerData {Cluster, BrokerName string; BrokerAddresses map[int64]string;
// a mutex}: the client deletes addresses from the one it holds when it forgets a broker.
func copyBrokerData(p reflect.Value) (reflect.Value, bool) {
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	src := p.Elem()
	addrs := src.FieldByName("BrokerAddresses")
	if !addrs.IsValid() || addrs.Kind() != reflect.Map || addrs.Len() == 0 {
		return reflect.Value{}, false
	}
	c := reflect.New(src.Type())
	for _, f := range []string{"Cluster", "BrokerName"} {
		if v := src.FieldByName(f); v.IsValid() && v.Kind() == reflect.String {
			c.Elem().FieldByName(f).SetString(v.String())
		}
	}
	m := reflect.MakeMapWithSize(addrs.Type(), addrs.Len())
	for it := addrs.MapRange(); it.Next(); {
		m.SetMapIndex(it.Key(), it.Value())
	}
	c.Elem().FieldByName("BrokerAddresses").Set(m)
	return c, true
}
