package sdk

import (
	"fmt"
	"time"

	"github.com/driftd/driftd/sdk/proto"
)

// Conversions between the sdk's Go types and their protobuf messages.

func infoToProto(i Info) *proto.PluginInfo {
	return &proto.PluginInfo{Name: i.Name, Kind: string(i.Kind), Version: i.Version, Description: i.Description, Domain: string(i.Domain)}
}

func infoFromProto(p *proto.PluginInfo) Info {
	return Info{Name: p.GetName(), Kind: Kind(p.GetKind()), Version: p.GetVersion(), Description: p.GetDescription(), Domain: Domain(p.GetDomain())}
}

func valueToProto(v any) (*proto.Value, error) {
	switch x := v.(type) {
	case float64:
		return &proto.Value{Kind: &proto.Value_Number{Number: x}}, nil
	case int:
		return &proto.Value{Kind: &proto.Value_Number{Number: float64(x)}}, nil
	case string:
		return &proto.Value{Kind: &proto.Value_String_{String_: x}}, nil
	case bool:
		return &proto.Value{Kind: &proto.Value_Bool{Bool: x}}, nil
	case map[string]string:
		return &proto.Value{Kind: &proto.Value_StringMap{StringMap: &proto.StringMap{Entries: x}}}, nil
	}
	return nil, fmt.Errorf("unsupported config value of type %T", v)
}

func valueFromProto(p *proto.Value) any {
	switch x := p.GetKind().(type) {
	case *proto.Value_Number:
		return x.Number
	case *proto.Value_String_:
		return x.String_
	case *proto.Value_Bool:
		return x.Bool
	case *proto.Value_StringMap:
		m := x.StringMap.GetEntries()
		if m == nil {
			m = map[string]string{}
		}
		return m
	}
	return nil
}

func schemaToProto(s Schema) (*proto.ConfigSchema, error) {
	out := &proto.ConfigSchema{}
	for _, a := range s.Attributes {
		pa := &proto.Attribute{Name: a.Name, Type: string(a.Type), Required: a.Required, Description: a.Description}
		if a.Default != nil {
			v, err := valueToProto(a.Default)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
			}
			pa.Default = v
		}
		out.Attributes = append(out.Attributes, pa)
	}
	return out, nil
}

func schemaFromProto(p *proto.ConfigSchema) Schema {
	var s Schema
	for _, a := range p.GetAttributes() {
		attr := Attribute{Name: a.GetName(), Type: Type(a.GetType()), Required: a.GetRequired(), Description: a.GetDescription()}
		if a.GetDefault() != nil {
			attr.Default = valueFromProto(a.GetDefault())
		}
		s.Attributes = append(s.Attributes, attr)
	}
	return s
}

func configToProto(c Config) (map[string]*proto.Value, error) {
	out := make(map[string]*proto.Value, len(c))
	for k, v := range c {
		pv, err := valueToProto(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = pv
	}
	return out, nil
}

func configFromProto(m map[string]*proto.Value) Config {
	out := make(Config, len(m))
	for k, v := range m {
		out[k] = valueFromProto(v)
	}
	return out
}

func batchesToProto(bs []Batch) []*proto.Batch {
	out := make([]*proto.Batch, len(bs))
	for i, b := range bs {
		out[i] = &proto.Batch{Stream: b.Stream, Start: b.Start, Values: b.Values}
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

func signalsToProto(ss []Signal) []*proto.Signal {
	out := make([]*proto.Signal, len(ss))
	for i, s := range ss {
		out[i] = &proto.Signal{Stream: s.Stream, Index: s.Index, Type: string(s.Type), Details: s.Details}
	}
	return out
}

func signalsFromProto(ps []*proto.Signal) []Signal {
	if len(ps) == 0 {
		return nil
	}
	out := make([]Signal, len(ps))
	for i, p := range ps {
		out[i] = Signal{Stream: p.GetStream(), Index: p.GetIndex(), Type: SignalType(p.GetType()), Details: p.GetDetails()}
	}
	return out
}

func jobToProto(j Job) *proto.Job {
	return &proto.Job{
		Id: j.ID, Kind: string(j.Kind), Model: j.Model, Version: j.Version,
		Metric: j.Metric, Detector: j.Detector, Monitor: j.Monitor, Sink: j.Sink,
		CreatedUnixNano: unixNano(j.Created), Attempt: uint32(j.Attempt), Resolves: j.Resolves,
		Event: &proto.Event{
			Seq: j.Event.Seq, Type: j.Event.Type, TimeUnixNano: unixNano(j.Event.Time),
			Index: j.Event.Index, WindowSize: uint64(j.Event.WindowSize),
			WindowMean: j.Event.WindowMean, Details: j.Event.Details,
		},
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

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
