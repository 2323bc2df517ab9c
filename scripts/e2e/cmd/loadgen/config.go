package main

// The command line: flags, their bounds, and the loopback-only rule.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

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
	outboxDSN   string
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
	c.outboxDSN = getenv("OUTBOX_DSN")
	for _, dsn := range []struct{ name, value string }{{"CARTS_DSN", c.cartsDSN}, {"OUTBOX_DSN", c.outboxDSN}} {
		if dsn.value != "" {
			if err := loopbackDSN(dsn.name, dsn.value); err != nil {
				return c, err
			}
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

func loopbackDSN(name, dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if ip := net.ParseIP(host); cfg.Net != "tcp" || err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: want a tcp(127.0.0.1:<port>) address, got %s(%s)", name, cfg.Net, cfg.Addr)
	}
	return nil
}
