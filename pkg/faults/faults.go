// Package faults is what the two services' fault injection (docs/design.md, fault injection)
// shares: the points order-service forwards to cart-service in the message, and the one way either
// service crashes on purpose.
package faults

import (
	"os"
	"syscall"
)

// Cart-side fault points. order-service accepts them in X-Fault and puts them on the message as
// the property events.PropertyFault; cart-service honours them when fault injection is on.
const (
	// CartFailOnce fails the first delivery with a retry.
	CartFailOnce = "cart-fail-once"
	// CartCrashAfterCommit kills cart-service after the cart commit and before the
	// acknowledgement, on the delivery that applied the order.
	CartCrashAfterCommit = "cart-crash-after-commit"
	// CartCrashBeforeApply kills cart-service after it has received the message and before the
	// cart transaction, once per order. The right consumer has not acknowledged yet, so the broker
	// delivers the message again after the restart; a consumer that acknowledged first
	// (CONSUMER=ack-before-commit) has lost it.
	CartCrashBeforeApply = "cart-crash-before-apply"
)

// IsCart reports whether point is one of the cart-side points above.
func IsCart(point string) bool {
	return point == CartFailOnce || point == CartCrashAfterCommit || point == CartCrashBeforeApply
}

// KillSelf ends the process the way kill -9 does: no deferred calls, no flush, no answer to the
// broker, no acknowledgement. A crash fault point must behave exactly like that, or it would show
// a kinder failure than the real one. It never returns: the signal is on its way, and returning
// would let the caller go on to do what the crash is meant to prevent.
func KillSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
