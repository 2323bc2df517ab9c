package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The measurement scripts (bench.sh, overload.sh, timeline-cost.sh) are how the README's figures
// are made, and are run by hand: nothing else would notice one of them breaking. Each runs here
// for a second or two per step, on the shared servers, and must finish and print its table.
// The figures of such short runs mean nothing and are not looked at; what is checked is that
// every step ran and, for overload.sh, that orders were refused, none answered 500, and the
// invariant checker found nothing wrong afterwards.
func TestMeasurementScripts(t *testing.T) {
	dir := t.TempDir()
	run := func(t *testing.T, script string, want []string, env ...string) {
		t.Helper()
		t0 := time.Now()
		cmd := exec.Command(filepath.Join(root, "scripts", script))
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, tail(string(out), 60))
		}
		for _, w := range want {
			if !regexp.MustCompile(w).Match(out) {
				t.Errorf("%s printed no line matching %q", script, w)
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", script, tail(string(out), 60))
			return
		}
		t.Logf("%s: ok in %v", script, time.Since(t0).Round(time.Second))
	}
	short := []string{"WARMUP_SECONDS=1", "LOG_LEVEL=warn"}

	t.Run("overload", func(t *testing.T) {
		out := filepath.Join(dir, "overload")
		run(t, "overload.sh", []string{
			`(?m)^  median\s.* [0-9.]+ %`,
			`checker: missing, phantom\s+0, 0`,
			`verdict: all invariants hold`,
		}, append(short, "OVERLOAD_DIR="+out, "CELL_SECONDS=2", "OVERLOAD_SECONDS=3", "ROUNDS=2", "FACTOR=10", "USERS=50")...)
		// The tests beside this one load the machine unevenly, so the capacity a round measures
		// can be well below what the services place a moment later: FACTOR=10 makes the offer an
		// overload anyway. Some orders must have been refused, none answered 500.
		raw, err := os.ReadFile(filepath.Join(out, "rounds.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 {
			t.Fatalf("overload.sh wrote %d rounds, want 2:\n%s", len(lines), raw)
		}
		refused := 0
		for _, line := range lines {
			var round struct {
				Round   int `json:"round"`
				Refused int `json:"refused"`
				HTTP500 int `json:"http_500"`
			}
			if err := json.Unmarshal([]byte(line), &round); err != nil {
				t.Fatalf("rounds.jsonl: %v: %s", err, line)
			}
			refused += round.Refused
			if round.HTTP500 != 0 {
				t.Errorf("round %d: %d orders answered 500, want none", round.Round, round.HTTP500)
			}
		}
		if refused == 0 {
			t.Errorf("no order was refused in either round of ten times the capacity:\n%s", raw)
		}
	})
	t.Run("bench", func(t *testing.T) {
		want := []string{`Idle, 10 s without orders`}
		for _, p := range []string{"direct", "save-then-send", "transactional", "outbox"} {
			want = append(want, regexp.QuoteMeta(p+" c=4")+`\s+[0-9]`)
		}
		run(t, "bench.sh", want, append(short, "BENCH_DIR="+filepath.Join(dir, "bench"), "CELL_SECONDS=1", "CLIENTS=4", "USERS=20")...)
	})
	t.Run("timeline-cost", func(t *testing.T) {
		run(t, "timeline-cost.sh", []string{`TIMELINE=on\s+[0-9.]+ orders/s`, `TIMELINE=off\s+[0-9.]+ orders/s`, `on/off = [0-9.]+`},
			append(short, "COST_DIR="+filepath.Join(dir, "timeline-cost"), "CELL_SECONDS=1", "ROUNDS=1", "USERS=20")...)
	})
}
