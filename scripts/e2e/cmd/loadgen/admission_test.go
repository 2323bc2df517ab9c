package main

import (
	"testing"
	"time"

	"rmqtx/e2e/bench"
)

func TestErrorKindTellsRefusalsApart(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   string
	}{
		{503, `{"error":{"code":"overloaded","message":"m"}}`, kindOverloaded},
		{503, `{"error":{"code":"broker_unavailable","message":"m"}}`, "http_503"},
		{503, `not json`, "http_503"},
		{500, `{"error":{"code":"overloaded"}}`, "http_500"},
	} {
		if got := errorKind(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("errorKind(%d, %s) = %q, want %q", tt.status, tt.body, got, tt.want)
		}
	}
	var a admission
	a.add(kindOverloaded, 3*time.Millisecond, time.Millisecond) // sent 2 ms late
	a.add("", 40*time.Millisecond, 40*time.Millisecond)
	a.add("http_500", 5*time.Second, 5*time.Second)
	var r bench.Result
	a.fill(&r)
	if r.Refused != 1 || r.RefusedHTTP.Max != 3 || r.RefusedSent.Max != 1 || r.AdmittedHTTP.Count != 2 || r.AdmittedHTTP.Max != 5000 {
		t.Fatalf("result = refused %d %+v (from sent %+v), admitted %+v", r.Refused, r.RefusedHTTP, r.RefusedSent, r.AdmittedHTTP)
	}
}
