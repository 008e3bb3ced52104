package sdk

import (
	"fmt"
	"time"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk/proto"
)

// Conversions between the sdk's Go types and their protobuf messages, in
// the directions the plugin's end needs. The daemon's end has the others
// (internal/pluginhost).

func infoToProto(i Info) *proto.PluginInfo {
	return &proto.PluginInfo{Name: i.Name, Kind: string(i.Kind), Version: i.Version, Description: i.Description, Domain: string(i.Domain)}
}

func schemaToProto(s Schema) (*proto.ConfigSchema, error) {
	out := &proto.ConfigSchema{}
	for _, a := range s.Attributes {
		pa := &proto.Attribute{Name: a.Name, Type: string(a.Type), Required: a.Required, Description: a.Description}
		if a.Default != nil {
			v, err := pluginwire.ValueToProto(a.Default)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
			}
			pa.Default = v
		}
		out.Attributes = append(out.Attributes, pa)
	}
	return out, nil
}

func configFromProto(m map[string]*proto.Value) Config {
	out := make(Config, len(m))
	for k, v := range m {
		out[k] = pluginwire.ValueFromProto(v)
	}
	return out
}

func batchesFromProto(ps []*proto.Batch) []Batch {
	out := make([]Batch, len(ps))
	for i, p := range ps {
		out[i] = Batch{Stream: p.GetStream(), Start: p.GetStart(), Values: p.GetValues()}
	}
	return out
}

// writeSignals encodes signals into w: figures given as pairs as they
// are, those of a map through one array reused from signal to signal.
func writeSignals(w *pluginwire.AnswerWriter, ss []Signal) {
	var pairs []Detail
	for i := range ss {
		s := &ss[i]
		d := s.Pairs
		if s.Details != nil {
			pairs = pairs[:0]
			for k, v := range s.Details {
				pairs = append(pairs, Detail{Key: k, Value: v})
			}
			d = pairs
		}
		before := 0
		if i == 0 {
			before = w.Size() // w may hold signals written before ss
		}
		w.Add(s.Stream, s.Index, string(s.Type), d)
		if i == 0 {
			// The signals of a call are alike, as a rule: room for
			// all of them at once, not grown and copied by degrees;
			// but the first may be far larger than the rest (a drift
			// of many figures before warnings of few).
			w.Reserve(min((len(ss)-1)*(w.Size()-before), maxReserve))
		}
	}
}

func jobFromProto(p *proto.Job) Job {
	e := p.GetEvent()
	return Job{
		ID: p.GetId(), Kind: JobKind(p.GetKind()), Model: p.GetModel(), Version: p.GetVersion(),
		Metric: p.GetMetric(), Detector: p.GetDetector(), Monitor: p.GetMonitor(), Sink: p.GetSink(),
		Created: fromUnixNano(p.GetCreatedUnixNano()), Attempt: int(p.GetAttempt()), Resolves: p.GetResolves(),
		Event: Event{
			Seq: e.GetSeq(), Type: e.GetType(), Time: fromUnixNano(e.GetTimeUnixNano()),
			Index: e.GetIndex(), WindowSize: int(e.GetWindowSize()),
			WindowMean: e.GetWindowMean(), Details: e.GetDetails(),
		},
	}
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// maxReserve bounds the room writeSignals makes at once from its first
// signal; an answer larger still grows as it is written.
const maxReserve = 4 << 20
