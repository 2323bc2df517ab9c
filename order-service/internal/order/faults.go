package order

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"rmqtx/pkg/faults"
)

// Fault is a failure a request asks to have injected (header X-Fault, docs/design.md), honoured only
// when the service runs with FAULT_INJECTION=on. The zero Fault injects nothing.
type Fault struct {
	Point string        // one of the Fault* constants below, or ""
	Slow  time.Duration // for FaultSlowLocalTx
}

// Fault points. The cart-* points travel to cart-service in the message.
const (
	FaultCrashAfterHalf        = "crash-after-half"
	FaultCrashAfterLocalCommit = "crash-after-local-commit"
	FaultSkipEndTransaction    = "skip-end-transaction"
	FaultFailLocalTx           = "fail-local-tx"
	FaultSlowLocalTx           = "slow-local-tx"
	// PLACEMENT=outbox only (outbox.go): the relay dies after publishing the order's event and
	// before deleting its outbox row.
	FaultCrashAfterRelayPublish = "crash-after-relay-publish"
	FaultCartFailOnce           = faults.CartFailOnce
	FaultCartCrashAfterCommit   = faults.CartCrashAfterCommit
)

// maxSlow bounds slow-local-tx: it holds a database transaction open for that long.
const maxSlow = 60 * time.Second

// ParseFault reads an X-Fault header value. enabled is FAULT_INJECTION=on.
func ParseFault(header string, enabled bool) (Fault, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return Fault{}, nil
	}
	if !enabled {
		return Fault{}, &ValidationError{Fields: map[string]string{
			"X-Fault": "fault injection is off; start the service with FAULT_INJECTION=on"}}
	}
	name, arg, hasArg := strings.Cut(header, "=")
	switch name {
	case FaultCrashAfterHalf, FaultCrashAfterLocalCommit, FaultSkipEndTransaction, FaultFailLocalTx,
		FaultCartFailOnce, FaultCartCrashAfterCommit, FaultCrashAfterRelayPublish:
		if !hasArg {
			return Fault{Point: name}, nil
		}
	case FaultSlowLocalTx:
		secs, err := strconv.ParseFloat(arg, 64)
		d := time.Duration(secs * float64(time.Second))
		if err == nil && d > 0 && d <= maxSlow {
			return Fault{Point: name, Slow: d}, nil
		}
		return Fault{}, &ValidationError{Fields: map[string]string{
			"X-Fault": fmt.Sprintf("slow-local-tx=<seconds> takes 0 < seconds <= %.0f", maxSlow.Seconds())}}
	}
	return Fault{}, &ValidationError{Fields: map[string]string{"X-Fault": fmt.Sprintf("unknown fault point %q", header)}}
}

// cart returns the point to forward to cart-service, if any.
func (f Fault) cart() string {
	if faults.IsCart(f.Point) {
		return f.Point
	}
	return ""
}
