// Command order-service places orders: POST /orders writes the order in MySQL and publishes its
// OrderCreated event through a RocketMQ transactional message (see internal/order/place.go).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/httpapi"
	"rmqtx/order-service/internal/order"
	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/order-service/internal/ui"
	"rmqtx/pkg/config"
	"rmqtx/pkg/events"
	"rmqtx/pkg/httpx"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/retention"
	"rmqtx/pkg/tracing"
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "order-service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	// Configuration: a bad or missing setting stops the service here, naming the setting.
	env := config.NewEnv(getenv)
	cfg := env.Common(":8081", events.DefaultTopic, "order-service")
	localTxTimeout := env.Duration("LOCAL_TX_TIMEOUT", 5*time.Second)
	// Admission: the most orders placed at once, and how long an order over it may wait for a
	// slot before it is refused (defaultMaxInFlight and defaultAdmissionWait say why).
	maxInFlight := env.Int("MAX_IN_FLIGHT", defaultMaxInFlight, 1, mysqldb.DefaultMaxOpenConns)
	admissionWait := env.DurationUpTo("ADMISSION_WAIT", defaultAdmissionWait, time.Second)
	shutdownGrace := env.Duration("SHUTDOWN_TIMEOUT", 20*time.Second)
	// One of the two right ways (the transactional message, or the outbox of
	// internal/order/outbox.go), or one of the wrong ways kept to show what breaks and to measure
	// against (internal/order/wrong.go); those start only with FAULT_INJECTION=on.
	placement := env.OneOf("PLACEMENT", order.PlacementTransactional, order.Placements...)
	// PLACEMENT=outbox only: the relay's settings (internal/order/relay.go).
	relayCfg := order.RelayConfig{
		Interval: env.Duration("OUTBOX_POLL_INTERVAL", 100*time.Millisecond),
		Batch:    env.Int("OUTBOX_BATCH", 100, 1, 1000),
		Faults:   cfg.Faults,
	}
	// Optional: where the web page's cart requests go (package ui); unset, the page says so.
	cartURL := env.URL("CART_URL")
	// How this instance names itself in order timelines (instanceName).
	instance := env.String("INSTANCE_NAME", "")
	if err := env.Err(); err != nil {
		return err
	}
	if order.WrongWay(placement) != "" && !cfg.Faults {
		return fmt.Errorf("config: PLACEMENT=%s places orders a wrong way on purpose and starts only with FAULT_INJECTION=on", placement)
	}
	instance = instanceName(instance, cfg.HTTPAddr)
	if order.WrongWay(placement) != "" {
		instance += " [PLACEMENT=" + placement + "]" // every timeline step names the wrong way
	}
	// Tracing: the standard OTEL_* variables; off (a no-op) unless an OTLP endpoint is set.
	tp, err := tracing.Setup(ctx, "order-service", getenv)
	if err != nil {
		return err
	}
	defer tp.Flush()

	// Logging: JSON lines with stable keys, and the trace ID wherever a span is under way; the
	// RocketMQ client's own log goes through it too.
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))).With("service", "order-service")
	mq.RouteClientLogs(log)
	if why := order.WrongWay(placement); why != "" {
		log.Warn("PLACEMENT="+placement+": this instance places orders a WRONG way, on purpose; never run it for real",
			"placement", placement, "breaks", why)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	// Database: waits a bounded time for MySQL, then applies the schema.
	db, err := mysqldb.Open(ctx, cfg.MySQLDSN, store.Schema, mysqldb.Options{}, log)
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	orders := store.New(db)

	// Retention: timeline rows older than TIMELINE_RETENTION are deleted in the background, in
	// small batches; the purge stops before the database closes.
	purger, err := retention.New(ctx, db, log, cfg.TimelineRetention, retention.Batch, time.Now, store.Purged...)
	if err != nil {
		return err
	}
	defer purger.Start(ctx)()

	// Topic: must exist, and its route be known, before the producer relies on check-backs. The
	// outbox places orders without the broker, so it also starts without one: it makes the topic
	// once the broker answers (brokerLater, below), and the events wait in the outbox until then.
	adm, err := mq.NewAdmin(cfg.Namesrv)
	if err != nil {
		return err
	}
	defer adm.Close()
	if placement != order.PlacementOutbox {
		topicCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = adm.EnsureTopic(topicCtx, cfg.Topic, cfg.Broker, 4)
		cancel()
		if err != nil {
			return err
		}
	}

	// Metrics: the service's own registry, served on /metrics.
	reg := prometheus.NewRegistry()
	metrics, err := order.NewMetrics(reg)
	if err != nil {
		return err
	}
	// Admission: orders over the bound are refused with 503 before anything is sent or written,
	// instead of queueing for a database connection until their local transaction times out.
	admit, err := httpx.NewAdmission(httpx.AdmissionConfig{Limit: maxInFlight, Wait: admissionWait, Log: log}, reg)
	if err != nil {
		return err
	}

	// Timeline: each order's steps, for GET /orders/{id}/timeline and the web page; TIMELINE=off
	// records none, to measure what recording costs. Closed after HTTP has drained (deferred
	// calls run in reverse), so no step of a finished request is lost.
	var steps *timeline.Recorder
	if cfg.Timeline {
		steps = timeline.NewRecorder(orders, instance, log, metrics.TimelineDropped)
		defer steps.Close()
	}

	// Transactional producer: the service is its listener, so NewService builds it through
	// NewProducer. Every instance joins the same producer group, so the broker can ask any live
	// one about a half message; each has its own instance name, or check-backs would reach the
	// wrong listener.
	var p rocketmq.TransactionProducer
	svc, err := order.NewService(orders, metrics, log, order.Config{
		Topic: cfg.Topic, Faults: cfg.Faults, LocalTxTimeout: localTxTimeout, Tracing: tp, Timeline: steps, Placement: placement,
		NewProducer: func(l primitive.TransactionListener) (order.Producer, error) {
			var err error
			p, err = rocketmq.NewTransactionProducer(l,
				producer.WithNsResolver(mq.Resolver(cfg.Namesrv)),
				producer.WithGroupName(cfg.Group),
				producer.WithInstanceName(mq.InstanceName("order")),
				producer.WithSendMsgTimeout(3*time.Second),
			)
			return p, err
		},
	})
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start rocketmq producer: %w", err)
	}
	defer p.Shutdown()
	// A broker that restarts sends check-backs only once it has seen a heartbeat of the group,
	// which the client sends every 30 s: refresh the routes and heartbeat every few seconds
	// instead (pkg/mq/heartbeat.go says how, and why not through an option).
	if err := mq.KeepRegistered(ctx, p, mq.RegisterPeriod); err != nil {
		log.Warn("heartbeats stay at the client's 30 s", "err", err)
	}
	if placement == order.PlacementOutbox {
		defer brokerLater(ctx, adm, svc, cfg, log)()
	} else if err := svc.Warmup(ctx); err != nil {
		return err
	}

	// Placement: the transactional flow, unless the outbox or a wrong way was asked for.
	var (
		placer     httpapi.Placer
		stopPlacer func()
	)
	if placement == order.PlacementOutbox {
		relayCfg.Timeline = steps
		placer, stopPlacer, err = startOutbox(svc, orders, cfg, relayCfg, log, reg)
	} else {
		placer, stopPlacer, err = choosePlacement(placement, svc, cfg)
	}
	if err != nil {
		return err
	}
	defer stopPlacer()

	// HTTP: until SIGTERM/SIGINT; then stop taking requests and let in-flight orders finish.
	// The deferred calls above then shut down the producer and close the database, in that order.
	ready := map[string]httpx.Check{
		"mysql":     orders.Ping,
		"rocketmq":  func(ctx context.Context) error { return adm.Ping(ctx, cfg.Topic) },
		"admission": admit.Ready,
	}
	if placement == order.PlacementOutbox {
		// The outbox places orders without the broker: an instance that left the load balancer
		// whenever the broker is down would throw that away. The backlog shows in outbox_rows.
		delete(ready, "rocketmq")
	}
	handler := httpapi.NewServer(log, svc, placer, admit, cfg.Faults, ready, reg)
	// The web page (/ and /ui/) in front of the API. It reaches cart-service through this
	// service, so a browser needs one address and no CORS.
	handler = ui.With(handler, log, ui.Config{CartURL: cartURL, Faults: cfg.Faults, Timeline: cfg.Timeline,
		Placement: placement, WrongWay: order.WrongWay(placement)})
	if cfg.Pprof {
		handler = httpx.WithProfiler(handler)
	}
	handler = tp.HTTP(handler)
	err = httpx.Serve(ctx, httpx.NewServer(cfg.HTTPAddr, handler), shutdownGrace, func(addr string) {
		log.Info("listening", "addr", addr, "topic", cfg.Topic, "group", cfg.Group, "fault_injection", cfg.Faults,
			"placement", placement, "max_in_flight", maxInFlight, "admission_wait", admissionWait.String(), "tracing", tp.Enabled(), "pprof", cfg.Pprof, "timeline", cfg.Timeline, "timeline_retention", cfg.TimelineRetention.String(), "cart_url", cartURL != nil)
	})
	log.Info("shutting down")
	return err
}

