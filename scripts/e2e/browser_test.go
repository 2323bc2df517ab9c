package e2e

// The web page, driven by a real (headless) Chromium against the real suite: a reader fills a
// cart, places an order whose commit never reaches the broker, and watches the page show the
// broker's check-back rescue it and the cart change. Chromium comes from scripts/install-chromium.sh
// (scripts/test.sh runs it).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"rmqtx/pkg/testenv"
)

// chromium is the browser the test drives; CHROMIUM overrides it.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no browser at %s (%v): run scripts/install-chromium.sh, or set CHROMIUM", path, err)
	}
	return path
}

// newBrowser starts a headless Chromium with a fresh profile and returns a tab's context, and a
// function that lists the page's uncaught exceptions and console.error calls so far.
func newBrowser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // as root, as in a container
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser and opens the tab
		t.Fatalf("start %s: %v", chromium(t), err)
	}

	var mu sync.Mutex
	var pageErrors []string
	messages := chromedp.Console(ctx) // subscribed from here on
	go func() {
		for m, err := range messages {
			if err != nil {
				return // the tab is closed
			}
			// A console.error call has arguments; an entry of the browser's own log (a favicon
			// the API answers 404 to, say) has none and is not the page's doing.
			if m.Type == chromedp.ConsoleException || (m.Type == chromedp.ConsoleError && len(m.Args) > 0) {
				mu.Lock()
				pageErrors = append(pageErrors, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), pageErrors...)
	}
}

// screenshot saves the whole page under the e2e artifacts and returns the file's path.
func screenshot(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	shotCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
	return path
}

// browse runs browser actions, bounded; on failure it keeps a screenshot of what the page showed.
func browse(ctx context.Context, t *testing.T, what string, within time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	runCtx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := chromedp.Do(runCtx, steps...); err != nil {
		shot := screenshot(ctx, t, "browser-failed.png")
		answer := read(ctx, t, chromedp.Text(chromedp.CSS("#answer")))
		outcome := read(ctx, t, chromedp.Text(chromedp.CSS("#outcome")))
		t.Fatalf("%s: %v\npage says: %q / %q\nscreenshot: %s", what, err, answer, outcome, shot)
	}
}

// read runs one action that returns a value.
func read[T any](ctx context.Context, t *testing.T, a chromedp.Action[T]) T {
	t.Helper()
	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(readCtx, a)
	if err != nil {
		t.Errorf("read the page: %v", err)
	}
	return v
}

// texts is the text of every element matching sel.
func texts(sel string) chromedp.Action[[]string] {
	return chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.trim())`, sel))
}

// attrs is one attribute of every element matching sel.
func attrs(sel, attr string) chromedp.Action[[]string] {
	return chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.getAttribute(%q))`, sel, attr))
}

