package config

import "path"

// Matches reports whether the monitor watches the given model version: its
// pattern matches the model and one of its version globs the version.
func (m *Monitor) Matches(model, version string) bool {
	if ok, _ := path.Match(m.Pattern, model); !ok {
		return false
	}
	for _, v := range m.Versions {
		if ok, _ := path.Match(v, version); ok {
			return true
		}
	}
	return false
}

// specificity ranks a monitor's pattern: an exact model name (0) beats a
// glob (1), and a glob beats the catch-all "*" (2).
func (m *Monitor) specificity() int {
	switch {
	case m.Pattern == "*":
		return 2
	case isGlob(m.Pattern):
		return 1
	}
	return 0
}

// MonitorFor returns the monitor for a model version, or nil when none
// matches. The most specific match wins: an exact model name beats a glob,
// a glob beats "*"; among globs, the first in the file.
func (f *File) MonitorFor(model, version string) *Monitor {
	var best *Monitor
	for _, m := range f.Monitors {
		if !m.Matches(model, version) {
			continue
		}
		if best == nil || m.specificity() < best.specificity() {
			best = m
		}
	}
	return best
}
