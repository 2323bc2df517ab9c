package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"rmqtx/pkg/testenv"
)

// service is run, the real wiring, inside the test process: on a free loopback address, a fresh
// database, a topic and a producer group of its own on the tests' servers.
type service struct {
	addr string
	out  *syncBuffer // the service's log

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
	err      error
}

// startService starts run with the settings above, overridden and extended by env. The test's
// cleanup stops it, if the test did not, and fails the test if run returned an error.
func startService(t *testing.T, env map[string]string) *service {
	t.Helper()
	all := map[string]string{
		"HTTP_ADDR":            testenv.FreeAddr(t),
		"MYSQL_DSN":            testenv.NewDatabase(t, "orders"),
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       testenv.Unique("main"),
		"ROCKETMQ_GROUP":       testenv.Unique("pg"),
	}
	for k, v := range env {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{addr: all["HTTP_ADDR"], out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, func(k string) string { return all[k] }, s.out) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// stop ends run's context, as SIGTERM does, and returns what run returned (an error of its own
// if it did not return within 30 s).
func (s *service) stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = errTooSlow
		}
	})
	return s.err
}

var errTooSlow = errors.New("run did not return within 30 s of shutdown")

// get answers a GET on the service: the status and the body, or 0 when nothing answered.
func (s *service) get(path string) (int, string) {
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady waits for /readyz to answer 200.
func (s *service) waitReady(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "readyz 200", func() bool {
		code, _ := s.get("/readyz")
		return code == http.StatusOK
	})
}

// syncBuffer is a bytes.Buffer that a service's goroutines can write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
