// Command cart-service keeps users' carts and takes ordered items off them when it hears, through
// RocketMQ, that an order was created (see internal/cart/order_created.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/cart-service/internal/cart"
	"rmqtx/cart-service/internal/httpapi"
	"rmqtx/cart-service/internal/store"
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
		fmt.Fprintln(os.Stderr, "cart-service:", err)
		os.Exit(1)
	}
}

// run is the whole service. It returns when ctx is cancelled or SIGTERM/SIGINT arrives (nil after
// a clean shutdown), or when start-up fails. Once the HTTP server listens it logs "listening" with
// the bound address, which is how tests started with HTTP_ADDR=127.0.0.1:0 find it.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	// Configuration: a bad or missing setting stops the service here, naming the setting, before
	// any server is contacted.
	env := config.NewEnv(getenv)
	cfg := env.Common(":8082", events.DefaultTopic, "cart-service")
	// At least one retry, or cart-fail-once (and every database blip) would go straight to the
	// dead-letter topic.
	maxReconsume := env.Int("MAX_RECONSUME", 5, 1, 32)
	shutdownGrace := env.Duration("SHUTDOWN_TIMEOUT", 20*time.Second)
	// A consumer that is wrong on purpose (internal/cart/wrong.go) exists to be watched failing; it
	// must never run by accident, so it needs fault injection to be on as well.
	mode := env.OneOf("CONSUMER", cart.ModeCorrect, cart.Modes()...)
	// Admission: the most REST requests served at once (defaultMaxInFlight says why), and how
	// long a request over it may wait for a slot before it is refused.
	maxInFlight := env.Int("MAX_IN_FLIGHT", defaultMaxInFlight, 1, mysqldb.DefaultMaxOpenConns)
	admissionWait := env.DurationUpTo("ADMISSION_WAIT", 0, time.Second)
	if err := env.Err(); err != nil {
		return err
	}
	if mode != cart.ModeCorrect && !cfg.Faults {
		return fmt.Errorf("config: CONSUMER=%s is wrong on purpose and runs only with FAULT_INJECTION=on", mode)
	}
	// Tracing: the standard OTEL_* variables; off (a no-op) unless an OTLP endpoint is set.
	tp, err := tracing.Setup(ctx, "cart-service", getenv)
	if err != nil {
		return err
	}
	defer tp.Flush()

	// Logging: JSON lines with stable keys, and the trace ID wherever a span is under way; the
	// RocketMQ client's own log goes through it too.
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))).With("service", "cart-service")
	mq.RouteClientLogs(log)
	// Signals cancel ctx from here on, so a SIGTERM during a slow start-up stops it too.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	// Database: waits a bounded time for MySQL, then applies the schema.
	db, err := mysqldb.Open(ctx, cfg.MySQLDSN, store.Schema, mysqldb.Options{}, log)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("mysql handle: %w", err)
	}
	defer sqlDB.Close()
	carts := store.New(db)

	// Retention: timeline rows older than TIMELINE_RETENTION are deleted in the background, in
	// small batches; the purge stops before the database closes.
	purger, err := retention.New(ctx, db, log, cfg.TimelineRetention, retention.Batch, time.Now, store.Purged...)
	if err != nil {
		return err
	}
	defer purger.Start(ctx)()

	// Topics: the push consumer refuses to start on a topic that does not exist. Its group's
	// retry topic (where messages answered "retry later" come back from) is created by the broker
	// only at the consumer's first heartbeat, after the consumer has looked for its route; the
	// client looks again only every 30 s, so the first retries of a new group would wait that
	// long. Created here, it is found at start. (Without ROCKETMQ_BROKER_ADDR the service cannot
	// create topics; then only a brand-new group's first half minute is affected.)
	adm, err := mq.NewAdmin(cfg.Namesrv)
	if err != nil {
		return err
	}
	defer adm.Close()
	topicCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = adm.EnsureTopic(topicCtx, cfg.Topic, cfg.Broker, 4)
	if err == nil && cfg.Broker != "" {
		err = adm.EnsureTopic(topicCtx, retryTopic(cfg.Group), cfg.Broker, 1)
	}
	cancel()
	if err != nil {
		return err
	}

	// Metrics: the service's own registry, served on /metrics.
	reg := prometheus.NewRegistry()
	metrics, err := cart.NewMetrics(reg, carts.CountRejections)
	if err != nil {
		return err
	}
	// Admission: REST requests over the bound are refused with 503 before they touch the
	// database, instead of queueing for connections the consumer needs too.
	admit, err := httpx.NewAdmission(httpx.AdmissionConfig{Limit: maxInFlight, Wait: admissionWait, Log: log}, reg)
	if err != nil {
		return err
	}

	// Timeline: what each delivery did, for GET /orders/{order_id}/timeline and order-service's web
	// page; TIMELINE=off records nothing, to measure what recording costs. Closed after the
	// consumer has stopped (deferred calls run in reverse), so no step of a delivery is lost.
	var steps *cart.Recorder
	if cfg.Timeline {
		steps = cart.NewRecorder(carts, log, metrics.TimelineDropped)
		defer steps.Close()
	}

	// Consumer: applies OrderCreated events; started before HTTP so that /readyz means it. The
	// handler is closed after the consumer has stopped (deferred calls run in reverse).
	c, err := newConsumer(cfg, maxReconsume)
	if err != nil {
		return err
	}
	handler, err := cart.NewHandler(carts, metrics, log, cart.Config{
		Faults: cfg.Faults, MaxReconsume: int32(maxReconsume), Tracing: tp, Timeline: steps,
		Mode: mode, PersistOffsets: offsetPersister(c),
	})
	if err != nil {
		return err
	}
	defer handler.Close()
	if err := startConsumer(c, cfg, handler); err != nil {
		return err
	}
	// A broker that restarts serves this group's pulls and retries once it has seen its
	// heartbeat, which the client sends every 30 s: every few seconds instead (pkg/mq/heartbeat.go).
	if err := mq.KeepRegistered(ctx, c, mq.RegisterPeriod); err != nil {
		log.Warn("heartbeats stay at the client's 30 s", "err", err)
	}
	var consuming atomic.Bool
	consuming.Store(true)
	defer func() {
		// After HTTP has stopped and before the database closes: a delivery still being
		// applied needs the database, and one cut short is not acknowledged, so it comes again.
		consuming.Store(false)
		if err := c.Shutdown(); err != nil {
			log.Warn("consumer shutdown", "err", err)
		}
	}()

	// HTTP: until SIGTERM/SIGINT; then stop taking requests and let in-flight ones finish. The
	// deferred calls above then shut down the consumer and close the database, in that order.
	api := httpapi.NewServer(log, carts, admit, reg, map[string]httpx.Check{
		"mysql": carts.Ping,
		"consumer": func(context.Context) error {
			if !consuming.Load() {
				return errors.New("not running")
			}
			return nil
		},
		"rocketmq":  func(ctx context.Context) error { return adm.Ping(ctx, cfg.Topic) },
		"admission": admit.Ready,
	})
	if cfg.Pprof {
		api = httpx.WithProfiler(api)
	}
	api = tp.HTTP(api)
	err = httpx.Serve(ctx, httpx.NewServer(cfg.HTTPAddr, api), shutdownGrace, func(addr string) {
		log.Info("listening", "addr", addr, "topic", cfg.Topic, "group", cfg.Group,
			"max_reconsume", maxReconsume, "consumer", mode, "max_in_flight", maxInFlight, "admission_wait", admissionWait.String(), "fault_injection", cfg.Faults, "tracing", tp.Enabled(), "pprof", cfg.Pprof, "timeline", cfg.Timeline, "timeline_retention", cfg.TimelineRetention.String())
	})
	log.Info("shutting down")
	return err
}

