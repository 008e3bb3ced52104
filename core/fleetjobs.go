package core

import "github.com/driftd/driftd/core/fleet/workq"

// In fleet mode, retrain jobs queue in the fleet's JetStream work queue.
var _ JobQueue = (*workq.Queue)(nil)
