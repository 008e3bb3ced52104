// Package e2e tests driftd end to end, with real parts only: the driftd and
// plugin binaries built from this module, the Unix socket, curl as a client
// and the plugin processes the agent starts.
//
// The tests build the binaries once, in TestMain. In -short mode (the
// unit-test mode of `make test-short`) nothing is built and every test is
// skipped.
package e2e

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testVersion is linked into the driftd binary under test.
const testVersion = "e2e-test"

// Set by TestMain.
var (
	moduleRoot string // the directory holding go.mod
	binDir     string // temp dir holding driftd
	driftdBin  string // binDir/driftd
	pluginDir  string // binDir/plugins, holding driftd-plugin-<name>
	plugins    []string
	curlBin    string
)

func TestMain(m *testing.M) {
	if socket := os.Getenv(probeEnv); socket != "" {
		os.Exit(probeSocket(socket)) // a client for TestSocketModeFromTheStart
	}
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.RemoveAll(binDir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

func setup() error {
	var err error
	if moduleRoot, err = findModuleRoot(); err != nil {
		return err
	}
	if binDir, err = os.MkdirTemp("", "driftd-e2e-bin"); err != nil {
		return err
	}
	driftdBin = filepath.Join(binDir, "driftd")
	pluginDir = filepath.Join(binDir, "plugins")
	if err := goBuild(driftdBin, "-ldflags", "-X github.com/driftd/driftd/core.Version="+testVersion, "./cmd/driftd"); err != nil {
		return err
	}
	mains, err := pluginMains()
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(mains)) {
		plugins = append(plugins, name)
		if err := goBuild(filepath.Join(pluginDir, "driftd-plugin-"+name), mains[name]); err != nil {
			return err
		}
	}
	if len(plugins) == 0 {
		return fmt.Errorf("no plugin main package under plugins/")
	}
	if curlBin, err = exec.LookPath("/usr/bin/curl"); err != nil {
		if curlBin, err = exec.LookPath("curl"); err != nil {
			return fmt.Errorf("the end-to-end tests need curl: %w", err)
		}
	}
	return nil
}

// pluginMains finds the main package of each plugin: plugins/<name> itself
// or a command below it, preferably .../driftd-plugin-<name>. It returns
// the package of each plugin name.
func pluginMains() (map[string]string, error) {
	cmd := exec.Command("go", "list", "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}", "./plugins/...")
	cmd.Dir = moduleRoot
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list ./plugins/...: %w", err)
	}
	const prefix = "github.com/driftd/driftd/plugins/"
	mains := map[string]string{}
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, prefix)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rel, "/")
		if prev, dup := mains[name]; !dup || path.Base(pkg) == "driftd-plugin-"+name && path.Base(prev) != "driftd-plugin-"+name {
			mains[name] = pkg
		}
	}
	return mains, nil
}

// goBuild runs `go build -o out args...` in the module root.
func goBuild(out string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %s: %v\n%s", out, strings.Join(args, " "), err, b)
	}
	return nil
}

// findModuleRoot walks up from the working directory to go.mod.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// requireE2E skips t in -short mode, the unit-test mode.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (builds and runs the real binaries): skipped in -short mode, which runs the unit tests only")
	}
}
