// Command driftd-plugin-zscore is the zscore detector as a driftd plugin.
// Build it into the daemon's plugin_dir:
//
//	go build -o /path/to/plugin_dir/driftd-plugin-zscore ./cmd/driftd-plugin-zscore
package main

import (
	"github.com/driftd/driftd/examples/plugins/zscore"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&zscore.ZScore{}) }
