// Command driftd-plugin-pagehinkley is the pagehinkley detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/pagehinkley"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&pagehinkley.PageHinkley{}) }
