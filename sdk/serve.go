package sdk

// Plugin is what every plugin implements: its info, the schema of its config
// block, and Configure. A detector plugin is also a Detector.
type Plugin interface {
	Info() Info
	Schema() Schema
	Configure(cfg Config) error
}