// defaultMaxInFlight is MAX_IN_FLIGHT's default, a quarter of the database pool: 8 orders placed at
// once per instance.
//
// At most the pool: each order holds at most one connection at a time (the Idempotency-Key
// look-up, then the local transaction), so with no more orders in flight than connections a
// local transaction never waits for one. One that waits spends its LOCAL_TX_TIMEOUT in the pool's
// queue, after its half message was sent, and ends in a 500 and a rollback.
//
// Well below the pool, because more orders in flight place no more orders: scripts/overload.sh
// on two cores finds the closed-loop capacity already at 8 clients over two instances, and every
// order in flight beyond that waits for a CPU or a lock and makes all of them slower (at 16 per
// instance the admitted orders' p99 was 3.6 times the 8-client p99; at 6, 1.7 times). The rest of
// the pool stays free for check-backs, GET requests, the timeline writer and /readyz.
const defaultMaxInFlight = mysqldb.DefaultMaxOpenConns / 4

// defaultAdmissionWait is ADMISSION_WAIT's default: an order that finds every slot taken waits
// this long for one before it is refused. Under a flood a slot frees every few milliseconds, and a
// waiting order takes it at once instead of leaving it idle until the next arrival. On two cores,
// at three times the capacity (scripts/overload.sh, one run each, back to back): with no wait 87 %
// of the closed-loop capacity was placed at 2.3 times the 8-client p99; with 2 ms, 94 % at 2.1
// times.
const defaultAdmissionWait = 2 * time.Millisecond

