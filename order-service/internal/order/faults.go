package order

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"rmqtx/pkg/faults"
)

// Fault is a failure a request asks to have injected (header X-Fault, docs/design.md), honoured only
// when the service runs with FAULT_INJECTION=on. The zero Fault injects nothing.
//
// One request may name several points, separated by commas, when each strikes at a different
// moment of the flow: "slow-local-tx=8,skip-end-transaction" holds the local transaction open and
// then loses its answer. That is what it takes to break the naive check-back of wrong_checkback.go.
type Fault struct {
	Point string        // one of the Fault* constants below, or ""
	With  []string      // further points on the same request, in the order the flow reaches them
	Slow  time.Duration // for FaultSlowLocalTx
}

// Fault points. The cart-* points travel to cart-service in the message.
const (
	FaultCrashAfterHalf        = "crash-after-half"
	FaultCrashAfterLocalCommit = "crash-after-local-commit"
	FaultSkipEndTransaction    = "skip-end-transaction"
	FaultFailLocalTx           = "fail-local-tx"
	FaultSlowLocalTx           = "slow-local-tx"
	// FaultResendEvent publishes a placed order's OrderCreated a second time, as a new message
	// (wrong_resend.go): what an application-level resend after an ambiguous send result does, or an
	// outbox relay that dies before deleting its row.
	FaultResendEvent = "resend-event"
	// PLACEMENT=outbox only (outbox.go): the relay dies after publishing the order's event and
	// before deleting its outbox row, for real.
	FaultCrashAfterRelayPublish = "crash-after-relay-publish"
	FaultCartFailOnce           = faults.CartFailOnce
	FaultCartCrashAfterCommit   = faults.CartCrashAfterCommit
)

// maxSlow bounds slow-local-tx: it holds a database transaction open for that long.
const maxSlow = 60 * time.Second

// orderPoints are the order-side points in the order the flow reaches them. A point that ends the
// attempt (a crash, a failed local transaction) cannot be combined with one the flow reaches later:
// that one would never fire. Two points at the same moment cannot be combined either.
var orderPoints = []struct {
	name string
	at   int  // moment of the flow: 1 after the half message, 2-3 in the local transaction, 4 its answer, 5 after the answer
	ends bool // the attempt goes no further
}{
	{FaultCrashAfterHalf, 1, true},
	{FaultFailLocalTx, 2, true},
	{FaultSlowLocalTx, 3, false},
	{FaultCrashAfterLocalCommit, 4, true},
	{FaultSkipEndTransaction, 4, false},
	{FaultResendEvent, 5, false},
}

// ParseFault reads an X-Fault header value: one point, or several separated by commas. enabled is
// FAULT_INJECTION=on.
func ParseFault(header string, enabled bool) (Fault, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return Fault{}, nil
	}
	if !enabled {
		return Fault{}, invalidFault("fault injection is off; start the service with FAULT_INJECTION=on")
	}
	var f Fault
	var names []string
	for _, part := range strings.Split(header, ",") {
		name, err := f.add(strings.TrimSpace(part))
		if err != nil {
			return Fault{}, err
		}
		if slices.Contains(names, name) {
			return Fault{}, invalidFault(fmt.Sprintf("%s is named twice", name))
		}
		names = append(names, name)
	}
	if err := combinable(names); err != nil {
		return Fault{}, err
	}
	f.Point, f.With = names[0], names[1:]
	return f, nil
}

// add reads one point (with its argument, if it takes one) into f and returns its name.
func (f *Fault) add(part string) (string, error) {
	name, arg, hasArg := strings.Cut(part, "=")
	if faults.IsCart(name) && !hasArg { // every cart-side point pkg/faults defines rides on the message
		return name, nil
	}
	switch name {
	case FaultCrashAfterHalf, FaultCrashAfterLocalCommit, FaultSkipEndTransaction, FaultFailLocalTx, FaultResendEvent,
		FaultCrashAfterRelayPublish:
		if !hasArg {
			return name, nil
		}
	case FaultSlowLocalTx:
		secs, err := strconv.ParseFloat(arg, 64)
		d := time.Duration(secs * float64(time.Second))
		if err == nil && d > 0 && d <= maxSlow {
			f.Slow = d
			return name, nil
		}
		return "", invalidFault(fmt.Sprintf("slow-local-tx=<seconds> takes 0 < seconds <= %.0f", maxSlow.Seconds()))
	}
	return "", invalidFault(fmt.Sprintf("unknown fault point %q", part))
}

// combinable says why points cannot be injected together, if they cannot.
func combinable(names []string) error {
	var cart []string
	last := struct {
		name string
		at   int
		ends bool
	}{}
	for _, p := range orderPoints {
		if !slices.Contains(names, p.name) {
			continue
		}
		switch {
		case last.name != "" && last.at == p.at:
			return invalidFault(fmt.Sprintf("%s and %s strike at the same moment; name one", last.name, p.name))
		case last.ends:
			return invalidFault(fmt.Sprintf("%s never fires: %s ends the attempt first", p.name, last.name))
		}
		last.name, last.at, last.ends = p.name, p.at, p.ends
	}
	// The relay's point is not on the request's path (any instance's relay honours it, later), so
	// a crash of the request does not stop it; a failed local transaction does: no row to publish.
	if slices.Contains(names, FaultFailLocalTx) && slices.Contains(names, FaultCrashAfterRelayPublish) {
		return invalidFault(fmt.Sprintf("%s never fires: %s rolls back the outbox row the relay would publish", FaultCrashAfterRelayPublish, FaultFailLocalTx))
	}
	for _, n := range names {
		if faults.IsCart(n) {
			cart = append(cart, n)
		}
	}
	if len(cart) > 1 {
		return invalidFault(fmt.Sprintf("one cart-side point per order, got %s", strings.Join(cart, ", ")))
	}
	return nil
}

func invalidFault(why string) error {
	return &ValidationError{Fields: map[string]string{"X-Fault": why}}
}

// Has reports whether f names point.
func (f Fault) Has(point string) bool {
	return point != "" && (f.Point == point || slices.Contains(f.With, point))
}

// String is the X-Fault value that asks for f.
func (f Fault) String() string {
	var parts []string
	for _, p := range append([]string{f.Point}, f.With...) {
		switch {
		case p == "":
		case p == FaultSlowLocalTx:
			parts = append(parts, fmt.Sprintf("%s=%g", p, f.Slow.Seconds()))
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ",")
}

// cart returns the point to forward to cart-service, if any.
func (f Fault) cart() string {
	for _, p := range append([]string{f.Point}, f.With...) {
		if faults.IsCart(p) {
			return p
		}
	}
	return ""
}
