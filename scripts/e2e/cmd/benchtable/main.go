// Command benchtable turns the JSON results of scripts/bench.sh's load-generator runs into the
// benchmark table: the four placements side by side at each concurrency, their ratios, the
// end-to-end latency of the three that send events at one offered rate, the outbox's backlog, the
// CPU each process spends per order, the services' peak memory, and whether each target holds. It prints figures only; it never fails a build on them.
//
//	benchtable results.jsonl              the table
//	benchtable -half-rate results.jsonl   half of the transactional flow's best throughput, for
//	                                      the fixed-rate runs
//
// Labels are "<placement> c=<clients>" for the fixed-concurrency runs and "<placement> rate" for
// the fixed-rate ones, placement being direct, save-then-send, transactional or outbox.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"rmqtx/e2e/bench"
)

const (
	direct        = "direct"
	saveThenSend  = "save-then-send"
	transactional = "transactional"
	outbox        = "outbox"
)

// placements are the table's rows, in order.
var placements = []string{direct, saveThenSend, transactional, outbox}

func main() {
	halfRate := flag.Bool("half-rate", false, "print half of the transactional flow's best throughput and exit")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: benchtable [-half-rate] results.jsonl")
		os.Exit(2)
	}
	results, err := read(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	t := index(results)
	if *halfRate {
		best := 0.0
		for _, r := range t.closed[transactional] {
			best = max(best, r.OrdersPerS)
		}
		fmt.Printf("%.0f\n", math.Max(1, math.Round(best/2)))
		return
	}
	t.print(os.Stdout)
}

func read(path string) ([]bench.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []bench.Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r bench.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

type table struct {
	results []bench.Result                  // in run order
	clients []int                           // concurrencies measured, ascending
	closed  map[string]map[int]bench.Result // placement -> clients -> result
	open    map[string]bench.Result         // placement -> the fixed-rate result
	rss     map[string]int                  // process -> peak KiB over all runs
}

func index(results []bench.Result) *table {
	t := &table{results: results, closed: map[string]map[int]bench.Result{}, open: map[string]bench.Result{}, rss: map[string]int{}}
	for _, r := range results {
		placement, _, _ := strings.Cut(r.Label, " ")
		if r.Mode == "open" {
			t.open[placement] = r
		} else {
			if t.closed[placement] == nil {
				t.closed[placement] = map[int]bench.Result{}
			}
			t.closed[placement][r.Concurrency] = r
			if !slices.Contains(t.clients, r.Concurrency) {
				t.clients = append(t.clients, r.Concurrency)
			}
		}
		for name, kib := range r.PeakRSS {
			if isService(name) {
				t.rss[name] = max(t.rss[name], kib)
			}
		}
	}
	slices.Sort(t.clients)
	return t
}

// isService tells the project's services from the other processes watched for CPU (MariaDB, the
// broker, the load generator), whose memory is not what the target is about.
func isService(process string) bool {
	return strings.HasPrefix(process, "order-service") || strings.HasPrefix(process, "cart-service")
}

var names = map[string]string{
	direct:        "A direct",
	saveThenSend:  "B save-then-send",
	transactional: "C transactional",
	outbox:        "D outbox",
}

func (t *table) print(w io.Writer) {
	fmt.Fprintln(w, "Fixed concurrency (closed loop): each client sends its next order when the last is answered")
	fmt.Fprintf(w, "%-16s %7s %9s %9s %9s %9s %10s %10s  %s\n",
		"placement", "clients", "orders/s", "http p50", "http p95", "http p99", "e2e p50", "e2e p99", "errors")
	for _, c := range t.clients {
		for _, p := range placements {
			r, ok := t.closed[p][c]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "%-16s %7d %9.1f %9.2f %9.2f %9.2f %10s %10s  %s\n", names[p], c, r.OrdersPerS,
				r.HTTP.P50, r.HTTP.P95, r.HTTP.P99, e2e(r, r.E2E.P50), e2e(r, r.E2E.P99), errs(r))
		}
	}
	fmt.Fprintln(w, "(latencies in ms; e2e = order created -> cart updated, from processed_orders; '-' = no event is ever sent)")

	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-28s", "ratios at clients")
	for _, c := range t.clients {
		fmt.Fprintf(w, " %7d", c)
	}
	fmt.Fprintln(w)
	t.ratioRow(w, "throughput  C / A", func(a, c bench.Result) float64 { return c.OrdersPerS / a.OrdersPerS }, direct)
	t.ratioRow(w, "throughput  C / B", func(b, c bench.Result) float64 { return c.OrdersPerS / b.OrdersPerS }, saveThenSend)
	t.ratioRow(w, "throughput  B / A", func(a, b bench.Result) float64 { return b.OrdersPerS / a.OrdersPerS }, direct, saveThenSend)
	t.ratioRow(w, "HTTP p99    C / A", func(a, c bench.Result) float64 { return c.HTTP.P99 / a.HTTP.P99 }, direct)
	t.ratioRow(w, "HTTP p99    C / B", func(b, c bench.Result) float64 { return c.HTTP.P99 / b.HTTP.P99 }, saveThenSend)
	t.ratioRow(w, "throughput  D / C", func(c, d bench.Result) float64 { return d.OrdersPerS / c.OrdersPerS }, transactional, outbox)
	t.ratioRow(w, "HTTP p99    D / C", func(c, d bench.Result) float64 { return d.HTTP.P99 / c.HTTP.P99 }, transactional, outbox)

	if len(t.open) > 0 {
		rate := 0.0
		for _, r := range t.open {
			rate = max(rate, r.Rate)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Same offered rate (open loop), %.0f orders/s = half of C's best throughput\n", rate)
		fmt.Fprintf(w, "%-16s %9s %9s %9s %10s %10s %10s %8s  %s\n", "placement", "orders/s", "http p50", "http p99",
			"e2e p50", "e2e p95", "e2e p99", "missing", "errors")
		for _, p := range placements {
			r, ok := t.open[p]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "%-16s %9.1f %9.2f %9.2f %10s %10s %10s %8d  %s\n", names[p], r.OrdersPerS, r.HTTP.P50, r.HTTP.P99,
				e2e(r, r.E2E.P50), e2e(r, r.E2E.P95), e2e(r, r.E2E.P99), r.E2EMissing, errs(r))
		}
	}

	t.printOutbox(w)

	if len(t.rss) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Peak RSS over all runs (VmRSS sampled every 100 ms)")
		procs := make([]string, 0, len(t.rss))
		for p := range t.rss {
			procs = append(procs, p)
		}
		slices.Sort(procs)
		for _, p := range procs {
			fmt.Fprintf(w, "  %-30s %6.1f MiB\n", p, float64(t.rss[p])/1024)
		}
	}

	t.printCPU(w)
	fmt.Fprintln(w)
	t.targets(w)
}

