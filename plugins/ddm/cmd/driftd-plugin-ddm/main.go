// Command driftd-plugin-ddm is the ddm detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/ddm"
	"github.com/driftd/driftd/sdk"
)

func main() {
	// Served as itself, its Update is its Streams': their signals are
	// encoded as they are raised.
	d := &ddm.DDM{}
	sdk.Serve(d, sdk.DirectSignals(&d.Streams))
}
