package httpx

// Admission control: a bound on the requests a service works on at once.
//
// Past a certain number of concurrent requests a service does no more work per second; every
// further request only waits, in the database pool's queue or for a CPU, and makes every other
// request wait longer. Without a bound, an offer three times what the service can do makes
// every request slow, and the slowest ones time out after they have done half their work (in
// order-service: after the half message was sent, so each costs a rollback too). With a bound,
// what is over it is answered at once (or after a short wait for a slot), 503 with Retry-After,
// before it has done anything; what is admitted runs as fast as it would without the excess.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CodeOverloaded is the code of the 503 answer to a request refused for overload.
const CodeOverloaded = "overloaded"

// RetryAfter is the Retry-After header of a refusal, in seconds: long enough for the requests in
// flight to be answered, short enough that a client does not give up.
const RetryAfter = "1"

// overloadedFor is how long after a refusal Ready still reports the service overloaded, so that a
// load balancer polling /readyz every few seconds can see a service that refuses work.
const overloadedFor = time.Second

// AdmissionConfig bounds the requests served through an Admission.
type AdmissionConfig struct {
	// Limit is the most requests served at once; required, at least 1.
	Limit int
	// Wait is how long a request that finds every slot taken may wait for one before it is
	// refused; 0 refuses at once. Keep it to milliseconds: the point is to answer fast.
	Wait time.Duration
	// Log gets one line a second while requests are refused, with how many; nil logs nothing.
	// (Refusals have no access-log line each: under a flood, logging every one would spend the
	// CPU the admitted requests need.)
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Admission admits at most Limit requests at once through Handler and refuses the others with
// 503 overloaded. It does not queue beyond AdmissionConfig.Wait: a queue would only move the
// waiting from the database pool to here, and a refused client can retry elsewhere or later.
type Admission struct {
	slots       chan struct{} // one token per admitted request
	wait        time.Duration
	now         func() time.Time
	log         *slog.Logger
	body        []byte // the refusal's answer, the same every time
	refused     prometheus.Counter
	lastRefusal atomic.Int64 // Unix nanoseconds of the last refusal; 0 before the first

	refusals  atomic.Int64 // refusals so far
	lastLog   atomic.Int64 // Unix nanoseconds of the last log line about refusals
	loggedFor atomic.Int64 // refusals counted in log lines so far
}

// NewAdmission builds an Admission and registers its metrics on reg: http_admission_limit,
// http_admission_in_flight and http_admission_refused_total.
func NewAdmission(cfg AdmissionConfig, reg prometheus.Registerer) (*Admission, error) {
	if cfg.Limit < 1 {
		return nil, fmt.Errorf("admission limit must be at least 1, got %d", cfg.Limit)
	}
	a := &Admission{slots: make(chan struct{}, cfg.Limit), wait: max(cfg.Wait, 0), now: cfg.Now, log: cfg.Log}
	if a.now == nil {
		a.now = time.Now
	}
	body, err := json.Marshal(map[string]*Error{"error": Errorf(http.StatusServiceUnavailable, CodeOverloaded,
		"%d requests are in flight, this instance's limit; nothing was done, try again after Retry-After or on another instance", cfg.Limit)})
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	a.body = append(body, '\n')
	a.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "http_admission_refused_total",
		Help: "Requests refused with 503 overloaded because the limit of requests in flight was reached.",
	})
	for _, c := range []prometheus.Collector{
		a.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "http_admission_in_flight",
			Help: "Requests admitted and not yet answered.",
		}, func() float64 { return float64(len(a.slots)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "http_admission_limit",
			Help: "The most requests admitted at once (MAX_IN_FLIGHT).",
		}, func() float64 { return float64(cap(a.slots)) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register admission metrics: %w", err)
		}
	}
	return a, nil
}

// Handler is middleware that serves a request through next only if a slot is free (or frees up
// within the wait), and otherwise answers 503 overloaded, Retry-After, the error envelope, without
// reading the body or calling next.
func (a *Admission) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a.acquire(r.Context()) {
		case refused:
			a.refuse(w, r)
			return
		case cancelled:
			// The request was cancelled while it waited for a slot (its client gone, or the
			// server shutting down): that is not overload, so it is neither counted as a refusal
			// nor reported on /readyz. (net/http notices a client gone only once the request's
			// body has been read, so for POST /orders this is rare.)
			WriteError(w, r, a.log, Errorf(http.StatusServiceUnavailable, CodeOverloaded, "the request was cancelled while it waited for a slot"))
			return
		}
		defer func() { <-a.slots }()
		next.ServeHTTP(w, r)
	})
}

// What acquire did with a request.
const (
	admitted  = iota // it holds a slot
	refused          // no slot within the wait
	cancelled        // its context ended while it waited
)

func (a *Admission) acquire(ctx context.Context) int {
	select {
	case a.slots <- struct{}{}:
		return admitted
	default:
	}
	if a.wait == 0 {
		return refused
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return admitted
	case <-t.C:
		return refused
	case <-ctx.Done():
		return cancelled
	}
}

// refuse answers 503 overloaded. It is on the hot path of an overload, so it does as little as it
// can: a body encoded once, no access-log line (the Middleware's is skipped), and at most one log
// line a second for all refusals.
func (a *Admission) refuse(w http.ResponseWriter, r *http.Request) {
	a.refused.Inc()
	now := a.now().UnixNano()
	a.lastRefusal.Store(now)
	n := a.refusals.Add(1)
	if quiet, ok := r.Context().Value(quietKey{}).(*bool); ok {
		*quiet = true
	}
	if last := a.lastLog.Load(); a.log != nil && now-last >= int64(time.Second) && a.lastLog.CompareAndSwap(last, now) {
		a.log.WarnContext(r.Context(), "refusing requests: overloaded", "refused", n-a.loggedFor.Swap(n),
			"in_flight", len(a.slots), "limit", cap(a.slots))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", RetryAfter)
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(a.body) // the client may be gone; nothing useful to do about it
}

// Ready is a readiness Check: it fails for a second after each refusal, so that /readyz says the
// instance is refusing work and a load balancer can send it less. It never fails otherwise; a
// full but not refusing instance is ready. (/healthz never looks at load: an overloaded process
// is alive, and restarting it would only lose the work in flight.)
func (a *Admission) Ready(context.Context) error {
	last := a.lastRefusal.Load()
	if last == 0 || a.now().Sub(time.Unix(0, last)) >= overloadedFor {
		return nil
	}
	return fmt.Errorf("overloaded: refusing requests, %d of %d in flight", len(a.slots), cap(a.slots))
}
