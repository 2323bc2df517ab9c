package e2e

// The harness runs both services the way a user does: as built binaries, real processes, against
// the real MariaDB and a RocketMQ NameServer + Broker of the suite's own (so that killing the
// broker does not disturb tests of other packages running at the same time). Tests drive them only
// through REST, kill them with SIGKILL, restart them, and read the databases to judge.

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"rmqtx/pkg/testenv"
)

var (
	root      string // repository root
	orderBin  string
	cartBin   string
	artifacts string // service logs of this run
)

// The suite's own broker, started by scripts/infra-up.sh in a folder and on ports of its own.
const (
	e2eNamesrvPort = "19876"
	e2eBrokerPort  = "20911"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	root, err = filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// go test -list only names the tests: it must not build, start or wipe anything.
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	// scripts/test.sh runs the cluster tests (which bring every server of their own) in a second
	// go test of this package beside the first, to halve the wall time: E2E_LOGS gives that run a
	// log folder of its own, E2E_BROKER=off keeps it from starting (and at the end stopping) the
	// suite's broker, which the other run is using, and E2E_BIN lets both use one build.
	artifacts = os.Getenv("E2E_LOGS")
	if artifacts == "" {
		artifacts = filepath.Join(root, ".infra", "e2e-logs")
	}
	// The folder is emptied: only a folder of its own under .infra/ is accepted.
	if rel, err := filepath.Rel(filepath.Join(root, ".infra"), artifacts); err != nil || !filepath.IsAbs(artifacts) ||
		rel == "." || strings.HasPrefix(rel, "..") {
		fmt.Fprintf(os.Stderr, "e2e: E2E_LOGS must be an absolute path of a folder under %s, got %q\n", filepath.Join(root, ".infra"), artifacts)
		return 1
	}
	os.RemoveAll(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}

	bin := os.Getenv("E2E_BIN")
	if bin != "" {
		for _, name := range []string{"order-service", "cart-service"} {
			if _, err := os.Stat(filepath.Join(bin, name)); err != nil || !filepath.IsAbs(bin) {
				fmt.Fprintf(os.Stderr, "e2e: E2E_BIN must be an absolute path holding order-service and cart-service (scripts/build-services.sh DIR -race), got %q\n", bin)
				return 1
			}
		}
	} else {
		bin, err = os.MkdirTemp("", "e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(bin)
		// Built the way the images are (scripts/build-services.sh: each service from its own
		// go.mod), plus the race detector, which needs cgo where the images are static.
		build := exec.Command(filepath.Join(root, "scripts", "build-services.sh"), bin, "-race")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build the services: %v\n%s", err, out)
			return 1
		}
	}
	orderBin, cartBin = filepath.Join(bin, "order-service"), filepath.Join(bin, "cart-service")

	switch os.Getenv("E2E_BROKER") {
	case "off":
		suiteBrokerOff = true
	case "", "on":
		if err := brokerUp(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		defer brokerDown()
	default:
		fmt.Fprintln(os.Stderr, "e2e: E2E_BROKER must be on or off")
		return 1
	}
	return apiChecked(m.Run())
}

// suiteBrokerOff: this run did not start the suite's broker (E2E_BROKER=off).
var suiteBrokerOff bool

// needSuiteBroker fails a test that uses the suite's broker in a run that did not start it.
func needSuiteBroker(t *testing.T) {
	t.Helper()
	if suiteBrokerOff {
		t.Fatal("this test needs the suite's broker, which E2E_BROKER=off did not start: run it without E2E_BROKER=off")
	}
}

func e2eInfraEnv() []string {
	return append(os.Environ(),
		"INFRA_DIR="+filepath.Join(root, ".infra", "e2e"),
		"JAR_CACHE="+filepath.Join(root, ".infra"),
		"NAMESRV_PORT="+e2eNamesrvPort,
		"BROKER_PORT="+e2eBrokerPort,
	)
}

// brokerUp starts (or re-uses) the suite's NameServer and Broker.
func brokerUp() error {
	cmd := exec.Command(filepath.Join(root, "scripts", "infra-up.sh"))
	cmd.Env = e2eInfraEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start the suite's broker: %v\n%s", err, out)
	}
	return nil
}

