// Command noisy is a detector plugin that misbehaves on purpose: it logs
// through the sdk and also prints to stdout, which a plugin must never rely
// on. It raises a drift for every value below its floor.
package main

import (
	"fmt"

	"github.com/driftd/driftd/sdk"
)

type noisy struct {
	sdk.Streams
	floor float64
}

func (n *noisy) Info() sdk.Info {
	return sdk.Info{Name: "noisy", Kind: sdk.KindDetector, Version: "0.0.1"}
}

func (n *noisy) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "floor", Type: sdk.TypeNumber, Default: 0.5}}}
}

func (n *noisy) Configure(cfg sdk.Config) error {
	n.floor = cfg.Number("floor")
	sdk.Logger().Info("noisy configured", "floor", n.floor)
	n.New = func() sdk.StreamDetector { return state{n.floor} }
	return nil
}

type state struct{ floor float64 }

func (s state) Update(x float64) (sdk.SignalType, map[string]float64) {
	fmt.Printf("stray stdout line for %v\n", x)
	if x < s.floor {
		return sdk.SignalDrift, map[string]float64{"value": x}
	}
	return "", nil
}

func main() { sdk.Serve(&noisy{}) }