// defaultMaxInFlight is MAX_IN_FLIGHT's default: half the database pool. Each REST request holds
// at most one connection at a time, so the API alone never fills the pool, and the consumer,
// which shares it, keeps the other half: a flood of cart requests must not delay the orders
// being applied. (The consumer needs no bound of its own: the broker hands it a bounded number
// of messages at a time.)
const defaultMaxInFlight = mysqldb.DefaultMaxOpenConns / 2

// newConsumer creates the push consumer of the group.
func newConsumer(cfg config.Common, maxReconsume int) (rocketmq.PushConsumer, error) {
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(mq.Resolver(cfg.Namesrv)),
		consumer.WithGroupName(cfg.Group),
		// Its own instance name: the client library shares one internal client among everything
		// in the process with the same name.
		consumer.WithInstance(mq.InstanceName("cart")),
		// Where a consumer group that has never consumed starts. From the first offset, because
		// events committed before the group existed (cart-service deployed after order-service,
		// or its group renamed) must still be applied; starting from the last offset would skip
		// them for ever. Re-applying is harmless: processed_orders turns it into a no-op. A group
		// with a committed offset resumes from it whatever this says.
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		// After this many failed deliveries the broker moves the message to %DLQ%<group>.
		consumer.WithMaxReconsumeTimes(int32(maxReconsume)),
		// One message per callback: the result acknowledges or retries exactly that message.
		consumer.WithConsumeMessageBatchMaxSize(1),
	)
	if err != nil {
		return nil, fmt.Errorf("rocketmq consumer: %w", err)
	}
	return c, nil
}

// startConsumer subscribes the handler to OrderCreated events of the topic and starts consuming.
func startConsumer(c rocketmq.PushConsumer, cfg config.Common, h *cart.Handler) error {
	selector := consumer.MessageSelector{Type: consumer.TAG, Expression: events.TagOrderCreated}
	if err := c.Subscribe(cfg.Topic, selector, h.Callback()); err != nil {
		return fmt.Errorf("subscribe to %s: %w", cfg.Topic, err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start rocketmq consumer (group %s, topic %s): %w", cfg.Group, cfg.Topic, err)
	}
	return nil
}

// offsetPersister sends the consumer's acknowledged offsets to the broker now, for
// CONSUMER=ack-before-commit's crash. The client library does it on its own every 5 s; the method
// belongs to its concrete push consumer, not to the rocketmq.PushConsumer interface.
func offsetPersister(c rocketmq.PushConsumer) func() error {
	p, ok := c.(interface{ PersistConsumerOffset() error })
	if !ok {
		return nil
	}
	return p.PersistConsumerOffset
}

// retryTopic is where the broker puts a consumer group's messages to be consumed again
// (RocketMQ's naming; the client library keeps its helper internal).
func retryTopic(group string) string { return "%RETRY%" + group }
