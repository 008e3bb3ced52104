// Command driftd-plugin-adwin is the adwin detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/adwin"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&adwin.ADWIN{}) }
