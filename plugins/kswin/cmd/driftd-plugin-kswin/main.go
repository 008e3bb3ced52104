// Command driftd-plugin-kswin is the kswin detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/kswin"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&kswin.KSWIN{}) }
