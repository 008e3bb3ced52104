// Command driftd-plugin-fhddm is the fhddm detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/fhddm"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&fhddm.FHDDM{}) }
