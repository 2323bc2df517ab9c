package config

import (
	"log/slog"
	"strings"
	"testing"

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
		Topic: "order-events", Group: "g", LogLevel: slog.LevelInfo,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("config (-want +got):\n%s", d)
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
