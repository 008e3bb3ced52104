package event

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AppendJSON, and an Encoder over a stream of the events, write the bytes
// json.Marshal writes, for every type of event and awkward strings and
// figures. Half the events repeat the names and the detail keys (or their
// number) of the event before, as a detector's stream does.
func TestAppendJSONIsMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "m", "quality_inspector", "v1.2.3", "a\"b\\c", "<b>&</b>", "tab\there\nnew\r", "\x00\x01\x1f\x7f",
		"é ü 日本", "\u2028\u2029", "bad \xff utf8", "\b\f"}
	floats := []float64{0, -0.0, 1, -1, 0.1, 1.0 / 3, 1e-7, 1.5e-6, 1e-6, 1e20, 1e21, 1.7976931348623157e308, 5e-324, -2.5e-9, 123456789.125,
		612345, -3, 1e15, 1<<53 - 1, 1 << 53, -(1<<53 - 1), 1<<53 + 2, 4503599627370495.5, math.Copysign(0, -1)}
	// Strings of any length with any byte needing escaping anywhere, so
	// that every position of the 8 bytes tested at once gets every one.
	chars := []string{"a", "Z", "_", "0", " ", "~", "\"", "\\", "<", ">", "&", "\x00", "\x1f", "\x7f", "\n", "\x80", "é", "\u2028", "\xff", "日"}
	str := func() string {
		if rng.IntN(3) > 0 {
			return strs[rng.IntN(len(strs))]
		}
		var b strings.Builder
		for range rng.IntN(40) {
			if rng.IntN(4) == 0 {
				b.WriteString(chars[rng.IntN(len(chars))])
			} else {
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		return b.String()
	}
	num := func() float64 {
		switch rng.IntN(4) {
		case 0:
			return float64(rng.Int64N(1<<54) - 1<<53)
		case 1:
			return floats[rng.IntN(len(floats))]
		}
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
	}
	types := []Type{Drift, Warning, Retrain, Plugin, Config, Metric, "model"}
	var a, c []byte
	var enc Encoder
	var prev Event
	for i := range 4000 {
		e := Event{Seq: rng.Uint64N(1 << 40), Type: types[rng.IntN(len(types))],
			Time: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("", 3600*(rng.IntN(25)-12)))}
		if rng.IntN(2) == 0 {
			e.Model, e.Version, e.Metric, e.Detector = str(), str(), str(), str()
		}
		if rng.IntN(2) == 0 {
			e.Details = map[string]float64{}
			for range rng.IntN(5) + 15*rng.IntN(2) { // past the sort's small case too
				e.Details[str()+strconv.Itoa(rng.IntN(30))] = num()
			}
		}
		switch rng.IntN(4) { // in UTC, as the bus stamps events
		case 0:
			e.Time = e.Time.UTC()
		case 1: // within the second of the event before
			ns := []int{0, 1, 100, 120_000_000, 999_999_999, rng.IntN(1e9), rng.IntN(1e3) * 1e6}[rng.IntN(7)]
			e.Time = time.Unix(prev.Time.Unix(), int64(ns)).UTC()
		}
		if rng.IntN(2) == 0 { // as the event before
			e.Model, e.Version, e.Metric, e.Detector = prev.Model, prev.Version, prev.Metric, prev.Detector
			if rng.IntN(8) == 0 {
				e.Detector += "x"
			}
			e.Details = nil
			if prev.Details != nil {
				e.Details = map[string]float64{}
				for k := range prev.Details {
					e.Details[k] = num()
				}
				if k := str() + "y"; len(e.Details) > 0 && rng.IntN(4) == 0 { // one key other, as many
					for old := range e.Details {
						delete(e.Details, old)
						break
					}
					e.Details[k] = num()
				}
			}
		}
		e.Index, e.Value, e.WindowSize, e.WindowMean = rng.Uint64(), num(), rng.IntN(5000), num()
		e.Repeat = rng.IntN(3) == 0
		if rng.IntN(2) == 0 {
			e.Action, e.Plugin, e.Sink, e.Job, e.JobKind, e.Message = Action(str()), str(), str(), str(), str(), str()
			e.Pid, e.Attempt, e.DelayMS, e.Generation = rng.IntN(3)*rng.IntN(99999), rng.IntN(3), int64(rng.IntN(3))*rng.Int64N(1e6), uint64(rng.IntN(3))
		}
		if rng.IntN(2) == 0 {
			e.Instance = str()
		}
		if i%50 == 0 {
			e.Diagnostics = []map[string]any{{"summary": str(), "line": 3}}
		}
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var aerr error
		a, aerr = e.AppendJSON(a[:0])
		if aerr != nil || !bytes.Equal(a, want) {
			t.Fatalf("event %d: AppendJSON\n%s (%v)\njson.Marshal\n%s", i, a, aerr, want)
		}
		c, aerr = enc.Append(c[:0], &e)
		if aerr != nil || !bytes.Equal(c, want) {
			t.Fatalf("event %d: Encoder\n%s (%v)\njson.Marshal\n%s", i, c, aerr, want)
		}
		prev = e
	}
}

