package pluginhost

import (
	"fmt"
	"time"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/proto"
)

// Conversions between the sdk's Go types and their protobuf messages, in
// the directions the daemon's end needs. The plugin's end has the others
// (package sdk).

func infoFromProto(p *proto.PluginInfo) sdk.Info {
	return sdk.Info{Name: p.GetName(), Kind: sdk.Kind(p.GetKind()), Version: p.GetVersion(), Description: p.GetDescription(), Domain: sdk.Domain(p.GetDomain())}
}

func schemaFromProto(p *proto.ConfigSchema) sdk.Schema {
	var s sdk.Schema
	for _, a := range p.GetAttributes() {
		attr := sdk.Attribute{Name: a.GetName(), Type: sdk.Type(a.GetType()), Required: a.GetRequired(), Description: a.GetDescription()}
		if a.GetDefault() != nil {
			attr.Default = pluginwire.ValueFromProto(a.GetDefault())
		}
		s.Attributes = append(s.Attributes, attr)
	}
	return s
}

func configToProto(c sdk.Config) (map[string]*proto.Value, error) {
	out := make(map[string]*proto.Value, len(c))
	for k, v := range c {
		pv, err := pluginwire.ValueToProto(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = pv
	}
	return out, nil
}

func batchesToProto(bs []sdk.Batch) []*proto.Batch {
	out := make([]*proto.Batch, len(bs))
	for i, b := range bs {
		out[i] = &proto.Batch{Stream: b.Stream, Start: b.Start, Values: b.Values}
	}
	return out
}

func signalsFromProto(ps []*proto.Signal) []sdk.Signal {
	if len(ps) == 0 {
		return nil
	}
	out := make([]sdk.Signal, len(ps))
	for i, p := range ps {
		out[i] = sdk.Signal{Stream: p.GetStream(), Index: p.GetIndex(), Type: sdk.SignalType(p.GetType()), Details: p.GetDetails()}
	}
	return out
}

func jobToProto(j sdk.Job) *proto.Job {
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

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