func brokerDown() {
	cmd := exec.Command(filepath.Join(root, "scripts", "infra-down.sh"), "--wipe")
	cmd.Env = e2eInfraEnv()
	cmd.CombinedOutput()
}

// killBroker sends SIGKILL to the suite's broker and waits for it to be gone.
func killBroker(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, ".infra", "e2e", "broker", "broker.pid"))
	if err != nil {
		t.Fatalf("broker pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill broker %d: %v", pid, err)
	}
	testenv.Eventually(t, 30*time.Second, "broker gone", func() bool { return syscall.Kill(pid, 0) != nil })
}

func restartBroker(t *testing.T) {
	t.Helper()
	needSuiteBroker(t)
	if err := brokerUp(); err != nil {
		t.Fatal(err)
	}
}

// proc is one service process.
type proc struct {
	name string
	bin  string
	env  []string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process exits
	runs int
}

func newProc(name, bin, addr string, env map[string]string) *proc {
	p := &proc{name: name, bin: bin, addr: addr}
	p.env = append(p.env, "HTTP_ADDR="+addr)
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	return p
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

// start runs the binary and waits until /readyz answers 200.
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	p.runs++
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	logf, err := os.Create(filepath.Join(artifacts, fmt.Sprintf("%s-%s.%d.log", name[:min(len(name), 60)], p.name, p.runs)))
	if err != nil {
		p.mu.Unlock()
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() { cmd.Wait(); logf.Close(); close(done) }()

	deadline := time.Now().Add(120 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("%s exited during start; see %s", p.name, logf.Name())
		default:
		}
		resp, err := http.Get(p.url("/readyz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 120 s; see %s", p.name, logf.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill is kill -9.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop is a graceful SIGTERM, with a deadline.
func (p *proc) stop(t *testing.T) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
		cmd.Process.Kill()
		<-done
	}
}

// waitExit waits for the process to die by itself (a crash fault point).
func (p *proc) waitExit(t *testing.T, within time.Duration) {
	t.Helper()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("%s did not crash within %v", p.name, within)
	}
}

func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// metric reads one sample from /metrics ("" if absent), summing series that match the prefix.
func (p *proc) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get(p.url("/metrics"))
	if err != nil {
		t.Fatalf("%s /metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, series)), 64)
			sum += v
		}
	}
	return sum
}

// suite is two order-service instances (one producer group) and one cart-service, each with its
// own database, on a topic of their own. orderEnv adds settings of order-service (PLACEMENT=outbox).
type suite struct {
	orders   []*proc
	cart     *proc
	ordersDB *sql.DB
	cartsDB  *sql.DB
	// the databases' DSNs, for the scenario scripts' invariant checker
	ordersDSN, cartsDSN string
}

func newSuite(t *testing.T, orderEnv ...map[string]string) *suite {
	t.Helper()
	needSuiteBroker(t)
	ordersDSN, cartsDSN := testenv.NewDatabase(t, "e2e_orders"), testenv.NewDatabase(t, "e2e_carts")
	common := map[string]string{
		"ROCKETMQ_NAMESRV":     "127.0.0.1:" + e2eNamesrvPort,
		"ROCKETMQ_BROKER_ADDR": "127.0.0.1:" + e2eBrokerPort,
		"ROCKETMQ_TOPIC":       testenv.Unique("e2e"),
		"FAULT_INJECTION":      "on",
		"LOG_LEVEL":            "info",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	pgroup, cgroup := testenv.Unique("e2e_pg"), testenv.Unique("e2e_cg")
	s := &suite{
		ordersDSN: ordersDSN, cartsDSN: cartsDSN,
		cart: newProc("cart", cartBin, testenv.FreeAddr(t), with(map[string]string{"MYSQL_DSN": cartsDSN, "ROCKETMQ_GROUP": cgroup})),
	}
	for i := range 2 {
		// CART_URL: the web page each instance serves reaches cart-service through it.
		env := with(map[string]string{"MYSQL_DSN": ordersDSN, "ROCKETMQ_GROUP": pgroup, "CART_URL": "http://" + s.cart.addr,
			"INSTANCE_NAME": fmt.Sprintf("order-service-%d", i+1)})
		for _, extra := range orderEnv {
			for k, v := range extra {
				env[k] = v
			}
		}
		s.orders = append(s.orders, newProc(fmt.Sprintf("order%d", i), orderBin, testenv.FreeAddr(t), env))
	}
	t.Cleanup(func() {
		for _, p := range append(append([]*proc{}, s.orders...), s.cart) {
			p.stop(t)
		}
	})
	// order-service first: it creates the topic; cart-service waits for it anyway.
	for _, p := range s.orders {
		p.start(t)
	}
	s.cart.start(t)

	var err error
	if s.ordersDB, err = sql.Open("mysql", ordersDSN); err != nil {
		t.Fatal(err)
	}
	if s.cartsDB, err = sql.Open("mysql", cartsDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ordersDB.Close(); s.cartsDB.Close() })
	return s
}

