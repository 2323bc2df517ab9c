// Package bench holds what the load generator measures and how the benchmark table reads it:
// the JSON result of one run (one cell of the table) and latency percentiles.
package bench

import (
	"math"
	"slices"
	"time"
)

// Result is one load-generator run, as cmd/loadgen prints it with -json.
type Result struct {
	Label       string  `json:"label"`       // what the caller calls this run, e.g. "transactional c=8"
	Mode        string  `json:"mode"`        // "closed" (fixed concurrency) or "open" (fixed rate)
	Concurrency int     `json:"concurrency"` // closed loop: clients; open loop: the in-flight bound
	Rate        float64 `json:"rate"`        // open loop: offered orders per second
	DurationS   float64 `json:"duration_s"`  // the measured window, warm-up excluded

	Requests    int     `json:"requests"`     // POST /orders started in the window
	Placed      int     `json:"placed"`       // answered 201 or 202
	OrdersPerS  float64 `json:"orders_per_s"` // Placed / DurationS
	HTTP        Summary `json:"http_ms"`      // latency of every answered request
	E2E         Summary `json:"e2e_ms"`       // order created -> cart updated, placed orders only
	E2EMeasured bool    `json:"e2e_measured"` // false when no CARTS_DSN was given
	E2EMissing  int     `json:"e2e_missing"`  // placed orders not applied to a cart when the run gave up waiting

	// PLACEMENT=outbox (OUTBOX_DSN): the outbox table's rows, sampled every 100 ms while orders
	// were placed: the events committed and not yet handed to the broker.
	OutboxMeasured bool    `json:"outbox_measured"`
	OutboxPeak     int     `json:"outbox_peak_rows"`
	OutboxMean     float64 `json:"outbox_mean_rows"`

	// Answers refused by the service's admission bound (503 "overloaded", nothing done), kept
	// apart: how many, how fast they came, and the latency of every other answer.
	Refused      int     `json:"refused"`
	AdmittedHTTP Summary `json:"admitted_ms"`
	RefusedHTTP  Summary `json:"refused_ms"`
	// SendLag is how late each request left the load generator after it was due (open loop only):
	// the generator's own wait for a CPU, which every latency above includes. On a machine the
	// services share with it, a refusal cannot be answered faster than this.
	SendLag Summary `json:"send_lag_ms"`
	// RefusedSent is RefusedHTTP counted from when each refused request was sent: without the
	// generator's lag before the send, but with its HTTP client's own time, the kernel's and the
	// service's.
	RefusedSent Summary `json:"refused_from_sent_ms"`

	Errors  map[string]int `json:"errors"`       // by kind: http_503, http_503_overloaded, timeout, refused, overload, ...
	PeakRSS map[string]int `json:"peak_rss_kib"` // per watched process, the highest VmRSS sampled
	// CPU is the cores each watched process used on average during the measured window, under
	// "machine" all processes together (from /proc/stat): where the time goes; and under "stolen"
	// what the hypervisor took from this machine's virtual CPUs meanwhile (not in "machine").
	CPU map[string]float64 `json:"cpu_cores"`
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Summarize computes the percentiles of ds (nearest rank). It sorts ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ms(ds[max(i, 0)])
	}
	return Summary{Count: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