// instanceName is INSTANCE_NAME, or host:port when it is unset, so that two instances on one host
// (or two containers) differ in order timelines.
func instanceName(name, httpAddr string) string {
	if name != "" {
		return name
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(httpAddr) // validated by config
	return net.JoinHostPort(host, port)
}

// choosePlacement returns what POST /orders calls: the Service (the transactional flow, whose
// check-back the wrong check-back placements replace inside it), or a placement without a half
// message (internal/order/wrong_send.go). Those, and the fault point resend-event, need a plain
// producer of their own, which stop shuts down.
func choosePlacement(placement string, svc *order.Service, cfg config.Common) (placer httpapi.Placer, stop func(), err error) {
	if placement == order.PlacementDirect {
		return svc.Direct(), func() {}, nil
	}
	if !cfg.Faults {
		return svc, func() {}, nil
	}
	// Its own instance name, or it would share the transactional producer's internal client;
	// its own group, because a group is either transactional or not.
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(mq.Resolver(cfg.Namesrv)),
		producer.WithGroupName(cfg.Group+"-plain"),
		producer.WithInstanceName(mq.InstanceName("order-plain")),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("rocketmq plain producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, nil, fmt.Errorf("start rocketmq plain producer: %w", err)
	}
	stop = func() { p.Shutdown() }
	placer = svc
	switch placement {
	case order.PlacementSaveThenSend:
		placer = svc.SaveThenSend(p)
	case order.PlacementSendThenSave:
		placer = svc.SendThenSave(p)
	}
	// resend-event publishes a placed order's event again (internal/order/wrong_resend.go).
	return svc.WithResend(placer, p), stop, nil
}

// brokerLater is the outbox's start-up against the broker, in the background: make the topic, then
// warm up the transactional producer, which in this placement only answers check-backs of half
// messages an earlier transactional run left. It tries once, then again after 1 s, 2 s, ... up to
// 30 s between tries, so that a long outage costs a few client-library error lines a minute, not
// several a second. It returns a function that stops it and waits (for as long as a NameServer
// look-up already under way, which takes no context: up to about 6 s), to be called before adm
// and the producer are closed.
func brokerLater(ctx context.Context, adm *mq.Admin, svc *order.Service, cfg config.Common, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for pause := time.Second; ; pause = min(2*pause, 30*time.Second) {
			// EnsureTopic retries for as long as its context allows; a short one makes it one try.
			try, endTry := context.WithTimeout(ctx, 2*time.Second)
			err := adm.EnsureTopic(try, cfg.Topic, cfg.Broker, 4)
			endTry()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return // shutting down
			}
			if pause == time.Second {
				log.Warn("outbox: the broker or the topic is not there yet; orders are accepted and their events wait in the outbox",
					"topic", cfg.Topic, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
		log.Info("outbox: topic available", "topic", cfg.Topic, "after", time.Since(start).Round(time.Millisecond).String())
		if err := svc.Warmup(ctx); err != nil && ctx.Err() == nil {
			log.Warn("outbox: warm-up half message failed; check-backs of earlier half messages may wait for the client's next heartbeat", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// startOutbox returns the outbox placement (internal/order/outbox.go) and starts its relay, which
// publishes with a plain producer of its own (its own group and instance name, as the wrong ways' plain producer).
// stop lets the relay finish its batch, then shuts the producer down.
func startOutbox(svc *order.Service, orders *store.Store, cfg config.Common, relayCfg order.RelayConfig,
	log *slog.Logger, reg prometheus.Registerer) (placer httpapi.Placer, stop func(), err error) {
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(mq.Resolver(cfg.Namesrv)),
		producer.WithGroupName(cfg.Group+"-outbox"),
		producer.WithInstanceName(mq.InstanceName("order-outbox")),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("rocketmq producer (outbox relay): %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, nil, fmt.Errorf("start rocketmq producer (outbox relay): %w", err)
	}
	relay, err := order.NewRelay(orders, p, log, reg, relayCfg)
	if err != nil {
		p.Shutdown()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	// After a broker restart the client would learn the broker's route again only at its next
	// 30 s refresh, and the outbox would wait that long (19 s measured, with the broker up): refresh
	// on the transactional producer's short period instead (pkg/mq/heartbeat.go).
	if err := mq.KeepRegistered(ctx, p, mq.RegisterPeriod); err != nil {
		log.Warn("the outbox relay's producer refreshes its routes at the client's 30 s", "err", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	return svc.Outbox(relay.Wake), func() {
		cancel()
		<-done
		p.Shutdown()
	}, nil
}