// A figure that is not finite is an error, as with json.Marshal.
func TestAppendJSONRefusesWhatMarshalRefuses(t *testing.T) {
	for _, e := range []Event{
		{Type: Drift, WindowMean: math.NaN()},
		{Type: Metric, Value: math.Inf(1)},
		{Type: Warning, Details: map[string]float64{"x": math.Inf(-1)}},
		{Type: Drift, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, merr := json.Marshal(&e)
		if _, err := e.AppendJSON(nil); err == nil || merr == nil || err.Error() != merr.Error() {
			t.Errorf("%+v: AppendJSON error %v, json.Marshal's %v", e, err, merr)
		}
		var enc Encoder
		if _, err := enc.Append(nil, &e); err == nil || err.Error() != merr.Error() {
			t.Errorf("%+v: Encoder error %v, json.Marshal's %v", e, err, merr)
		}
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := Event{Seq: 12345, Type: Warning, Time: time.Now(), Model: "quality_inspector", Version: "v1.2.3",
		Metric: "error", Detector: "eddm.errors", Index: 123456, WindowSize: 1000, WindowMean: 0.1234,
		Details: map[string]float64{"distance": 12.5, "mean_distance": 10.25, "n": 1234, "statistic": 0.93, "threshold": 0.95}}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for range b.N {
			buf, _ = e.AppendJSON(buf[:0])
		}
	})
	b.Run("Encoder", func(b *testing.B) { // the events of one stream
		b.ReportAllocs()
		var buf []byte
		var enc Encoder
		for i := range b.N {
			e.Index = uint64(i)
			buf, _ = enc.Append(buf[:0], &e)
		}
	})
	b.Run("EncoderTwoStreams", func(b *testing.B) { // their events interleaved
		b.ReportAllocs()
		var buf []byte
		var enc Encoder
		f := e
		f.Detector, f.Details = "ddm.errors", map[string]float64{"p": 0.12, "s": 0.0123, "p_min": 0.1, "s_min": 0.01, "level": 2.1}
		for i := range b.N {
			e.Index = uint64(i)
			if i%2 == 0 {
				buf, _ = enc.Append(buf[:0], &e)
			} else {
				buf, _ = enc.Append(buf[:0], &f)
			}
		}
	})
}

// Encoding an event allocates nothing once the buffer has room, and the
// event need not live on the heap: a subscriber's stream takes each event
// from the bus into a local variable and encodes it.
func TestAppendJSONDoesNotAllocate(t *testing.T) {
	warning := Event{Seq: 12345, Type: Warning, Time: time.Date(2026, 12, 7, 8, 0, 0, 123456789, time.UTC),
		Model: "quality_inspector", Version: "v1.2.3", Metric: "error", Detector: "eddm.errors", Index: 123456,
		WindowSize: 1000, WindowMean: 0.1234, Details: map[string]float64{"distance": 12.5, "n": 1234, "threshold": 0.95}}
	ch := make(chan Event, 1)
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		ch <- warning
		e := <-ch
		var err error
		if buf, err = e.AppendJSON(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendJSON: %v allocations an event, want 0", n)
	}
	var enc Encoder
	if n := testing.AllocsPerRun(100, func() {
		ch <- warning
		e := <-ch
		var err error
		if buf, err = enc.Append(buf[:0], &e); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Encoder: %v allocations an event, want 0", n)
	}
}
