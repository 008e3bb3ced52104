// Command driftd-plugin-hddm_w is the hddm_w detector as a driftd plugin.
package main

import (
	hddmw "github.com/driftd/driftd/plugins/hddm_w"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&hddmw.HDDMW{}) }
