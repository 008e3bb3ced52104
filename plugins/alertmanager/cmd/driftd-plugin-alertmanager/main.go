// Command driftd-plugin-alertmanager is the Alertmanager sink as a driftd
// plugin.
package main

import (
	"github.com/driftd/driftd/plugins/alertmanager"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&alertmanager.Alertmanager{}) }
