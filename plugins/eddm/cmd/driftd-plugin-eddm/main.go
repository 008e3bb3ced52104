// Command driftd-plugin-eddm is the eddm detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/eddm"
	"github.com/driftd/driftd/sdk"
)

func main() {
	// Served as itself, its Update is its Streams': their signals are
	// encoded as they are raised.
	d := &eddm.EDDM{}
	sdk.Serve(d, sdk.DirectSignals(&d.Streams))
}
