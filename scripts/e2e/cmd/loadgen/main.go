// Command loadgen places orders against a running order-service, for a bounded time, and reports
// throughput, HTTP latency, the end-to-end latency from order to cart change, and errors by kind.
//
// It first fills the carts of -users users through cart-service, then either keeps -concurrency
// clients busy (closed loop: the throughput a number of clients gets) or offers -rate orders per
// second whatever the answers (open loop: the latency at a given load). The first -warmup of the
// run is not measured. It stops by itself after -warmup + -duration, then waits up to -settle for
// cart-service to apply the orders it placed, reading processed_orders (order_created_at,
// applied_at) from CARTS_DSN. Without CARTS_DSN the end-to-end latency is not measured.
//
// It only ever talks to loopback addresses: it is a tool for the local suite, not a load test of
// anything else.
//
//	go run ./scripts/e2e/cmd/loadgen -concurrency 8 -duration 10s
//	CARTS_DSN='rmqtx:rmqtx@tcp(127.0.0.1:3306)/carts' go run ./scripts/e2e/cmd/loadgen -rate 200 -json
//
// -pid name=PID (repeatable) samples that process's resident memory (VmRSS in /proc/PID/status)
// every 100 ms during the run and reports the peak, and the CPU it used during the measured
// window (/proc/PID/stat), next to the whole machine's (/proc/stat).
//
// OUTBOX_DSN, the database of an order-service with PLACEMENT=outbox, has the outbox table's rows
// counted every 100 ms while orders are placed (warm-up included): the peak and mean backlog.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"rmqtx/e2e/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "loadgen: "+format+"\n", a...) }

	// Memory of the services, sampled for the whole run, fill and settle included.
	rss := watchRSS(c.pids, 100*time.Millisecond)
	defer rss.stop()

	client := &http.Client{
		Timeout: c.timeout,
		Transport: &http.Transport{
			// One kept-alive connection per client: without this, the default of 2 idle
			// connections per host makes most requests open a new connection.
			MaxIdleConns:        maxConcurrency,
			MaxIdleConnsPerHost: maxConcurrency,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	run := newRunID()
	users := make([]string, c.users)
	for i := range users {
		users[i] = fmt.Sprintf("lg-%s-%d", run, i)
	}
	progress("filling %d carts with %d SKUs each", c.users, c.skus)
	if err := fillCarts(ctx, client, c, users); err != nil {
		return err
	}

	var outbox *outboxWatch
	if c.outboxDSN != "" {
		if outbox, err = watchOutbox(c.outboxDSN, 100*time.Millisecond); err != nil {
			return err
		}
	}
	g := &generator{c: c, client: client, users: users, errs: map[string]int{}}
	// CPU is counted over the measured window only: from the end of the warm-up to the end of
	// the run.
	cpuStart := make(chan cpuSnapshot, 1)
	cpuTimer := time.AfterFunc(c.warmup, func() { cpuStart <- takeCPU(c.pids) })
	if c.rate > 0 {
		progress("offering %.0f orders/s for %v (+%v warm-up), at most %d in flight", c.rate, c.duration, c.warmup, c.concurrency)
		g.openLoop(ctx)
	} else {
		progress("%d clients for %v (+%v warm-up)", c.concurrency, c.duration, c.warmup)
		g.closedLoop(ctx)
	}

	res := bench.Result{
		Label: c.label, Mode: "closed", Concurrency: c.concurrency, Rate: c.rate, DurationS: c.duration.Seconds(),
		Requests: g.requests, Placed: len(g.placed), Errors: g.errs,
	}
	if c.rate > 0 {
		res.Mode = "open"
	}
	cpuTimer.Stop()
	if outbox != nil {
		peak, mean, err := outbox.stop()
		if err != nil {
			return err
		}
		res.OutboxMeasured, res.OutboxPeak, res.OutboxMean = true, peak, mean
	}
	select {
	case from := <-cpuStart:
		res.CPU = takeCPU(c.pids).coresSince(from)
	default: // interrupted during the warm-up
	}
	res.OrdersPerS = float64(res.Placed) / c.duration.Seconds()
	res.HTTP = bench.Summarize(g.latencies)
	g.admission.fill(&res)
	res.SendLag = bench.Summarize(g.sendLags)

	if c.cartsDSN != "" && len(g.placed) > 0 {
		progress("waiting up to %v for %d orders to reach the carts", c.settle, len(g.placed))
		lat, missing, err := endToEnd(ctx, c.cartsDSN, g.placed, c.settle)
		if err != nil {
			return err
		}
		res.E2E, res.E2EMeasured, res.E2EMissing = bench.Summarize(lat), true, missing
	}
	res.PeakRSS = rss.stop()

	if c.jsonOut {
		return json.NewEncoder(stdout).Encode(res)
	}
	printText(stdout, res)
	return nil
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b)
}
