package main

// Answers refused for overload (503 with error code "overloaded", before the service did
// anything) kept apart from the answers of the requests it admitted, so that an overload run
// shows how fast each kind was answered.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"rmqtx/e2e/bench"
)

// kindOverloaded is the error kind of a 503 answer whose error code is "overloaded".
const kindOverloaded = "http_503_overloaded"

// errorKind names an HTTP error answer: http_<status>, or kindOverloaded.
func errorKind(status int, body []byte) string {
	if status == http.StatusServiceUnavailable {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Code == "overloaded" {
			return kindOverloaded
		}
	}
	return "http_" + strconv.Itoa(status)
}

// admission splits the latencies of answered requests into refused for overload and admitted.
type admission struct {
	admitted    []time.Duration
	refused     []time.Duration
	refusedSent []time.Duration // the refusals from when they were sent, not from when they were due
}

// add records an answer that took took from when it was due, and fromSent from when it was sent.
func (a *admission) add(kind string, took, fromSent time.Duration) {
	if kind == kindOverloaded {
		a.refused = append(a.refused, took)
		a.refusedSent = append(a.refusedSent, fromSent)
	} else {
		a.admitted = append(a.admitted, took)
	}
}

// fill sets the result's admission figures.
func (a *admission) fill(r *bench.Result) {
	r.Refused = len(a.refused)
	r.RefusedHTTP = bench.Summarize(a.refused)
	r.RefusedSent = bench.Summarize(a.refusedSent)
	r.AdmittedHTTP = bench.Summarize(a.admitted)
}
