package sdk

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/driftd/driftd/sdk/proto"
)

// client is the daemon side of a plugin connection. Its methods mirror the
// Plugin and Detector contracts with a context and errors added.
type client struct {
	plugin   proto.PluginClient
	detector proto.DetectorClient
	sink     proto.SinkClient

	// packed: the plugin takes the packed form of Update; set once, when
	// the connection is made. ids are its stream ids.
	packed bool
	ids    streamIDs
}

func newClient(c *grpc.ClientConn) *client {
	return &client{plugin: proto.NewPluginClient(c), detector: proto.NewDetectorClient(c), sink: proto.NewSinkClient(c)}
}

func (c *client) info(ctx context.Context) (Info, error) {
	p, err := c.plugin.Info(ctx, &proto.Empty{})
	if err != nil {
		return Info{}, fromStatus("info", err)
	}
	return infoFromProto(p), nil
}

// hello reads the plugin's info and the wire features it speaks, which
// decide the form of the calls to come.
func (c *client) hello(ctx context.Context) (Info, error) {
	p, err := c.plugin.Info(ctx, &proto.Empty{})
	if err != nil {
		return Info{}, fromStatus("info", err)
	}
	c.packed = slices.Contains(p.GetFeatures(), featurePackedUpdate)
	return infoFromProto(p), nil
}

func (c *client) schema(ctx context.Context) (Schema, error) {
	p, err := c.plugin.Schema(ctx, &proto.Empty{})
	if err != nil {
		return Schema{}, fromStatus("schema", err)
	}
	return schemaFromProto(p), nil
}

func (c *client) configure(ctx context.Context, cfg Config) error {
	pc, err := configToProto(cfg)
	if err != nil {
		return err
	}
	resp, err := c.plugin.Configure(ctx, &proto.ConfigureRequest{Config: pc})
	if err != nil {
		return fromStatus("configure", err)
	}
	var errs []error
	for _, e := range resp.GetErrors() {
		errs = append(errs, &ConfigError{Attribute: e.GetAttribute(), Message: e.GetMessage()})
	}
	return errors.Join(errs...)
}

func (c *client) update(ctx context.Context, batches []Batch, ids []uint32) ([]Signal, error) {
	if c.packed {
		return c.updatePacked(ctx, batches, ids)
	}
	resp, err := c.detector.Update(ctx, &proto.UpdateRequest{Batches: batchesToProto(batches)})
	if err != nil {
		return nil, fromStatus("update", err)
	}
	return signalsFromProto(resp.GetSignals()), nil
}

// updatePacked sends batches in the packed form. gRPC is done with the
// request when the call returns, so its buffers serve the next call.
func (c *client) updatePacked(ctx context.Context, batches []Batch, ids []uint32) ([]Signal, error) {
	p := packers.Get().(*packer)
	defer p.release()
	req := c.ids.pack(p, batches, ids)
	resp, err := c.detector.Update(ctx, req)
	if err != nil {
		return nil, fromStatus("update", err)
	}
	c.ids.sent(req)
	return signalsFromProto(resp.GetSignals()), nil
}

func (c *client) reset(ctx context.Context, stream string) error {
	_, err := c.detector.Reset(ctx, &proto.ResetRequest{Stream: stream})
	return fromStatus("reset", err)
}

func (c *client) deliver(ctx context.Context, job Job) error {
	resp, err := c.sink.Deliver(ctx, &proto.DeliverRequest{Job: jobToProto(job)})
	if err != nil {
		return fromStatus("deliver", err)
	}
	if resp.GetError() == "" && !resp.GetPermanent() && resp.GetRetryAfterMs() == 0 {
		return nil
	}
	msg := resp.GetError()
	if msg == "" {
		msg = "delivery failed; the sink gave no reason"
	}
	return &DeliveryError{
		Message:    msg,
		Permanent:  resp.GetPermanent(),
		RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
	}
}
