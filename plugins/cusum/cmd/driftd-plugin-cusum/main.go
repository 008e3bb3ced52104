// Command driftd-plugin-cusum is the cusum detector as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/cusum"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&cusum.CUSUM{}) }
