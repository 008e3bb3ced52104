// Command driftd-plugin-webhook is the webhook sink as a driftd plugin.
package main

import (
	"github.com/driftd/driftd/plugins/webhook"
	"github.com/driftd/driftd/sdk"
)

func main() { sdk.Serve(&webhook.Webhook{}) }
