package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func valid() map[string]string {
	return map[string]string{
		"MYSQL_DSN":        "u:p@tcp(127.0.0.1:3306)/orders",
		"ROCKETMQ_NAMESRV": "127.0.0.1:9876",
	}
}

func TestCommonDefaults(t *testing.T) {
	e := NewEnv(env(valid()))
	got := e.Common(":8081", "order-events", "g")
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	want := Common{
		HTTPAddr: ":8081", MySQLDSN: "u:p@tcp(127.0.0.1:3306)/orders", Namesrv: []string{"127.0.0.1:9876"},
		Topic: "order-events", Group: "g", LogLevel: slog.LevelInfo, Timeline: true,
		TimelineRetention: 7 * 24 * time.Hour,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("config (-want +got):\n%s", d)
	}
}

// A cluster: every NameServer, and every broker group's master to create the topic on.
func TestCommonCluster(t *testing.T) {
	m := valid()
	m["ROCKETMQ_NAMESRV"] = "127.0.0.1:9876;127.0.0.1:9877"
	m["ROCKETMQ_BROKER_ADDR"] = "127.0.0.1:10911;127.0.0.1:10921"
	e := NewEnv(env(m))
	got := e.Common(":8081", "t", "g")
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"127.0.0.1:9876", "127.0.0.1:9877"}, got.Namesrv); d != "" {
		t.Errorf("Namesrv (-want +got):\n%s", d)
	}
	if got.Broker != "127.0.0.1:10911;127.0.0.1:10921" {
		t.Errorf("Broker = %q", got.Broker)
	}
}

func TestCommonErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name, key, value, wantIn string
	}{
		{"missing dsn", "MYSQL_DSN", "", "MYSQL_DSN is required"},
		{"dsn without database", "MYSQL_DSN", "u:p@tcp(127.0.0.1:3306)/", "MYSQL_DSN must name a database"},
		{"dsn garbage", "MYSQL_DSN", "not a dsn", "MYSQL_DSN is not a valid DSN"},
		{"missing namesrv", "ROCKETMQ_NAMESRV", "", "ROCKETMQ_NAMESRV is required"},
		{"namesrv without port", "ROCKETMQ_NAMESRV", "localhost", "ROCKETMQ_NAMESRV must be host:port"},
		{"bad addr", "HTTP_ADDR", "8081", "HTTP_ADDR must be host:port"},
		{"bad level", "LOG_LEVEL", "loud", "LOG_LEVEL must be"},
		{"bad fault flag", "FAULT_INJECTION", "yes", "FAULT_INJECTION must be on or off"},
		{"bad broker", "ROCKETMQ_BROKER_ADDR", "broker", "ROCKETMQ_BROKER_ADDR must be host:port"},
		{"bad second broker", "ROCKETMQ_BROKER_ADDR", "127.0.0.1:10911;broker-b", "ROCKETMQ_BROKER_ADDR must be host:port"},
		{"bad retention", "TIMELINE_RETENTION", "a week", "TIMELINE_RETENTION must be a number of days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			m[tt.key] = tt.value
			e := NewEnv(env(m))
			e.Common(":8081", "t", "g")
			if e.Err() == nil || !strings.Contains(e.Err().Error(), tt.wantIn) {
				t.Fatalf("error = %v, want it to contain %q", e.Err(), tt.wantIn)
			}
			if strings.Contains(e.Err().Error(), "\n") {
				t.Fatalf("error spans several lines: %q", e.Err())
			}
		})
	}
}

func TestDurationAndInt(t *testing.T) {
	e := NewEnv(env(map[string]string{"D": "2s", "BAD_D": "-1s", "N": "7", "BAD_N": "99"}))
	if d := e.Duration("D", 0); d.Seconds() != 2 {
		t.Fatalf("D = %v", d)
	}
	if n := e.Int("N", 0, 0, 10); n != 7 {
		t.Fatalf("N = %d", n)
	}
	if e.Err() != nil {
		t.Fatal(e.Err())
	}
	e.Duration("BAD_D", 0)
	if e.Err() == nil || !strings.Contains(e.Err().Error(), "BAD_D") {
		t.Fatalf("err = %v", e.Err())
	}
	e2 := NewEnv(env(map[string]string{"BAD_N": "99"}))
	e2.Int("BAD_N", 0, 0, 10)
	if e2.Err() == nil || !strings.Contains(e2.Err().Error(), "BAD_N") {
		t.Fatalf("err = %v", e2.Err())
	}
}

