package sdk

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/driftd/driftd/internal/pluginwire"
)

// warner warns at every value above its stream's last, with two figures,
// and raises a drift besides at every value above 2: a detector that
// signals at many values, as DDM does once a stream has gone bad.
type warner struct{ Streams }

func (*warner) Info() Info             { return Info{Name: "warner", Kind: KindDetector, Version: "1"} }
func (*warner) Schema() Schema         { return Schema{} }
func (*warner) Configure(Config) error { return nil }

type warnerState struct {
	last    float64
	figures [2]Detail // handed to raise, which copies them
}

func (s *warnerState) Update(x float64) (SignalType, map[string]float64) {
	var typ SignalType
	var m map[string]float64
	s.UpdatePairs(x, func(t SignalType, d []Detail) { typ, m = t, Signal{Pairs: d}.DetailsMap() })
	return typ, m
}

func (s *warnerState) UpdatePairs(x float64, raise func(SignalType, []Detail)) {
	if x > s.last {
		s.figures = [2]Detail{{Key: "x", Value: x}, {Key: "last", Value: s.last}}
		raise(SignalWarning, s.figures[:])
	}
	if x > 2 {
		raise(SignalDrift, nil)
	}
	s.last = x
}

func newWarner() *warner {
	w := &warner{}
	w.New = func() StreamDetector { return &warnerState{} }
	return w
}

// wantWarnings is what warner answers to batches, in order.
func wantWarnings(batches []Batch, last map[string]float64) []string {
	var out []string
	for _, b := range batches {
		for i, x := range b.Values {
			if x > last[b.Stream] {
				out = append(out, fmt.Sprintf("%s %d warning x=%g last=%g", b.Stream, b.Start+uint64(i), x, last[b.Stream]))
			}
			if x > 2 {
				out = append(out, fmt.Sprintf("%s %d drift", b.Stream, b.Start+uint64(i)))
			}
			last[b.Stream] = x
		}
	}
	return out
}

// The sdk's server answers with the signals a Streams detector raised,
// call after call, whatever their number, the same whether they are
// encoded as they are raised (DirectSignals) or made into Signals first, and
// whether the states give their figures as pairs or in maps.
func TestServerAnswersWithTheSignalsRaised(t *testing.T) {
	for _, direct := range []bool{false, true} {
		for _, maps := range []bool{false, true} {
			t.Run(fmt.Sprintf("direct=%v,maps=%v", direct, maps), func(t *testing.T) {
				d := newWarner()
				if maps {
					d.New = func() StreamDetector { return mapWarner{&warnerState{}} }
				}
				srv := &detectorServer{impl: d}
				if direct {
					srv.direct = &d.Streams
				}
				checkServerAnswers(t, srv)
			})
		}
	}
}

// mapWarner is warnerState giving its figures in maps.
type mapWarner struct{ s *warnerState }

func (m mapWarner) Update(x float64) (SignalType, map[string]float64) {
	panic("UpdateMulti is called instead")
}

func (m mapWarner) UpdateMulti(x float64, raise func(SignalType, map[string]float64)) {
	m.s.UpdatePairs(x, func(t SignalType, d []Detail) { raise(t, Signal{Pairs: d}.DetailsMap()) })
}

func checkServerAnswers(t *testing.T, srv *detectorServer) {
	t.Helper()
	last := map[string]float64{}
	start := map[string]uint64{}
	for call, shape := range [][2]int{{4096, 1}, {10, 2}, {4096, 2}, {0, 1}, {3000, 3}, {1, 1}, {5000, 1}} {
		n, streams := shape[0], shape[1]
		var batches []Batch
		for k := range streams {
			name := fmt.Sprintf("s%d", k)
			xs := make([]float64, n)
			for i := range xs {
				xs[i] = float64((i*7+call+k)%5) * 0.75 // rises and falls, above 2 at times
			}
			batches = append(batches, Batch{Stream: name, Start: start[name], Values: xs})
			start[name] += uint64(n)
		}
		want := wantWarnings(batches, last)
		w, err := srv.update(context.Background(), batches, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := w.ToProto()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range resp.GetSignals() {
			line := fmt.Sprintf("%s %d %s", s.GetStream(), s.GetIndex(), s.GetType())
			if s.GetType() == string(SignalWarning) {
				line += fmt.Sprintf(" x=%g last=%g", s.GetDetails()["x"], s.GetDetails()["last"])
			}
			got = append(got, line)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("call %d: answered %d signals %.300v, want %d %.300v", call, len(got), got, len(want), want)
		}
	}
}

// A caller in the process, such as a detector wrapping Streams' Update or
// a test, keeps the signals it got: later calls raise theirs elsewhere.
func TestStreamsSignalsOutliveLaterCalls(t *testing.T) {
	d := newWarner()
	first, err := d.Update(context.Background(), []Batch{{Stream: "s", Values: []float64{1, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(first)
	for range 8 {
		if _, err := d.Update(context.Background(), []Batch{{Stream: "s", Values: []float64{0, 1, 2, 3, 4}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(first); got != want {
		t.Errorf("the signals of a first call became %s, were %s", got, want)
	}
}

// mapState warns at every value, its figures in a map.
type mapState struct{}

func (mapState) Update(x float64) (SignalType, map[string]float64) {
	return SignalWarning, map[string]float64{"x": x}
}

// The room an answer makes for a batch's signals at once is sized from
// the batch's first signal, not from all the answer holds before it:
// signals of states that give their figures in maps, several batches, a
// Streams served directly or not.
func TestServerAnswerRoomOfManyBatches(t *testing.T) {
	for _, direct := range []bool{false, true} {
		d := &warner{}
		d.New = func() StreamDetector { return mapState{} }
		srv := &detectorServer{impl: d}
		if direct {
			srv.direct = &d.Streams
		}
		var batches []Batch
		for _, s := range []string{"s0", "s1", "s2", "s3"} {
			batches = append(batches, Batch{Stream: s, Values: make([]float64, 1000)})
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w, err := srv.update(context.Background(), batches, nil)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 16<<20 {
			t.Errorf("direct=%v: %d MB allocated for an answer of %d KB", direct, a>>20, w.Size()>>10)
		}
		w.Reset()
	}
}

// quiet is a warner whose own Update drops its Streams' warnings.
type quiet struct{ warner }

func (q *quiet) Update(ctx context.Context, batches []Batch) ([]Signal, error) {
	ss, err := q.warner.Update(ctx, batches)
	return slices.DeleteFunc(ss, func(s Signal) bool { return s.Type == SignalWarning }), err
}

// A detector that embeds one served directly, with an Update of its own,
// is served through that Update: direct encoding is given by the plugin's
// main (DirectSignals), not found on the type, which embedding changes.
func TestServerServesAnEmbeddingDetectorsOwnUpdate(t *testing.T) {
	q := &quiet{*newWarner()}
	set := pluginSet(q, serveOptions{})
	srv := &detectorServer{impl: q, direct: set[pluginwire.PluginName].(*grpcPlugin).opts.direct}
	w, err := srv.update(context.Background(), []Batch{{Stream: "s", Values: []float64{0, 3, 0, 3, 3}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.ToProto()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, sig := range resp.GetSignals() {
		types[sig.GetType()]++
	}
	if types[string(SignalWarning)] != 0 || types[string(SignalDrift)] != 3 {
		t.Errorf("answered %v, want 3 drifts and no warning: the detector's own Update drops them", types)
	}
}
