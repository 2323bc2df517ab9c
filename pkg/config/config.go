// Package config reads the settings both services share (docs/design.md, configuration contract) from
// the environment. A bad or missing setting is an error that names it, so that a service stops at
// start with one clear line instead of failing later in a confusing way.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Common holds the settings with the same names in both services.
type Common struct {
	HTTPAddr string     // HTTP_ADDR, e.g. ":8081"
	MySQLDSN string     // MYSQL_DSN, go-sql-driver form; the database must exist
	Namesrv  []string   // ROCKETMQ_NAMESRV, "host:port" or several separated by ';'
	Broker   string     // ROCKETMQ_BROKER_ADDR, optional: where to create the topic if missing ("host:port", or every broker group's master separated by ';')
	Topic    string     // ROCKETMQ_TOPIC
	Group    string     // ROCKETMQ_GROUP: the producer group (order) or consumer group (cart)
	LogLevel slog.Level // LOG_LEVEL: debug, info, warn, error
	Faults   bool       // FAULT_INJECTION: "on" honours fault requests; anything but on/off is an error
	Pprof    bool       // PPROF: "on" serves net/http/pprof under /debug/pprof/ (off by default)
	Timeline bool       // TIMELINE: "on" (the default) records each order's steps for its timeline

	// TIMELINE_RETENTION: how long timeline steps (and cart-service's rejected messages) are
	// kept before the background purge deletes them; 7 days by default.
	TimelineRetention time.Duration
}

// DefaultTimelineRetention is TIMELINE_RETENTION when unset.
const DefaultTimelineRetention = 7 * 24 * time.Hour

// Env reads settings from a getenv function (os.Getenv in main, a map in tests) and remembers
// the first error, so callers read everything and check once.
type Env struct {
	getenv func(string) string
	err    error
}

// NewEnv wraps getenv.
func NewEnv(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Err is the first problem found, naming the setting.
func (e *Env) Err() error { return e.err }

func (e *Env) fail(name, format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("config: %s %s", name, fmt.Sprintf(format, args...))
	}
}

// String returns the setting or def when it is unset or blank.
func (e *Env) String(name, def string) string {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

// Required returns the setting, recording an error when it is missing.
func (e *Env) Required(name, example string) string {
	v := e.String(name, "")
	if v == "" {
		e.fail(name, "is required (e.g. %s)", example)
	}
	return v
}

// Duration parses a Go duration ("5s", "250ms"); it must be positive.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, "must be a positive duration such as 5s, got %q", v)
		return def
	}
	return d
}

// DurationUpTo parses a Go duration from 0 ("0" is allowed) to hi.
func (e *Env) DurationUpTo(name string, def, hi time.Duration) time.Duration {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > hi {
		e.fail(name, "must be a duration from 0 to %v such as 2ms, got %q", hi, v)
		return def
	}
	return d
}

// Retention parses a whole number of days ("7d") or a Go duration ("36h"), at least a minute:
// a shorter one would purge the steps of orders people are still watching.
func (e *Env) Retention(name string, def time.Duration) time.Duration {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	var (
		d   time.Duration
		err error
	)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		if n > 365*100 {
			err = fmt.Errorf("too long")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < time.Minute {
		e.fail(name, "must be a number of days such as 7d, or a duration of at least 1m such as 36h, got %q", v)
		return def
	}
	return d
}

// Int parses an integer within [lo, hi].
func (e *Env) Int(name string, def, lo, hi int) int {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.fail(name, "must be a whole number from %d to %d, got %q", lo, hi, v)
		return def
	}
	return n
}

// OneOf returns the setting, which must be one of allowed (compared case-insensitively), or def
// when it is unset.
func (e *Env) OneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(e.String(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

// URL parses an absolute http or https URL such as http://cart-service:8082; nil when unset.
func (e *Env) URL(name string) *url.URL {
	v := e.String(name, "")
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.fail(name, "must be an http:// or https:// URL with a host, got %q", v)
		return nil
	}
	return u
}

// Common reads the shared settings. defaultAddr and defaultGroup differ per service.
func (e *Env) Common(defaultAddr, defaultTopic, defaultGroup string) Common {
	c := Common{
		HTTPAddr: e.String("HTTP_ADDR", defaultAddr),
		MySQLDSN: e.Required("MYSQL_DSN", "user:password@tcp(127.0.0.1:3306)/orders"),
		Broker:   e.String("ROCKETMQ_BROKER_ADDR", ""),
		Topic:    e.String("ROCKETMQ_TOPIC", defaultTopic),
		Group:    e.String("ROCKETMQ_GROUP", defaultGroup),
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		e.fail("HTTP_ADDR", "must be host:port or :port, got %q", c.HTTPAddr)
	}
	if c.MySQLDSN != "" {
		cfg, err := mysql.ParseDSN(c.MySQLDSN)
		switch {
		case err != nil:
			e.fail("MYSQL_DSN", "is not a valid DSN: %v", err)
		case cfg.DBName == "":
			e.fail("MYSQL_DSN", "must name a database (…/orders)")
		}
	}
	if ns := e.Required("ROCKETMQ_NAMESRV", "127.0.0.1:9876"); ns != "" {
		for _, addr := range strings.FieldsFunc(ns, func(r rune) bool { return r == ';' || r == ',' }) {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(addr)); err != nil {
				e.fail("ROCKETMQ_NAMESRV", "must be host:port[;host:port...], got %q", ns)
				break
			}
			c.Namesrv = append(c.Namesrv, strings.TrimSpace(addr))
		}
	}
	// One broker, or in a cluster the master of every broker group: the topic is created on each.
	for _, addr := range strings.FieldsFunc(c.Broker, func(r rune) bool { return r == ';' || r == ',' }) {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(addr)); err != nil {
			e.fail("ROCKETMQ_BROKER_ADDR", "must be host:port[;host:port...], got %q", c.Broker)
			break
		}
	}
	switch lv := strings.ToLower(e.String("LOG_LEVEL", "info")); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		e.fail("LOG_LEVEL", "must be debug, info, warn or error, got %q", lv)
	}
	switch f := strings.ToLower(e.String("FAULT_INJECTION", "off")); f {
	case "on":
		c.Faults = true
	case "off":
	default:
		e.fail("FAULT_INJECTION", "must be on or off, got %q", f)
	}
	// Profiles show the service's internals and cost CPU while taken: off unless asked for.
	c.Pprof = e.OneOf("PPROF", "off", "on", "off") == "on"
	// The timeline is how people watch the technique work, so it is on; off exists to measure
	// what recording costs, and changes nothing else.
	c.Timeline = e.OneOf("TIMELINE", "on", "on", "off") == "on"
	c.TimelineRetention = e.Retention("TIMELINE_RETENTION", DefaultTimelineRetention)
	return c
}
