// Command driftd-plugin-threshold is the threshold detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/threshold"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&threshold.Threshold{}) }
