// Command hang is a detector plugin that stops answering on purpose: the
// first time it sees the value 0.123456 it sleeps forever in Update, unless
// the file named by its marker setting exists, which it creates; so a
// restarted process goes on. Without a marker, every process that sees the
// value sleeps forever. Otherwise it drifts on every value below its
// floor.
package main

import (
	"context"
	"os"
	"time"

	"github.com/driftd/driftd/sdk"
)

const magic = 0.123456

type hang struct {
	sdk.Streams
	floor  float64
	marker string
}

func (h *hang) Info() sdk.Info {
	return sdk.Info{Name: "hang", Kind: sdk.KindDetector, Version: "0.0.1"}
}

func (h *hang) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "floor", Type: sdk.TypeNumber, Default: 0.5},
		{Name: "marker", Type: sdk.TypeString, Default: ""},
	}}
}

func (h *hang) Configure(cfg sdk.Config) error {
	h.floor, h.marker = cfg.Number("floor"), cfg.String("marker")
	h.New = func() sdk.StreamDetector { return state{h.floor} }
	return nil
}

func (h *hang) Update(ctx context.Context, batches []sdk.Batch) ([]sdk.Signal, error) {
	for _, b := range batches {
		for _, v := range b.Values {
			if v != magic {
				continue
			}
			if h.marker == "" {
				hangForever()
			}
			if f, err := os.OpenFile(h.marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
				f.Close()
				hangForever()
			}
		}
	}
	return h.Streams.Update(ctx, batches)
}

func hangForever() {
	for {
		time.Sleep(time.Hour)
	}
}

type state struct{ floor float64 }

func (s state) Update(x float64) (sdk.SignalType, map[string]float64) {
	if x < s.floor {
		return sdk.SignalDrift, map[string]float64{"value": x}
	}
	return "", nil
}

func main() { sdk.Serve(&hang{}) }