func TestBrowserWatchesACheckBackRescueAnOrder(t *testing.T) {
	s := newSuite(t)
	ctx, pageErrors := newBrowser(t)
	user := testenv.Unique("reader")
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// The page, from one order-service address; its settings are loaded once the fault menu is
	// filled.
	browse(ctx, t, "open the page", 60*time.Second,
		chromedp.Navigate(s.orders[0].url("/?user="+user)),
		chromedp.WaitReady(css(`#fault option[value="skip-end-transaction"]`)),
	)
	if got := read(ctx, t, chromedp.Value(css("#user"))); got != user {
		t.Fatalf("user field = %q, want %q from the address", got, user)
	}

	// Fill the cart in the page, which reaches cart-service through order-service. The button is
	// disabled until the page has read the cart back after the last put, and the page's own
	// polling can draw the new line before that: a click in between would be lost, so wait for it.
	for _, line := range []struct{ sku, qty string }{{"A-1", "3"}, {"B-2", "1"}} {
		browse(ctx, t, "put "+line.sku+" in the cart", 30*time.Second,
			chromedp.WaitEnabled(css("#add")),
			chromedp.SetValue(css("#sku"), line.sku),
			chromedp.SetValue(css("#qty"), line.qty),
			chromedp.Click(css("#add")),
			chromedp.WaitVisible(css(fmt.Sprintf(`#cart-table tr[data-sku=%q]`, line.sku))),
		)
	}
	if got, want := s.cartOf(t, user), map[string]int{"A-1": 3, "B-2": 1}; !equal(got, want) {
		t.Fatalf("cart-service has %v after filling the cart in the page, want %v", got, want)
	}

	// Order 2 of A-1 and the one B-2, and have the commit never reach the broker.
	browse(ctx, t, "place the order", 30*time.Second,
		chromedp.SetValue(css(`input[data-sku="A-1"]`), "2"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector('input[data-sku="A-1"]').dispatchEvent(new Event("input"))`)(ctx, tg)
			return err
		}),
		chromedp.SetValue(css("#fault"), "skip-end-transaction"),
		chromedp.WaitEnabled(css("#place")),
		chromedp.Click(css("#place")),
		chromedp.WaitVisible(css(`#answer[data-kind="ok"]`)),
	)
	answer := read(ctx, t, chromedp.Text(css("#answer")))
	orderID := read(ctx, t, chromedp.Text(css("#watch-id")))
	if !strings.HasPrefix(answer, "201 Created") || orderID == "" || !strings.Contains(answer, orderID) {
		t.Fatalf("answer %q for watched order %q; want 201 Created naming the order", answer, orderID)
	}

	// The page shows the answer withheld, the broker's check-back, then the cart applying it.
	browse(ctx, t, "wait for the check-back and the cart", 120*time.Second,
		chromedp.WaitVisible(css(`#order-steps li[data-step="answer_withheld"]`)),
		chromedp.WaitVisible(css(`#order-steps li[data-step="check_back"]`)),
		chromedp.WaitVisible(css(`#cart-steps li[data-step="applied"]`)),
		chromedp.WaitVisible(css(`#outcome[data-state="committed"][data-applied="yes"]`)),
		chromedp.WaitVisible(css(`#cart-after tr[data-sku="A-1"] td.qty.changed`)),
	)
	t.Logf("screenshot of the rescued order: %s", screenshot(ctx, t, "browser-timeline.png"))

	checks := []struct {
		what      string
		got, want []string
	}{
		{"order-service steps", read(ctx, t, attrs("#order-steps li", "data-step")),
			[]string{"half_message_stored", "local_tx_committed", "answer_withheld", "check_back"}},
		{"cart-service steps", read(ctx, t, attrs("#cart-steps li", "data-step")), []string{"applied"}},
		{"cart before", read(ctx, t, texts("#cart-before tbody tr")), []string{"A-13", "B-21"}},
		// A-1 decremented, not deleted; B-2 taken off entirely, shown as 0.
		{"cart after", read(ctx, t, texts("#cart-after tbody tr")), []string{"A-11", "B-20"}},
		{"cart now", read(ctx, t, texts("#cart-table tbody tr td:nth-child(-n+2)")), []string{"A-1", "1"}},
		{"orders listed", read(ctx, t, attrs("#orders-table tbody tr", "data-order")), []string{orderID}},
	}
	for _, c := range checks {
		if d := cmp.Diff(c.want, c.got); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.what, d)
		}
	}
	checkBack := read(ctx, t, texts(`#order-steps li[data-step="check_back"]`))
	if len(checkBack) != 1 || !strings.Contains(checkBack[0], "commit: tx_log says committed") || !strings.Contains(checkBack[0], "from tx_log") {
		t.Errorf("check-back step %q: want its detail and its explanation", checkBack)
	}
	if outcome := read(ctx, t, chromedp.Text(css("#outcome"))); !strings.Contains(outcome, "exactly once") {
		t.Errorf("outcome %q: want it to say the cart was updated exactly once", outcome)
	}
	// What the page showed is what the services did.
	if got, want := s.cartOf(t, user), map[string]int{"A-1": 1}; !equal(got, want) {
		t.Errorf("cart-service has %v, want %v", got, want)
	}

	// An order whose local transaction fails: the 500 names it, and the page watches it, showing
	// the rollback that kept it from the cart.
	browse(ctx, t, "place an order whose local transaction fails", 60*time.Second,
		chromedp.SetValue(css("#fault"), "fail-local-tx"),
		chromedp.WaitEnabled(css("#place")),
		chromedp.Click(css("#place")),
		chromedp.WaitVisible(css(`#answer[data-kind="bad"]`)),
		chromedp.WaitVisible(css(`#order-steps li[data-step="local_tx_rolled_back"]`)),
		chromedp.WaitVisible(css(`#outcome[data-state="rolled_back"]`)),
	)
	failed := read(ctx, t, chromedp.Text(css("#watch-id")))
	answer = read(ctx, t, chromedp.Text(css("#answer")))
	if !strings.HasPrefix(answer, "500") || failed == "" || failed == orderID || !strings.Contains(answer, failed) {
		t.Errorf("answer %q for watched order %q; want a 500 naming the failed order, watched", answer, failed)
	}
	t.Logf("screenshot of the failed order: %s", screenshot(ctx, t, "browser-failed-order.png"))
	if got, want := s.cartOf(t, user), map[string]int{"A-1": 1}; !equal(got, want) {
		t.Errorf("cart-service has %v after the failed order, want %v", got, want)
	}
	for _, e := range pageErrors() {
		t.Errorf("page: %s", e)
	}
}
