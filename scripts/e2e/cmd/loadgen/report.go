package main

// The text report (-json prints bench.Result instead).

import (
	"fmt"
	"io"
	"slices"

	"rmqtx/e2e/bench"
)

func printText(w io.Writer, r bench.Result) {
	load := fmt.Sprintf("%d clients", r.Concurrency)
	if r.Mode == "open" {
		load = fmt.Sprintf("%.0f orders/s offered", r.Rate)
	}
	fmt.Fprintf(w, "%s%s for %.0fs: %d requests, %d placed, %.1f orders/s\n", label(r), load, r.DurationS, r.Requests, r.Placed, r.OrdersPerS)
	fmt.Fprintf(w, "  HTTP latency ms        p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f\n", r.HTTP.P50, r.HTTP.P95, r.HTTP.P99, r.HTTP.Max)
	if r.Refused > 0 {
		fmt.Fprintf(w, "  admitted ms            p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f  (%d answers)\n",
			r.AdmittedHTTP.P50, r.AdmittedHTTP.P95, r.AdmittedHTTP.P99, r.AdmittedHTTP.Max, r.AdmittedHTTP.Count)
		fmt.Fprintf(w, "  refused (503) ms       p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f  (%d refused for overload)\n",
			r.RefusedHTTP.P50, r.RefusedHTTP.P95, r.RefusedHTTP.P99, r.RefusedHTTP.Max, r.Refused)
	}
	if r.E2EMeasured {
		fmt.Fprintf(w, "  order -> cart ms       p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f  (%d applied, %d not applied in time)\n",
			r.E2E.P50, r.E2E.P95, r.E2E.P99, r.E2E.Max, r.E2E.Count, r.E2EMissing)
	}
	if r.OutboxMeasured {
		fmt.Fprintf(w, "  outbox rows            peak %d  mean %.1f\n", r.OutboxPeak, r.OutboxMean)
	}
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "  errors: none")
	} else {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		fmt.Fprint(w, "  errors:")
		for _, k := range kinds {
			fmt.Fprintf(w, " %s=%d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
	for name, kib := range r.PeakRSS {
		fmt.Fprintf(w, "  peak RSS %s: %.1f MiB\n", name, float64(kib)/1024)
	}
	for name, cores := range r.CPU {
		fmt.Fprintf(w, "  CPU %s: %.2f cores\n", name, cores)
	}
}

func label(r bench.Result) string {
	if r.Label == "" {
		return ""
	}
	return r.Label + ": "
}
