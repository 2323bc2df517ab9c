package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"rmqtx/order-service/internal/store"
	"rmqtx/order-service/internal/timeline"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/tracing"
)

// Producer is the part of the RocketMQ transactional producer this package uses; tests fake it.
type Producer interface {
	SendMessageInTransaction(ctx context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error)
}

// Service places orders (place.go) and reads them (orders.go, timeline_read.go). It is also the
// producer's primitive.TransactionListener.
type Service struct {
	store    *store.Store
	producer Producer
	topic    string
	faults   bool
	txBound  time.Duration
	// checkBound bounds one check-back (place.go says why).
	checkBound time.Duration
	log        *slog.Logger
	metrics    *Metrics
	crash      func()
	now        func() time.Time
	timeline   *timeline.Recorder // what happened, for people watching; nil records nothing
	tracing    *tracing.Provider
	tracer     trace.Tracer
	// placement is PLACEMENT: the check-back of a wrong one is replaced (wrong_checkback.go).
	placement string

	// inflight hands each attempt from Place to ExecuteLocalTransaction, which the client library
	// calls on the same goroutine, in between, with nothing but the message. It is never used to
	// answer a check-back: after a crash it is empty, and the check-back may come to another
	// instance anyway.
	inflight sync.Map // order ID -> *attempt
}

// Config is what a Service needs besides its store, metrics and logger.
type Config struct {
	// Topic carries the OrderCreated events.
	Topic string
	// NewProducer builds the transactional producer whose listener is the Service: the producer
	// needs its listener when it is built, so the Service builds it. Required.
	NewProducer func(primitive.TransactionListener) (Producer, error)
	// Faults honours the X-Fault points of faults.go (FAULT_INJECTION=on). Off, they are refused.
	Faults bool
	// LocalTxTimeout bounds the local transaction; 0 means 5 s.
	LocalTxTimeout time.Duration
	// Crash is what the crash fault points call; nil means faults.KillSelf. Tests pass a stand-in,
	// so the test binary survives.
	Crash func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tracing records the spans of the flow (tracing.go); nil records none.
	Tracing *tracing.Provider
	// Timeline records each order's steps (timeline.go), for people watching; nil records none
	// (TIMELINE=off).
	Timeline *timeline.Recorder
	// Placement is PLACEMENT; "" means transactional. The wrong check-backs (wrong_checkback.go)
	// are chosen here, because the producer's listener is fixed when it is built.
	Placement string
}

// NewService builds the Service and, through cfg.NewProducer, its producer (not started).
func NewService(st *store.Store, m *Metrics, log *slog.Logger, cfg Config) (*Service, error) {
	if cfg.NewProducer == nil {
		return nil, errors.New("order.Config.NewProducer is required")
	}
	s := &Service{
		store: st, topic: cfg.Topic, faults: cfg.Faults, txBound: cfg.LocalTxTimeout, log: log, metrics: m,
		crash: cfg.Crash, tracing: cfg.Tracing, timeline: cfg.Timeline, placement: cfg.Placement,
	}
	if s.placement == "" {
		s.placement = PlacementTransactional
	}
	// main refuses these too, with the settings' names; this guard keeps any other caller from
	// running a wrong way by accident.
	if !slices.Contains(Placements, s.placement) {
		return nil, fmt.Errorf("unknown placement %q (one of %s)", s.placement, strings.Join(Placements, ", "))
	}
	if WrongWay(s.placement) != "" && !cfg.Faults {
		return nil, fmt.Errorf("placement %s is wrong on purpose and runs only with fault injection on", s.placement)
	}
	m.placementIs(s.placement)
	if s.txBound == 0 {
		s.txBound = 5 * time.Second
	}
	s.checkBound = 10 * time.Second
	if s.crash == nil {
		s.crash = faults.KillSelf
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s.now = func() time.Time { return now().UTC().Truncate(time.Microsecond) } // DATETIME(6)
	if s.tracing == nil {
		s.tracing = tracing.Disabled()
	}
	s.tracer = s.tracing.Tracer(tracerName)
	p, err := cfg.NewProducer(s.listener())
	if err != nil {
		return nil, fmt.Errorf("transactional producer: %w", err)
	}
	s.producer = p
	return s, nil
}

// Warmup makes the broker able to reach this producer with check-backs right away. The Go client
// registers a producer with a broker only through heartbeats, sent 1 s after Start and then every
// 30 s, and only to brokers whose routes it has fetched, which it does on the first send. Without
// this, a producer whose first order comes later than 1 s after start is invisible to the broker
// for up to 30 s, and the check-backs meant for it are lost attempts. The warm-up half message
// fetches the route before the first heartbeat; ExecuteLocalTransaction rolls it back, so no
// consumer ever sees it.
func (s *Service) Warmup(ctx context.Context) error {
	msg := primitive.NewMessage(s.topic, []byte("{}")).WithTag("warmup").WithKeys([]string{"warmup-" + uuid.NewString()})
	if _, err := s.producer.SendMessageInTransaction(ctx, msg); err != nil {
		return fmt.Errorf("warm-up half message: %w", err)
	}
	return nil
}

// injects reports whether fault injection is on and f is the given point. The flow calls it at
// each fault point, so a reader sees exactly where each one strikes.
func (s *Service) injects(f Fault, point string) bool { return s.faults && f.Has(point) }
