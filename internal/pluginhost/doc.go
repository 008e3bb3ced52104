// Package pluginhost is the daemon's end of its plugins: it starts a plugin
// binary (Start) or attaches to one in debug mode, checks its sha256, runs
// it in a process group of its own and kills what it leaves behind
// (KillStrays), and talks to it over go-plugin's gRPC. An Instance is a
// plugin the daemon uses, in a process of its own or inside the daemon
// (Internal); its Detector and Sink are sdk.Detector and sdk.Sink either
// way, so the core speaks only the sdk's Go types.
//
// The plugin's end is package sdk; what both ends share is
// internal/pluginwire.
package pluginhost