func TestDurationUpTo(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 7 * time.Millisecond, false},
		{"0", 0, false},
		{"2ms", 2 * time.Millisecond, false},
		{"1s", time.Second, false},
		{"1.5s", 7 * time.Millisecond, true},
		{"-1ms", 7 * time.Millisecond, true},
		{"soon", 7 * time.Millisecond, true},
	}
	for _, tt := range tests {
		e := NewEnv(env(map[string]string{"ADMISSION_WAIT": tt.value}))
		got := e.DurationUpTo("ADMISSION_WAIT", 7*time.Millisecond, time.Second)
		if got != tt.want || (e.Err() != nil) != tt.wantErr {
			t.Errorf("ADMISSION_WAIT=%q: got %v, err %v; want %v, error %v", tt.value, got, e.Err(), tt.want, tt.wantErr)
		}
		if tt.wantErr && !strings.Contains(e.Err().Error(), "ADMISSION_WAIT must be a duration from 0 to 1s") {
			t.Errorf("error %q does not name the setting and its range", e.Err())
		}
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 7 * 24 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d", 24 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"1m", time.Minute, false},
		{"30s", 7 * 24 * time.Hour, true},
		{"0d", 7 * 24 * time.Hour, true},
		{"-1d", 7 * 24 * time.Hour, true},
		{"d", 7 * 24 * time.Hour, true},
		{"1.5d", 7 * 24 * time.Hour, true},
		{"99999999d", 7 * 24 * time.Hour, true},
		{"week", 7 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		m := valid()
		m["TIMELINE_RETENTION"] = tt.value
		e := NewEnv(env(m))
		got := e.Common(":1", "t", "g").TimelineRetention
		if got != tt.want || (e.Err() != nil) != tt.wantErr {
			t.Errorf("TIMELINE_RETENTION=%q: got %v, err %v; want %v, error %v", tt.value, got, e.Err(), tt.want, tt.wantErr)
		}
	}
}

func TestOneOf(t *testing.T) {
	tests := []struct {
		value, want string
		wantErr     bool
	}{
		{"", "transactional", false},
		{"direct", "direct", false},
		{"Save-Then-Send", "save-then-send", false},
		{"sideways", "transactional", true},
	}
	for _, tt := range tests {
		e := NewEnv(env(map[string]string{"PLACEMENT": tt.value}))
		got := e.OneOf("PLACEMENT", "transactional", "transactional", "direct", "save-then-send")
		if got != tt.want || (e.Err() != nil) != tt.wantErr {
			t.Errorf("PLACEMENT=%q: got %q, err %v; want %q, error %v", tt.value, got, e.Err(), tt.want, tt.wantErr)
		}
		if tt.wantErr && !strings.Contains(e.Err().Error(), "PLACEMENT must be one of transactional, direct, save-then-send") {
			t.Errorf("error %q does not name the setting and its values", e.Err())
		}
	}
}

func TestPprofIsOffUnlessOn(t *testing.T) {
	for value, want := range map[string]bool{"": false, "off": false, "on": true, "ON": true} {
		m := valid()
		m["PPROF"] = value
		e := NewEnv(env(m))
		if got := e.Common(":1", "t", "g").Pprof; got != want || e.Err() != nil {
			t.Errorf("PPROF=%q: Pprof = %v, err %v; want %v", value, got, e.Err(), want)
		}
	}
	m := valid()
	m["PPROF"] = "yes"
	e := NewEnv(env(m))
	e.Common(":1", "t", "g")
	if e.Err() == nil || !strings.Contains(e.Err().Error(), "PPROF") {
		t.Errorf("PPROF=yes: err = %v, want one naming PPROF", e.Err())
	}
}

func TestTimelineIsOnUnlessOff(t *testing.T) {
	for value, want := range map[string]bool{"": true, "on": true, "off": false, "OFF": false} {
		m := valid()
		m["TIMELINE"] = value
		e := NewEnv(env(m))
		if got := e.Common(":1", "t", "g").Timeline; got != want || e.Err() != nil {
			t.Errorf("TIMELINE=%q: Timeline = %v, err %v; want %v", value, got, e.Err(), want)
		}
	}
	m := valid()
	m["TIMELINE"] = "0"
	e := NewEnv(env(m))
	e.Common(":1", "t", "g")
	if e.Err() == nil || !strings.Contains(e.Err().Error(), "TIMELINE must be one of on, off") {
		t.Errorf("TIMELINE=0: err = %v, want one naming TIMELINE and its values", e.Err())
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		value, want string
		wantErr     bool
	}{
		{"", "", false},
		{"http://cart-service:8082", "http://cart-service:8082", false},
		{" https://127.0.0.1:8082/base ", "https://127.0.0.1:8082/base", false},
		{"127.0.0.1:8082", "", true}, // no scheme
		{"ftp://cart:21", "", true},
		{"http://", "", true},
		{"http://a b", "", true},
	}
	for _, tt := range tests {
		e := NewEnv(env(map[string]string{"CART_URL": tt.value}))
		got := e.URL("CART_URL")
		gotS := ""
		if got != nil {
			gotS = got.String()
		}
		if gotS != tt.want || (e.Err() != nil) != tt.wantErr {
			t.Errorf("CART_URL=%q: %q, err %v; want %q, error %v", tt.value, gotS, e.Err(), tt.want, tt.wantErr)
		}
		if tt.wantErr && !strings.Contains(e.Err().Error(), "CART_URL must be an http:// or https:// URL") {
			t.Errorf("CART_URL=%q: error %q does not name the setting", tt.value, e.Err())
		}
	}
}
