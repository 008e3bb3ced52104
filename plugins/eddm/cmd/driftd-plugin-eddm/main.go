// Command driftd-plugin-eddm is the eddm detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/eddm"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&eddm.EDDM{}) }
