// Command driftd-plugin-ddm is the ddm detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/ddm"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&ddm.DDM{}) }
