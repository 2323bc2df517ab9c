package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"rmqtx/pkg/testenv"
)

// The scripts users run are part of the product: the local suite comes up with suite-up.sh, the
// curl tour (demo.sh) and every teaching scenario run to completion against it, each judging its
// own outcome (cart arithmetic, HTTP answers, the invariant checker) and exiting non-zero if wrong.
func TestScriptsAgainstLocalSuite(t *testing.T) {
	env := scriptSuiteEnv(t, "scripts")
	run := func(t *testing.T, script string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(root, "scripts", script))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, tail(string(out), 60))
		}
		t.Logf("%s: ok\n%s", script, tail(string(out), 8))
	}
	run(t, "suite-up.sh")
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(root, "scripts", "suite-down.sh"))
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("suite-down.sh: %v\n%s", err, out)
		}
	})

	t.Run("demo", func(t *testing.T) { run(t, "demo.sh") })
	for _, s := range []string{"happy-path", "crash-after-half", "crash-after-local-commit", "skip-end-transaction",
		"fail-local-tx", "slow-local-tx", "cart-fail-once", "cart-crash-after-commit"} {
		t.Run(s, func(t *testing.T) { run(t, filepath.Join("scenarios", s+".sh")) })
	}
	// The wrong ways last: each leaves its damage in the databases, which the scripts above would
	// report (they judge everything; the wrong ways' scripts judge their own users).
	for _, s := range []string{"dedup-by-message-id", "ack-before-commit", "delete-lines"} {
		t.Run("wrong/"+s, func(t *testing.T) { run(t, filepath.Join("scenarios", "wrong", s+".sh")) })
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// go test -list names the tests without building the services, starting a broker or wiping the
// logs of the last run (TestMain does all three for a real run).
func TestListingStartsNothing(t *testing.T) {
	marker := filepath.Join(artifacts, "listing-must-keep-this")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(marker)
	cmd := exec.Command("go", "test", "-list", ".", ".")
	cmd.Dir = filepath.Join(root, "scripts", "e2e")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "TestFailureWindows") {
		t.Fatalf("go test -list does not name TestFailureWindows:\n%s", out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("go test -list wiped the logs of the last run: %v", err)
	}
	if strings.Contains(string(out), "e2e:") {
		t.Fatalf("go test -list ran the set-up:\n%s", out)
	}
}

// scriptSuiteEnv is the environment of scripts/suite-up.sh and the scenario scripts for a local
// suite of a test's own: free ports, its own databases (the checker reads them through the DSNs),
// topic and groups, fault injection on, and the URLs the scripts find the services through. extra
// settings come last, so they win.
func scriptSuiteEnv(t *testing.T, name string, extra ...string) []string {
	t.Helper()
	order1, order2, cart := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := append(os.Environ(),
		"SUITE_DIR="+t.TempDir(),
		"ORDER_ADDR_1="+order1,
		"ORDER_ADDR_2="+order2,
		"CART_ADDR="+cart,
		"ORDER_URL=http://"+order1,
		"ORDER_URL_2=http://"+order2,
		"CART_URL=http://"+cart,
		"ORDERS_DSN="+testenv.NewDatabase(t, name+"_orders"),
		"CARTS_DSN="+testenv.NewDatabase(t, name+"_carts"),
		"ROCKETMQ_TOPIC="+testenv.Unique(name),
		"ORDER_GROUP="+testenv.Unique(name+"_pg"),
		"CART_GROUP="+testenv.Unique(name+"_cg"),
		"FAULT_INJECTION=on",
	)
	return append(env, extra...)
}