// client checks every request and answer against the services' OpenAPI documents (openapi_test.go).
var client = &http.Client{Timeout: 30 * time.Second, Transport: apiChecker}

type item struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

type orderJSON struct {
	OrderID string `json:"order_id"`
	UserID  string `json:"user_id"`
	Items   []item `json:"items"`
	Status  string `json:"status"`
}

type answer struct {
	status int
	order  orderJSON
	code   string // error code, for 4xx/5xx
	err    error  // no HTTP answer at all (connection died)
}

func place(p *proc, body string, headers map[string]string) answer {
	req, _ := http.NewRequest("POST", p.url("/orders"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	var out struct {
		Order orderJSON `json:"order"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return answer{status: resp.StatusCode, order: out.Order, code: out.Error.Code}
}

func orderBody(user string, items map[string]int) string {
	var its []item
	for sku, q := range items {
		its = append(its, item{SKU: sku, Quantity: q, UnitPriceCents: 100})
	}
	b, _ := json.Marshal(map[string]any{"user_id": user, "items": its})
	return string(b)
}

func (s *suite) fill(t *testing.T, user string, items map[string]int) {
	t.Helper()
	for sku, q := range items {
		req, _ := http.NewRequest("PUT", s.cart.url("/carts/"+user+"/items/"+sku), strings.NewReader(fmt.Sprintf(`{"quantity":%d}`, q)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT cart %s/%s = %d", user, sku, resp.StatusCode)
		}
	}
}

func (s *suite) cartOf(t *testing.T, user string) map[string]int {
	t.Helper()
	resp, err := client.Get(s.cart.url("/carts/" + user))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Items []struct {
			SKU      string `json:"sku"`
			Quantity int    `json:"quantity"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET cart %s = %d, %v", user, resp.StatusCode, err)
	}
	out := map[string]int{}
	for _, it := range c.Items {
		out[it.SKU] = it.Quantity
	}
	return out
}

// waitCart waits until the cart equals want and returns how long that took from since.
func (s *suite) waitCart(t *testing.T, user string, want map[string]int, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.cartOf(t, user)
		if equal(got, want) {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cart of %s = %v, want %v (waited %v)", user, got, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cartStays checks the cart keeps equal to want for a while (nothing arrives late).
func (s *suite) cartStays(t *testing.T, user string, want map[string]int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := s.cartOf(t, user); !equal(got, want) {
			t.Fatalf("cart of %s changed to %v, want it to stay %v", user, got, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (s *suite) ordersOf(t *testing.T, user string) []orderJSON {
	t.Helper()
	live := s.orders[0]
	if live.exited() {
		live = s.orders[1]
	}
	resp, err := client.Get(live.url("/orders?user_id=" + user))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /orders?user_id=%s: %v", user, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /orders?user_id=%s = %d: %s", user, resp.StatusCode, raw)
	}
	// "orders" must be there, an array: a missing or null field is a broken answer, not "none".
	var out struct {
		Orders *[]orderJSON `json:"orders"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Orders == nil {
		t.Fatalf("GET /orders?user_id=%s: answer without an orders array (%v): %s", user, err, raw)
	}
	for _, o := range *out.Orders {
		if o.UserID != user || o.OrderID == "" {
			t.Fatalf("GET /orders?user_id=%s answered an order %+v", user, o)
		}
	}
	return *out.Orders
}

func (s *suite) count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
