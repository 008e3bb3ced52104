package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk/proto"
)

// pluginServer serves the Plugin service on top of a Plugin implementation.
type pluginServer struct {
	proto.UnimplementedPluginServer
	impl Plugin

	mu         sync.Mutex
	configured bool
}

func (s *pluginServer) Info(context.Context, *proto.Empty) (*proto.PluginInfo, error) {
	p := infoToProto(s.impl.Info())
	if _, ok := s.impl.(Detector); ok {
		p.Features = sdkFeatures
	}
	return p, nil
}

func (s *pluginServer) Schema(context.Context, *proto.Empty) (*proto.ConfigSchema, error) {
	ps, err := schemaToProto(s.impl.Schema())
	return ps, toStatus(err)
}

// Configure checks the config against the schema, fills in the defaults and
// hands it to the implementation. Problems with the config travel in the
// response, not as a gRPC error, so the daemon can place each one.
func (s *pluginServer) Configure(_ context.Context, req *proto.ConfigureRequest) (*proto.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.configured {
		return nil, toStatus(errors.New("configure: plugin is already configured"))
	}
	// The plugin checks the values the schema let through even when others
	// were refused, so one answer lists every problem. A refused config
	// leaves the plugin unconfigured.
	cfg, schemaErr := s.impl.Schema().Apply(configFromProto(req.GetConfig()))
	err := s.impl.Configure(cfg)
	if schemaErr != nil || err != nil {
		resp := &proto.ConfigureResponse{}
		refused := map[string]bool{}
		for _, ce := range ConfigErrors(schemaErr) {
			refused[ce.Attribute] = true
			resp.Errors = append(resp.Errors, &proto.ConfigError{Attribute: ce.Attribute, Message: ce.Message})
		}
		for _, ce := range ConfigErrors(err) {
			if !refused[ce.Attribute] || ce.Attribute == "" {
				resp.Errors = append(resp.Errors, &proto.ConfigError{Attribute: ce.Attribute, Message: ce.Message})
			}
		}
		return resp, nil
	}
	s.configured = true
	return &proto.ConfigureResponse{}, nil
}

// detectorServer serves the Detector service.
type detectorServer struct {
	proto.UnimplementedDetectorServer
	impl Detector
	keys streamKeys // the stream ids of packed calls
	// direct, when set, is impl's Streams, which encodes its signals
	// into the answer as they are raised (DirectSignals).
	direct *Streams
}

// Update is the Detector service's Update as proto declares it. The sdk
// serves the service with detectorService, whose Update answers with
// updateAnswer's Answer, encoded straight from the signals.
func (s *detectorServer) Update(ctx context.Context, req *proto.UpdateRequest) (*proto.UpdateResponse, error) {
	w, err := s.updateAnswer(ctx, req)
	if err != nil {
		return nil, err
	}
	resp, err := w.ToProto()
	return resp, toStatus(err)
}

// updateAnswer feeds the request's batches to the detector and returns
// the signals they raised, encoded.
func (s *detectorServer) updateAnswer(ctx context.Context, req *proto.UpdateRequest) (*pluginwire.AnswerWriter, error) {
	if len(req.GetHeads()) == 0 && len(req.GetStreams()) == 0 && len(req.GetValues()) == 0 {
		return s.update(ctx, batchesFromProto(req.GetBatches()), req.GetOmitDetails())
	}
	if len(req.GetBatches()) > 0 {
		return nil, toStatus(fmt.Errorf("update: batches in both forms: %w", ErrBadRequest))
	}
	buf := batchBufs.Get().(*[]Batch)
	defer func() {
		clear(*buf)
		*buf = (*buf)[:0]
		batchBufs.Put(buf)
		pluginwire.ReleasePacked(req) // the batches' values were cut from it
	}()
	batches, err := s.keys.unpack(req, (*buf)[:0])
	*buf = batches
	if err != nil {
		return nil, toStatus(err)
	}
	return s.update(ctx, batches, req.GetOmitDetails())
}

// update feeds batches to the detector and returns the signals they
// raised, encoded without the details of the types in omit.
func (s *detectorServer) update(ctx context.Context, batches []Batch, omit []string) (*pluginwire.AnswerWriter, error) {
	w := new(pluginwire.AnswerWriter)
	w.OmitDetails(omit)
	if s.direct != nil {
		if err := s.direct.updateInto(ctx, batches, w); err != nil {
			w.Reset()
			return nil, toStatus(ownError(ctx, err))
		}
		return w, nil
	}
	signals, err := s.impl.Update(ctx, batches)
	if err != nil {
		return nil, toStatus(ownError(ctx, err))
	}
	writeSignals(w, signals)
	return w, nil
}

// detectorService is the Detector service as the sdk serves it: proto's,
// but that Update answers with a *pluginwire.AnswerWriter, the
// UpdateResponse of its signals encoded straight from their figures, with
// no message nor map per signal, which the plugin connection's codec hands
// to gRPC as it is.
var detectorService = grpc.ServiceDesc{
	ServiceName: "driftd.plugin.v1.Detector",
	HandlerType: (*proto.DetectorServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Update", Handler: updateHandler},
		{MethodName: "Reset", Handler: resetHandler},
	},
	Streams:  []grpc.StreamDesc{},
	Metadata: "plugin.proto",
}

func updateHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(proto.UpdateRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*detectorServer)
	handler := func(ctx context.Context, req any) (any, error) {
		a, err := s.updateAnswer(ctx, req.(*proto.UpdateRequest))
		if err != nil {
			return nil, err
		}
		return a, nil
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: proto.Detector_Update_FullMethodName}, handler)
}

func resetHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(proto.ResetRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*detectorServer)
	handler := func(ctx context.Context, req any) (any, error) {
		return s.Reset(ctx, req.(*proto.ResetRequest))
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: proto.Detector_Reset_FullMethodName}, handler)
}

func (s *detectorServer) Reset(ctx context.Context, req *proto.ResetRequest) (*proto.Empty, error) {
	r, ok := s.impl.(Resetter)
	if !ok {
		return nil, toStatus(errors.New("reset: detector cannot reset a stream"))
	}
	return &proto.Empty{}, toStatus(r.Reset(ctx, req.GetStream()))
}

// ownError keeps a context error that the plugin ran into on its own (a
// deadline of its own making, say) from passing for the daemon's: the
// daemon takes a deadline error as a plugin that hung, and restarts it.
func ownError(ctx context.Context, err error) error {
	if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return fmt.Errorf("plugin error: %s", err.Error())
	}
	return err
}

// sinkServer serves the Sink service. A failed delivery is an answer, not a
// gRPC error, so the daemon can tell a receiver that said no from a plugin
// that broke.
type sinkServer struct {
	proto.UnimplementedSinkServer
	impl Sink
}

func (s *sinkServer) Deliver(ctx context.Context, req *proto.DeliverRequest) (*proto.DeliverResponse, error) {
	job := jobFromProto(req.GetJob())
	if err := checkJob(job); err != nil {
		return nil, toStatus(err)
	}
	err := s.impl.Deliver(ctx, job)
	if err == nil {
		return &proto.DeliverResponse{}, nil
	}
	if ctx.Err() != nil {
		// The daemon gave up on the call; it counts that as a hang.
		return nil, toStatus(ctx.Err())
	}
	de := asDelivery(err)
	if de.Message == "" {
		de.Message = "delivery failed; the sink gave no reason"
	}
	return &proto.DeliverResponse{Error: de.Message, Permanent: de.Permanent, RetryAfterMs: de.RetryAfter.Milliseconds()}, nil
}