// printOutbox shows the outbox's backlog in D's runs: the rows committed and not yet handed to the
// broker, sampled every 100 ms while orders were placed.
func (t *table) printOutbox(w io.Writer) {
	var runs []bench.Result
	for _, r := range t.results {
		if r.OutboxMeasured {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Outbox table under load (rows waiting for the relay, sampled every 100 ms)")
	fmt.Fprintf(w, "%-24s %9s %9s %9s\n", "run", "orders/s", "peak", "mean")
	for _, r := range runs {
		fmt.Fprintf(w, "%-24s %9.1f %9d %9.1f\n", r.Label, r.OrdersPerS, r.OutboxPeak, r.OutboxMean)
	}
}

// printCPU shows, for every run, the cores each process used: on a small machine every
// component competes for the same cores, so this is where the time goes.
func (t *table) printCPU(w io.Writer) {
	var procs []string
	for _, r := range t.results {
		for p := range r.CPU {
			if !slices.Contains(procs, p) && p != "machine" && p != "stolen" {
				procs = append(procs, p)
			}
		}
	}
	if len(procs) == 0 {
		return
	}
	// The order-services of the three placements are one column: each run loads one of them.
	column := func(p string) string {
		if strings.HasPrefix(p, "order-service") {
			return "order-service"
		}
		return p
	}
	var cols []string
	for _, p := range procs {
		if c := column(p); !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU during each run, in cores (average over the measured window; other = the machine minus")
	fmt.Fprintln(w, "the processes listed: the kernel's network work, idle services, anything else running;")
	fmt.Fprintln(w, "stolen = taken by the hypervisor for other machines, not in machine: a run with more of it ran on")
	fmt.Fprintln(w, "a slower machine)")
	fmt.Fprintf(w, "%-24s %8s", "run", "machine")
	for _, c := range cols {
		fmt.Fprintf(w, " %13s", c)
	}
	fmt.Fprintf(w, " %7s %7s\n", "other", "stolen")
	for _, r := range t.results {
		if r.CPU == nil {
			continue
		}
		fmt.Fprintf(w, "%-24s %8.2f", r.Label, r.CPU["machine"])
		other := r.CPU["machine"]
		for _, c := range cols {
			v := 0.0
			for p, cores := range r.CPU {
				if column(p) == c {
					// Only the run's own order-service is busy; the others idle at ~0.
					v = max(v, cores)
				}
			}
			other -= v
			fmt.Fprintf(w, " %13.2f", v)
		}
		fmt.Fprintf(w, " %7.2f %7.2f\n", max(other, 0), r.CPU["stolen"])
	}

	// The same, per order: a placement that does more work per order shows it here even when the
	// machine's cores, not the placement, bound its throughput.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU per placed order, in ms of CPU time (cores x 1000 / orders per second)")
	fmt.Fprintf(w, "%-24s %8s", "run", "machine")
	for _, c := range cols {
		fmt.Fprintf(w, " %13s", c)
	}
	fmt.Fprintln(w)
	for _, r := range t.results {
		if r.CPU == nil || r.OrdersPerS <= 0 {
			continue
		}
		perOrder := func(cores float64) float64 { return cores * 1000 / r.OrdersPerS }
		fmt.Fprintf(w, "%-24s %8.2f", r.Label, perOrder(r.CPU["machine"]))
		for _, c := range cols {
			v := 0.0
			for p, cores := range r.CPU {
				if column(p) == c {
					v = max(v, cores)
				}
			}
			fmt.Fprintf(w, " %13.2f", perOrder(v))
		}
		fmt.Fprintln(w)
	}
}

// ratioRow prints f(base, other) at each concurrency; other is the transactional flow unless
// given.
func (t *table) ratioRow(w io.Writer, name string, f func(base, other bench.Result) float64, base string, other ...string) {
	o := transactional
	if len(other) > 0 {
		o = other[0]
	}
	fmt.Fprintf(w, "%-28s", name)
	for _, c := range t.clients {
		b, ok1 := t.closed[base][c]
		x, ok2 := t.closed[o][c]
		if !ok1 || !ok2 {
			fmt.Fprintf(w, " %7s", "-")
			continue
		}
		fmt.Fprintf(w, " %7.2f", f(b, x))
	}
	fmt.Fprintln(w)
}

// saturation is the smallest concurrency at which the placement gets at least 90% of its best
// throughput: beyond it, more clients only queue.
func (t *table) saturation(placement string) (int, bool) {
	best := 0.0
	for _, r := range t.closed[placement] {
		best = max(best, r.OrdersPerS)
	}
	for _, c := range t.clients {
		if r, ok := t.closed[placement][c]; ok && r.OrdersPerS >= 0.9*best && best > 0 {
			return c, true
		}
	}
	return 0, false
}

func (t *table) targets(w io.Writer) {
	fmt.Fprintln(w, "Targets")
	verdict := func(ok bool) string {
		if ok {
			return "HOLDS"
		}
		return "MISSED"
	}
	if c, ok := t.saturation(direct); ok {
		a, x := t.closed[direct][c], t.closed[transactional][c]
		ratio := x.OrdersPerS / a.OrdersPerS
		stretch := ""
		if ratio >= 0.8 {
			stretch = " (stretch 0.8 also holds)"
		}
		fmt.Fprintf(w, "  %-6s throughput C >= 0.6 x A where A saturates (%d clients): %.2f%s\n", verdict(ratio >= 0.6), c, ratio, stretch)
		pa, px := a.HTTP.P99, x.HTTP.P99
		fmt.Fprintf(w, "  %-6s HTTP p99 C <= 3 x A at %d clients: %.2f ms vs %.2f ms = %.2f x\n", verdict(px <= 3*pa), c, px, pa, px/pa)
		var missed []string
		for _, n := range t.clients {
			a, ok1 := t.closed[direct][n]
			x, ok2 := t.closed[transactional][n]
			if ok1 && ok2 && x.HTTP.P99 > 3*a.HTTP.P99 {
				missed = append(missed, fmt.Sprintf("%d clients (%.2f x)", n, x.HTTP.P99/a.HTTP.P99))
			}
		}
		if len(missed) > 0 {
			fmt.Fprintf(w, "         (HTTP p99 C > 3 x A at %s)\n", strings.Join(missed, ", "))
		}
	} else {
		fmt.Fprintln(w, "  ?      no baseline A results")
	}
	if b, c := t.open[saveThenSend], t.open[transactional]; b.E2EMeasured && c.E2EMeasured {
		ok := c.E2E.P99 <= 1.5*b.E2E.P99 && c.E2EMissing == 0
		fmt.Fprintf(w, "  %-6s e2e p99 C <= 1.5 x B at %.0f orders/s: %.2f ms vs %.2f ms = %.2f x\n",
			verdict(ok), c.Rate, c.E2E.P99, b.E2E.P99, c.E2E.P99/b.E2E.P99)
	} else {
		fmt.Fprintln(w, "  ?      no fixed-rate results for B and C")
	}
	if len(t.rss) > 0 {
		worst, name := 0, ""
		for p, kib := range t.rss {
			if kib > worst {
				worst, name = kib, p
			}
		}
		fmt.Fprintf(w, "  %-6s every service under 64 MiB RSS: highest %.1f MiB (%s)\n", verdict(worst < 64*1024), float64(worst)/1024, name)
	}
}

func e2e(r bench.Result, v float64) string {
	if !r.E2EMeasured {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func errs(r bench.Result) string {
	if len(r.Errors) == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, r.Errors[k])
	}
	return b.String()
}
