package order

// THE WRONG WAYS, RUN.
//
// place.go is the right way, and its package comment says why the obvious ways break. The files
// wrong_*.go turn each of those claims into code that runs and fails visibly, against the real
// broker and databases, so that the invariant checker (scripts/e2e/invariants) can be seen to
// catch it, beside the right way passing the same fault (scripts/scenarios/wrong/). Each is chosen
// with PLACEMENT:
//
//	PLACEMENT           fault that breaks it                       what breaks        the part of the right way that prevents it
//	save-then-send      crash-after-local-commit                   lost event         the half message is stored before the order is written
//	send-then-save      fail-local-tx (or crash-after-half)        phantom            the message stays invisible until the local outcome
//	naive-check-back    slow-local-tx=8,skip-end-transaction       lost event         the tx_log barrier: the check-back waits on the row lock
//	memory-check-back   crash-after-half, then restart             phantom            the check-back answers from the database
//	no-check-back       skip-end-transaction                       lost event         a broker that asks, and a producer that answers
//	direct              none needed                                every event lost   (a benchmark ceiling: no messaging at all)
//
// None of them can run by accident: the service refuses to start in one without FAULT_INJECTION=on,
// and one that runs says so loudly: a WARN at start, order_placement_mode{mode} on /metrics, a
// banner on the web page, and its name on every timeline step.

// Placements: the values of the PLACEMENT setting.
const (
	PlacementTransactional   = "transactional"     // place.go: the right way, and the default
	PlacementDirect          = "direct"            // wrong_send.go: the database alone, no event at all
	PlacementSaveThenSend    = "save-then-send"    // wrong_send.go: commit, then send a plain message
	PlacementSendThenSave    = "send-then-save"    // wrong_send.go: send a plain message, then commit
	PlacementNaiveCheckBack  = "naive-check-back"  // wrong_checkback.go: "order row exists → commit"
	PlacementMemoryCheckBack = "memory-check-back" // wrong_checkback.go: answers from an in-process map
	PlacementNoCheckBack     = "no-check-back"     // wrong_checkback.go: never answers a check-back
)

// Placements lists every PLACEMENT value, the two right ways first (PlacementOutbox is in outbox.go).
var Placements = []string{
	PlacementTransactional, PlacementOutbox, PlacementDirect, PlacementSaveThenSend, PlacementSendThenSave,
	PlacementNaiveCheckBack, PlacementMemoryCheckBack, PlacementNoCheckBack,
}

// wrongWays says, for each wrong placement, what breaks; the right way has no entry.
var wrongWays = map[string]string{
	PlacementDirect: "no event is ever sent: every order is lost to cart-service (a benchmark ceiling, not a way to place orders)",
	PlacementSaveThenSend: "the order is committed, then its event sent as a plain message: a crash (or a broker outage) in between " +
		"loses the event for good (crash-after-local-commit)",
	PlacementSendThenSave: "the event is sent as a plain message, then the order written: if the write fails or the process dies, " +
		"cart-service applies an order that does not exist (fail-local-tx, crash-after-half)",
	PlacementNaiveCheckBack: "the check-back answers 'order row exists → commit, else rollback' without the tx_log barrier: a check " +
		"during a slow local transaction answers rollback, and if the producer's own commit is lost the event is gone " +
		"(slow-local-tx=8,skip-end-transaction)",
	PlacementMemoryCheckBack: "the check-back answers from an in-process map, as RocketMQ's own example does (unknown → commit): after a " +
		"restart it commits the event of an order that was never written (crash-after-half, then restart)",
	PlacementNoCheckBack: "the check-back never decides, as with a broker that cannot ask the producer: a lost commit leaves the event " +
		"invisible until the broker gives up after transactionCheckMax checks and discards it (skip-end-transaction)",
}

// WrongWay says what a placement breaks, or "" for the right way (and for unknown values).
func WrongWay(placement string) string { return wrongWays[placement] }
