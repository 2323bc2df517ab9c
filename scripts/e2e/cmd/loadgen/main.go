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
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

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

// config is the parsed command line.
type config struct {
	orders      []string // order-service base URLs, used in turn
	cart        string
	concurrency int
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	settle      time.Duration
	timeout     time.Duration
	users       int
	skus        int
	label       string
	jsonOut     bool
	cartsDSN    string
	pids        map[string]int
}

// Bounds that keep a typo from turning into an hour-long or machine-filling run.
const (
	maxDuration    = 10 * time.Minute
	maxConcurrency = 1024
	maxRate        = 20000
	maxUsers       = 10000
)

func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	orders := fs.String("order", "http://127.0.0.1:8081", "order-service base URL(s), comma-separated; loopback only")
	fs.StringVar(&c.cart, "cart", "http://127.0.0.1:8082", "cart-service base URL; loopback only")
	fs.IntVar(&c.concurrency, "concurrency", 8, "closed loop: clients; with -rate: the bound on requests in flight")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: orders offered per second (0: closed loop)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time, after the warm-up")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "time at the start that is not measured")
	fs.DurationVar(&c.settle, "settle", 60*time.Second, "how long to wait for the carts to be updated after the run")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&c.users, "users", 200, "carts to fill and order from (more users, less lock contention on cart lines)")
	fs.IntVar(&c.skus, "skus", 4, "SKUs per cart; each order takes 1 or 2 of them, quantity 1")
	fs.StringVar(&c.label, "label", "", "a name for this run in the output")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	pids := pidFlag{}
	fs.Var(pids, "pid", "name=PID of a process whose peak VmRSS to report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.pids = pids
	c.pids["loadgen"] = os.Getpid() // the load generator shares the machine too: show its cost
	for _, u := range strings.Split(*orders, ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.orders = append(c.orders, strings.TrimSuffix(u, "/"))
		}
	}
	c.cart = strings.TrimSuffix(c.cart, "/")
	if len(c.orders) == 0 {
		return c, errors.New("-order: at least one URL is needed")
	}
	for _, u := range append(slices.Clone(c.orders), c.cart) {
		if err := loopbackURL(u); err != nil {
			return c, err
		}
	}
	c.cartsDSN = getenv("CARTS_DSN")
	if c.cartsDSN != "" {
		if err := loopbackDSN(c.cartsDSN); err != nil {
			return c, err
		}
	}
	switch {
	case c.duration <= 0 || c.warmup < 0 || c.duration+c.warmup > maxDuration:
		return c, fmt.Errorf("-duration must be positive and -warmup + -duration at most %v", maxDuration)
	case c.concurrency < 1 || c.concurrency > maxConcurrency:
		return c, fmt.Errorf("-concurrency must be 1 to %d", maxConcurrency)
	case c.rate < 0 || c.rate > maxRate:
		return c, fmt.Errorf("-rate must be 0 to %d", maxRate)
	case c.users < 1 || c.users > maxUsers:
		return c, fmt.Errorf("-users must be 1 to %d", maxUsers)
	case c.skus < 2 || c.skus > 20:
		return c, errors.New("-skus must be 2 to 20")
	case c.settle < 0 || c.settle > maxDuration:
		return c, fmt.Errorf("-settle must be 0 to %v", maxDuration)
	case c.timeout <= 0:
		return c, errors.New("-timeout must be positive")
	}
	return c, nil
}

// pidFlag collects -pid name=PID.
type pidFlag map[string]int

func (p pidFlag) String() string { return fmt.Sprint(map[string]int(p)) }
func (p pidFlag) Set(v string) error {
	name, pid, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(pid)
	if !ok || name == "" || err != nil || n <= 0 {
		return fmt.Errorf("want name=PID, got %q", v)
	}
	p[name] = n
	return nil
}

// loopbackURL refuses anything but http://<loopback IP>:port.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("%q: want http://127.0.0.1:<port>", raw)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: loadgen only sends load to loopback addresses such as 127.0.0.1", raw)
	}
	return nil
}

func loopbackDSN(dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("CARTS_DSN: %w", err)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if ip := net.ParseIP(host); cfg.Net != "tcp" || err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("CARTS_DSN: want a tcp(127.0.0.1:<port>) address, got %s(%s)", cfg.Net, cfg.Addr)
	}
	return nil
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
	select {
	case from := <-cpuStart:
		res.CPU = takeCPU(c.pids).coresSince(from)
	default: // interrupted during the warm-up
	}
	res.OrdersPerS = float64(res.Placed) / c.duration.Seconds()
	res.HTTP = bench.Summarize(g.latencies)

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

