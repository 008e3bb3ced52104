// Package sdk is everything a driftd plugin author imports: the detector
// and sink contracts, config schemas, and Serve, which runs a plugin over
// hashicorp/go-plugin's gRPC transport. How the daemon starts plugins and
// talks to them is its own business, not part of this package.
//
// A complete detector plugin that raises a drift when a value exceeds a
// limit. The binary must be called driftd-plugin-<name> and live in the
// daemon's plugin_dir:
//
//	package main
//
//	import "github.com/driftd/driftd/sdk"
//
//	type Above struct {
//		sdk.Streams // one state per stream; Update and Reset come with it
//		limit float64
//	}
//
//	func (a *Above) Info() sdk.Info {
//		return sdk.Info{Name: "above", Kind: sdk.KindDetector, Version: "1.0.0"}
//	}
//
//	func (a *Above) Schema() sdk.Schema {
//		return sdk.Schema{Attributes: []sdk.Attribute{
//			{Name: "limit", Type: sdk.TypeNumber, Default: 1.0, Description: "drift above this value"},
//		}}
//	}
//
//	func (a *Above) Configure(cfg sdk.Config) error {
//		a.limit = cfg.Number("limit")
//		a.New = func() sdk.StreamDetector { return &aboveState{limit: a.limit} }
//		return nil
//	}
//
//	type aboveState struct{ limit float64 }
//
//	func (s *aboveState) Update(x float64) (sdk.SignalType, map[string]float64) {
//		if x > s.limit {
//			return sdk.SignalDrift, map[string]float64{"value": x, "limit": s.limit}
//		}
//		return "", nil
//	}
//
//	func main() { sdk.Serve(&Above{}) }
//
// Its config block in the daemon's HCL file:
//
//	detector "above" "latency_spike" {
//	  metric = "latency_ms"
//	  config { limit = 250 }
//	}
//
// A sink plugin implements Sink instead: Deliver gets retrain jobs, each
// with a stable Job.ID to pass on as an idempotency key. It returns nil once
// the job is delivered, Permanent(err) when retrying cannot help, and any
// other error to have the daemon retry with backoff:
//
//	func (s *Drop) Deliver(ctx context.Context, job sdk.Job) error {
//		if err := s.queue.Put(ctx, job.ID, job); err != nil {
//			return err // retried
//		}
//		return nil
//	}
//
// Test either kind over real gRPC with package sdktest (Detector, Sink).
package sdk
