// Command order-service places orders: POST /orders writes the order in MySQL and publishes its
// OrderCreated event through a RocketMQ transactional message (see internal/order/place.go).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"rmqtx/order-service/internal/httpapi"
	"rmqtx/order-service/internal/order"
	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/config"
	"rmqtx/pkg/events"
	"rmqtx/pkg/httpx"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/mysqldb"
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
	shutdownGrace := env.Duration("SHUTDOWN_TIMEOUT", 20*time.Second)
	if err := env.Err(); err != nil {
		return err
	}

	// Logging: JSON lines with stable keys; the RocketMQ client's own log goes through it too.
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("service", "order-service")
	mq.RouteClientLogs(log)
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

	// Topic: must exist, and its route be known, before the producer relies on check-backs.
	adm, err := mq.NewAdmin(cfg.Namesrv)
	if err != nil {
		return err
	}
	defer adm.Close()
	topicCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = adm.EnsureTopic(topicCtx, cfg.Topic, cfg.Broker, 4)
	cancel()
	if err != nil {
		return err
	}

	// Transactional producer: the service is its listener. Every instance joins the same producer
	// group, so the broker can ask any live one about a half message; each has its own instance
	// name, or check-backs would reach the wrong listener.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc := order.NewService(orders, order.Config{
		Topic: cfg.Topic, FaultInjection: cfg.Faults, LocalTxTimeout: localTxTimeout,
	}, order.NewMetrics(reg), log)
	p, err := rocketmq.NewTransactionProducer(svc,
		producer.WithNsResolver(mq.Resolver(cfg.Namesrv)),
		producer.WithGroupName(cfg.Group),
		producer.WithInstanceName(mq.InstanceName("order")),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return fmt.Errorf("rocketmq producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start rocketmq producer: %w", err)
	}
	defer p.Shutdown()
	svc.UseProducer(p)
	if err := svc.Warmup(ctx); err != nil {
		return err
	}

	// HTTP: until SIGTERM/SIGINT; then stop taking requests and let in-flight orders finish.
	// The deferred calls above then shut down the producer and close the database, in that order.
	handler := httpapi.NewServer(log, svc, cfg.Faults, map[string]httpx.Check{
		"mysql":    orders.Ping,
		"rocketmq": func(ctx context.Context) error { return adm.Ping(ctx, cfg.Topic) },
	}, reg)
	err = httpx.Serve(ctx, httpx.NewServer(cfg.HTTPAddr, handler), shutdownGrace, func(addr string) {
		log.Info("listening", "addr", addr, "topic", cfg.Topic, "group", cfg.Group, "fault_injection", cfg.Faults)
	})
	log.Info("shutting down")
	return err
}
