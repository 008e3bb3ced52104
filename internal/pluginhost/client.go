package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/proto"
)

// client is the daemon's end of a plugin connection. It is the plugin as an
// sdk.Detector, sdk.Resetter and sdk.Sink, so the daemon calls a plugin in a
// process of its own as it calls one inside its own process. Its info and
// schema are read once, when the connection is made.
type client struct {
	conn     grpc.ClientConnInterface
	plugin   proto.PluginClient
	detector proto.DetectorClient
	sink     proto.SinkClient
	info     sdk.Info
	schema   sdk.Schema

	// packed: the plugin takes the packed form of Update; omits: it takes
	// omit_details. Both set once, when the connection is made. ids are
	// its stream ids.
	packed, omits bool
	ids           streamIDs
}

var (
	_ sdk.Detector = (*client)(nil)
	_ sdk.Resetter = (*client)(nil)
	_ sdk.Sink     = (*client)(nil)
)

func newClient(c *grpc.ClientConn) *client {
	return &client{conn: c, plugin: proto.NewPluginClient(c), detector: proto.NewDetectorClient(c), sink: proto.NewSinkClient(c)}
}

// Info returns the plugin's info.
func (c *client) Info() sdk.Info { return c.info }

// Schema returns the schema of the plugin's config block.
func (c *client) Schema() sdk.Schema { return c.schema }

// Configure is sdk.Plugin's Configure, without a deadline; the daemon
// configures a plugin with Instance.Configure, which has one.
func (c *client) Configure(cfg sdk.Config) error {
	return c.configure(context.Background(), cfg)
}

// configure sends the config; the plugin applies the schema's defaults.
// The problems the plugin finds come back as *sdk.ConfigError values,
// joined.
func (c *client) configure(ctx context.Context, cfg sdk.Config) error {
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
		errs = append(errs, &sdk.ConfigError{Attribute: e.GetAttribute(), Message: e.GetMessage()})
	}
	return errors.Join(errs...)
}

// ping checks that the plugin answers, with a call as cheap as there is (its
// info).
func (c *client) ping(ctx context.Context) error {
	_, err := c.plugin.Info(ctx, &proto.Empty{})
	return fromStatus("info", err)
}

// hello reads the plugin's info, the wire features it speaks, which decide
// the form of the calls to come, and its schema.
func (c *client) hello(ctx context.Context) error {
	p, err := c.plugin.Info(ctx, &proto.Empty{})
	if err != nil {
		return fromStatus("info", err)
	}
	c.packed = slices.Contains(p.GetFeatures(), pluginwire.FeaturePackedUpdate)
	c.omits = slices.Contains(p.GetFeatures(), pluginwire.FeatureOmitDetails)
	c.info = infoFromProto(p)
	s, err := c.plugin.Schema(ctx, &proto.Empty{})
	if err != nil {
		return fromStatus("schema", err)
	}
	c.schema = schemaFromProto(s)
	if err := c.schema.Validate(); err != nil {
		return fmt.Errorf("plugin declares an invalid schema: %w", err)
	}
	return nil
}

// Update feeds batches to a detector plugin.
func (c *client) Update(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	if c.packed {
		return c.updatePacked(ctx, batches)
	}
	resp, err := c.detector.Update(ctx, &proto.UpdateRequest{Batches: batchesToProto(batches)})
	if err != nil {
		return nil, fromStatus("update", err)
	}
	return signalsFromProto(resp.GetSignals()), nil
}

// updatePacked sends batches in the packed form. gRPC is done with the
// request when the call returns, so its buffers serve the next call.
func (c *client) updatePacked(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	p := packers.Get().(*packer)
	defer p.release()
	req := c.ids.pack(p, batches)
	resp, err := c.detector.Update(ctx, req)
	if err != nil {
		return nil, fromStatus("update", err)
	}
	c.ids.sent(req)
	return signalsFromProto(resp.GetSignals()), nil
}

// Answer is an Update answer whose signals keep their details as pairs,
// not maps: cheaper for a detector that raises a signal at many values.
type Answer = pluginwire.Answer

// Signal is a signal of an Answer.
type Signal = pluginwire.Signal

// Detail is one of a signal's details in an Answer.
type Detail = pluginwire.Detail

// Slack decides when memory kept from call to call for signals goes.
type Slack = pluginwire.Slack

// AnswerUpdater is a detector whose Update answer can be decoded into an
// Answer: a plugin in a process of its own.
type AnswerUpdater interface {
	// UpdateInto is Update with the signals decoded into a, which it
	// empties first and whose slices it reuses. A plugin that takes it
	// leaves out the details of the types in a.OmitDetails.
	UpdateInto(ctx context.Context, batches []sdk.Batch, a *Answer) error
}

var _ AnswerUpdater = (*client)(nil)

// UpdateInto feeds batches to a detector plugin, as Update, and decodes
// the signals into a.
func (c *client) UpdateInto(ctx context.Context, batches []sdk.Batch, a *Answer) error {
	a.Reset()
	var omit []string // the types a's caller does without, to a plugin that takes them
	if c.omits {
		omit = a.OmitDetails
	}
	if !c.packed {
		err := c.conn.Invoke(ctx, proto.Detector_Update_FullMethodName, &proto.UpdateRequest{Batches: batchesToProto(batches), OmitDetails: omit}, a)
		return fromStatus("update", err)
	}
	p := packers.Get().(*packer)
	defer p.release()
	req := c.ids.pack(p, batches)
	req.OmitDetails = omit
	if err := c.conn.Invoke(ctx, proto.Detector_Update_FullMethodName, req, a); err != nil {
		return fromStatus("update", err)
	}
	c.ids.sent(req)
	return nil
}

// Reset makes a detector plugin forget a stream.
func (c *client) Reset(ctx context.Context, stream string) error {
	_, err := c.detector.Reset(ctx, &proto.ResetRequest{Stream: stream})
	return fromStatus("reset", err)
}

// Deliver hands a job to a sink plugin. A failure the sink reports is a
// *sdk.DeliveryError; a plugin that is gone fails with ErrPluginUnavailable,
// one that does not answer in time with context.DeadlineExceeded.
func (c *client) Deliver(ctx context.Context, job sdk.Job) error {
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
	return &sdk.DeliveryError{
		Message:    msg,
		Permanent:  resp.GetPermanent(),
		RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
	}
}

// grpcPlugin is the go-plugin glue of the daemon's end: it builds the
// client. The plugin's end has its own (package sdk).
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

var _ plugin.GRPCPlugin = grpcPlugin{}

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the daemon's end of a connection serves nothing")
}

func (grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return newClient(c), nil
}

var clientPlugins = plugin.PluginSet{pluginwire.PluginName: grpcPlugin{}}

// dial dispenses the client of a started go-plugin connection and reads the
// plugin's info and schema.
func dial(ctx context.Context, pc *plugin.Client) (*client, error) {
	rpc, err := pc.Client()
	if err != nil {
		return nil, err
	}
	raw, err := rpc.Dispense(pluginwire.PluginName)
	if err != nil {
		return nil, err
	}
	c, ok := raw.(*client)
	if !ok {
		return nil, fmt.Errorf("unexpected plugin client %T", raw)
	}
	if err := c.hello(ctx); err != nil {
		return nil, err
	}
	return c, nil
}
