package main

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/driftd/driftd/core/api"
)

// Each plain reader counts every line of the load, and the readers that
// decode refuse a line that is not JSON.
func TestReaders(t *testing.T) {
	l := generate(3, 1)
	bad := append(append([]byte{}, l.data...), "{\"model\":\n"...)
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			res, status := readerAnswer(t, r.h, l.data)
			if status != http.StatusOK || res.Accepted != l.lines() {
				t.Errorf("load of %d lines: %d, %d accepted (%s)", l.lines(), status, res.Accepted, res.Error)
			}
			res, status = readerAnswer(t, r.h, bad)
			if decodes := r.name != "bare splitter"; decodes && (status != http.StatusBadRequest || res.Accepted != l.lines()) {
				t.Errorf("a line that is not JSON after %d good ones: %d, %d accepted", l.lines(), status, res.Accepted)
			}
		})
	}
}

func readerAnswer(t *testing.T, h http.HandlerFunc, body []byte) (api.IngestResult, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(body)))
	var res api.IngestResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatalf("answer %q: %v", rec.Body, err)
	}
	return res, rec.Code
}

func TestReaderRatio(t *testing.T) {
	rounds := []readerRound{
		{Agent: true, Lines: 3000, Seconds: 1},
		{Lines: 1000, Seconds: 1},
		{Lines: 3000, Seconds: 2},
		{Agent: true, Lines: 2000, Seconds: 2},
	}
	// The agent: 5000 lines in 3 s; the reader: 4000 in 3 s.
	ratio, agent, reader := readerRatio(rounds)
	if math.Abs(ratio-1.25) > 1e-12 || math.Abs(agent-5000.0/3) > 1e-9 || math.Abs(reader-4000.0/3) > 1e-9 {
		t.Errorf("readerRatio = %v, %v, %v; want 1.25, %v, %v", ratio, agent, reader, 5000.0/3, 4000.0/3)
	}
	if r, _, _ := readerRatio(rounds[:1]); r != 0 {
		t.Errorf("without a reader's round: ratio %v, want 0", r)
	}
}
