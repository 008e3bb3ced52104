package sdk

import (
	"context"
	"fmt"
	"testing"
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
// encoded as they are raised (Direct) or made into Signals first, and
// whether the states give their figures as pairs or in maps.
func TestServerAnswersWithTheSignalsRaised(t *testing.T) {
	for _, direct := range []bool{false, true} {
		for _, maps := range []bool{false, true} {
			t.Run(fmt.Sprintf("direct=%v,maps=%v", direct, maps), func(t *testing.T) {
				d := newWarner()
				d.Direct = direct
				if maps {
					d.New = func() StreamDetector { return mapWarner{&warnerState{}} }
				}
				checkServerAnswers(t, &detectorServer{impl: d})
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
		w, err := srv.update(context.Background(), batches)
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
