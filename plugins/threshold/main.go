package main

import "github.com/driftd/driftd/sdk"

func main() { sdk.Serve(&Threshold{}) }