// fillCarts puts every SKU of every user's cart at the largest quantity cart-service accepts, so
// no order of the run empties a line.
func fillCarts(ctx context.Context, client *http.Client, c config, users []string) error {
	type job struct{ user, sku string }
	jobs := make(chan job)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, c.cart+"/carts/"+j.user+"/items/"+j.sku,
					strings.NewReader(`{"quantity":10000}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("PUT %s: %s", req.URL, resp.Status)
					}
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("fill carts: %w", err):
					default:
					}
				}
			}
		})
	}
	for _, u := range users {
		for s := range c.skus {
			jobs <- job{u, sku(s)}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func sku(i int) string { return fmt.Sprintf("SKU-%02d", i) }

// generator places orders and keeps what was measured.
type generator struct {
	c      config
	client *http.Client
	users  []string
	next   atomic.Uint64 // round-robin over the order-service URLs

	mu        sync.Mutex
	requests  int
	latencies []time.Duration
	placed    []string // order IDs answered 201/202 in the measured window
	errs      map[string]int
}

// closedLoop keeps c.concurrency clients busy, each sending its next order when the last is
// answered.
func (g *generator) closedLoop(ctx context.Context) {
	start := time.Now()
	measureFrom, end := start.Add(g.c.warmup), start.Add(g.c.warmup+g.c.duration)
	var wg sync.WaitGroup
	for range g.c.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				at := time.Now()
				if !at.Before(end) {
					return
				}
				g.placeOne(ctx, at, !at.Before(measureFrom))
			}
		})
	}
	wg.Wait()
}

// openLoop starts one order every 1/rate seconds whether or not earlier ones were answered, so
// a slow server shows up as latency, not as a lower offered load. Latency counts from the moment
// the order was due. More than c.concurrency orders in flight is counted as "overload" and the
// order is not sent: the bound keeps a stalled server from piling up goroutines.
func (g *generator) openLoop(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / g.c.rate)
	start := time.Now()
	measureFrom, end := start.Add(g.c.warmup), start.Add(g.c.warmup+g.c.duration)
	sem := make(chan struct{}, g.c.concurrency)
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		measured := !due.Before(measureFrom)
		select {
		case sem <- struct{}{}:
			wg.Go(func() {
				defer func() { <-sem }()
				g.placeOne(ctx, due, measured)
			})
		default:
			if measured {
				g.mu.Lock()
				g.requests++
				g.errs["overload"]++
				g.mu.Unlock()
			}
		}
	}
	wg.Wait()
}

// placeOne sends one order for a random user: one or two of the user's SKUs, quantity 1.
func (g *generator) placeOne(ctx context.Context, due time.Time, measured bool) {
	user := g.users[mrand.IntN(len(g.users))]
	first := mrand.IntN(g.c.skus)
	items := []map[string]any{{"sku": sku(first), "quantity": 1, "unit_price_cents": 100}}
	if mrand.IntN(2) == 1 {
		items = append(items, map[string]any{"sku": sku((first + 1) % g.c.skus), "quantity": 1, "unit_price_cents": 250})
	}
	body, _ := json.Marshal(map[string]any{"user_id": user, "items": items})
	base := g.c.orders[g.next.Add(1)%uint64(len(g.c.orders))]

	orderID, kind, answered := g.post(ctx, base+"/orders", body)
	took := time.Since(due)
	if !measured {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	if answered {
		g.latencies = append(g.latencies, took) // error answers count too: they are answers
	}
	if kind == "" {
		g.placed = append(g.placed, orderID)
	} else {
		g.errs[kind]++
	}
}

// post sends one order and returns its ID, or the kind of error ("" when placed); answered is
// false when no HTTP answer came at all.
func (g *generator) post(ctx context.Context, url string, body []byte) (orderID, kind string, answered bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return "", transportKind(err), false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", transportKind(err), false
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return "", "http_" + strconv.Itoa(resp.StatusCode), true
	}
	var out struct {
		Order struct {
			OrderID string `json:"order_id"`
		} `json:"order"`
	}
	if json.Unmarshal(raw, &out) != nil || out.Order.OrderID == "" {
		return "", "bad_answer", true
	}
	return out.Order.OrderID, "", true
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	default:
		return "transport"
	}
}

// endToEnd waits (up to settle) until every placed order is in processed_orders, then returns
// applied_at - order_created_at for each, and how many never arrived.
func endToEnd(ctx context.Context, dsn string, orderIDs []string, settle time.Duration) ([]time.Duration, int, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, 0, fmt.Errorf("CARTS_DSN: %w", err)
	}
	defer db.Close()
	found := map[string]time.Duration{}
	pending := slices.Clone(orderIDs)
	deadline := time.Now().Add(settle)
	for {
		var still []string
		for chunk := range slices.Chunk(pending, 500) {
			got, err := appliedLatencies(ctx, db, chunk)
			if err != nil {
				return nil, 0, err
			}
			for _, id := range chunk {
				if d, ok := got[id]; ok {
					found[id] = d
				} else {
					still = append(still, id)
				}
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	out := make([]time.Duration, 0, len(found))
	for _, d := range found {
		out = append(out, d)
	}
	return out, len(pending), nil
}

func appliedLatencies(ctx context.Context, db *sql.DB, ids []string) (map[string]time.Duration, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := "SELECT order_id, TIMESTAMPDIFF(MICROSECOND, order_created_at, applied_at) FROM processed_orders " +
		"WHERE order_created_at IS NOT NULL AND order_id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read processed_orders: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var id string
		var micros int64
		if err := rows.Scan(&id, &micros); err != nil {
			return nil, fmt.Errorf("read processed_orders: %w", err)
		}
		out[id] = time.Duration(micros) * time.Microsecond
	}
	return out, rows.Err()
}

// rssWatcher samples VmRSS of some processes until stopped.
type rssWatcher struct {
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	peak map[string]int
	wg   sync.WaitGroup
}

func watchRSS(pids map[string]int, every time.Duration) *rssWatcher {
	w := &rssWatcher{done: make(chan struct{}), peak: map[string]int{}}
	if len(pids) == 0 {
		return w
	}
	w.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for name, pid := range pids {
				if kib, err := vmRSS(pid); err == nil {
					w.mu.Lock()
					w.peak[name] = max(w.peak[name], kib)
					w.mu.Unlock()
				}
			}
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	})
	return w
}

// stop ends the sampling and returns the peaks (nil if nothing was watched).
func (w *rssWatcher) stop() map[string]int {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.peak) == 0 {
		return nil
	}
	return maps.Clone(w.peak)
}

// vmRSS reads the resident set size, in KiB, from /proc/<pid>/status.
func vmRSS(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

// cpuSnapshot is the CPU time used so far, in clock ticks, per watched process and by the
// machine (key "machine"), and when it was read.
type cpuSnapshot struct {
	at    time.Time
	ticks map[string]int64
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux that matters here.
const clockTicks = 100

func takeCPU(pids map[string]int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), ticks: map[string]int64{}}
	for name, pid := range pids {
		if t, err := processTicks(pid); err == nil {
			s.ticks[name] = t
		}
	}
	if t, err := machineBusyTicks(); err == nil {
		s.ticks["machine"] = t
	}
	return s
}

// coresSince is the average number of cores each entry used between from and s.
func (s cpuSnapshot) coresSince(from cpuSnapshot) map[string]float64 {
	secs := s.at.Sub(from.at).Seconds()
	if from.ticks == nil || secs <= 0 {
		return nil
	}
	out := map[string]float64{}
	for name, t := range s.ticks {
		if t0, ok := from.ticks[name]; ok {
			out[name] = math.Round(float64(t-t0)/clockTicks/secs*100) / 100
		}
	}
	return out
}

// processTicks is utime + stime of a process (fields 14 and 15 of /proc/PID/stat, counted after
// the command name, which may contain spaces).
func processTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat")
	}
	return u + st, nil
}

// machineBusyTicks is the machine's non-idle CPU time (the first line of /proc/stat, minus idle
// and iowait).
func machineBusyTicks() (int64, error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are already in user
			busy += n
		}
	}
	return busy, nil
}

func printText(w io.Writer, r bench.Result) {
	load := fmt.Sprintf("%d clients", r.Concurrency)
	if r.Mode == "open" {
		load = fmt.Sprintf("%.0f orders/s offered", r.Rate)
	}
	fmt.Fprintf(w, "%s%s for %.0fs: %d requests, %d placed, %.1f orders/s\n", label(r), load, r.DurationS, r.Requests, r.Placed, r.OrdersPerS)
	fmt.Fprintf(w, "  HTTP latency ms        p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f\n", r.HTTP.P50, r.HTTP.P95, r.HTTP.P99, r.HTTP.Max)
	if r.E2EMeasured {
		fmt.Fprintf(w, "  order -> cart ms       p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f  (%d applied, %d not applied in time)\n",
			r.E2E.P50, r.E2E.P95, r.E2E.P99, r.E2E.Max, r.E2E.Count, r.E2EMissing)
	}
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "  errors: none")
	} else {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		fmt.Fprint(w, "  errors:")
		for _, k := range kinds {
			fmt.Fprintf(w, " %s=%d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
	for name, kib := range r.PeakRSS {
		fmt.Fprintf(w, "  peak RSS %s: %.1f MiB\n", name, float64(kib)/1024)
	}
	for name, cores := range r.CPU {
		fmt.Fprintf(w, "  CPU %s: %.2f cores\n", name, cores)
	}
}

func label(r bench.Result) string {
	if r.Label == "" {
		return ""
	}
	return r.Label + ": "
}
