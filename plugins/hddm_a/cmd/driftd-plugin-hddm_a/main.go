// Command driftd-plugin-hddm_a is the hddm_a detector as a driftd plugin.
package main

import (
	hddma "github.com/driftd/driftd/plugins/hddm_a"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&hddma.HDDMA{}) }
