package e2e

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The systemd unit passes systemd's own check: every key known, every
// value parsed, the daemon's path executable.
func TestSystemdUnitVerifies(t *testing.T) {
	requireE2E(t)
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("the systemd unit's test needs systemd-analyze (Debian package systemd): %v", err)
	}
	unit := readRepoFile(t, "deploy/systemd/driftd.service")
	for _, want := range []string{"Type=notify\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "ExecStart=/usr/local/bin/driftd agent -config /etc/driftd/driftd.hcl\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit has no line %q", strings.TrimSpace(want))
		}
	}
	// As installed: the daemon's path is the one make install puts it at;
	// here, the binary under test.
	path := writeFile(t, filepath.Join(tempDir(t), "driftd.service"),
		[]byte(strings.ReplaceAll(unit, "/usr/local/bin/driftd", driftdBin)))
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", path).CombinedOutput()
	// systemd-analyze exits 0 on unknown keys and unparsable values; it
	// only says so.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}

// Under a unit of Type=notify, the agent sends READY=1 once GET /readyz
// answers 200, and STOPPING=1 when it stops; its plugins do not inherit
// $NOTIFY_SOCKET.
func TestAgentNotifiesSystemd(t *testing.T) {
	requireE2E(t)
	dir := tempDir(t)
	notifyPath := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", notifyPath)
	socket := filepath.Join(dir, "driftd.sock")
	cfg := writeConfig(t, dir, socket, "", `
detector "threshold" "floor" {
  metric = "accuracy"
  config { floor = 0.5 }
}
monitor "*" { detectors = ["threshold.floor"] }
`)
	a := launchAgent(t, dir, cfg, socket)
	read := func(want string) {
		t.Helper()
		buf := make([]byte, 256)
		_ = nc.SetReadDeadline(time.Now().Add(readyTimeout))
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s on NOTIFY_SOCKET: %v", want, err)
		}
		if got := string(buf[:n]); got != want {
			t.Fatalf("NOTIFY_SOCKET got %q, want %q", got, want)
		}
	}
	read("READY=1")
	if code, body := a.get(t, "/readyz"); code != 200 {
		t.Fatalf("GET /readyz right after READY=1: %d %s", code, body)
	}
	// The plugin's environment, read from /proc.
	st := a.status(t)
	if len(st.Plugins) == 0 {
		t.Fatal("status lists no plugin")
	}
	for _, p := range st.Plugins {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/environ")
		if err != nil {
			t.Fatalf("detector %s pid %d: %v", p.Detector, p.Pid, err)
		}
		if bytes.Contains(env, []byte("NOTIFY_SOCKET=")) {
			t.Errorf("detector %s (pid %d) inherited NOTIFY_SOCKET", p.Detector, p.Pid)
		}
	}
	a.signal(t, syscall.SIGTERM)
	read("STOPPING=1")
	if st := a.wait(t); st.ExitCode() != 0 {
		t.Fatalf("agent exited %d", st.ExitCode())
	}
}

// make install lays out what the systemd unit, the container image and the
// Kubernetes example expect; every binary is static, as make builds them
// unless told otherwise; the installed config validates against the
// installed plugins.
func TestMakeInstall(t *testing.T) {
	requireE2E(t)
	tmp := tempDir(t)
	destdir := filepath.Join(tmp, "root")
	const prefix = "/opt/driftd"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "install", "BIN="+filepath.Join(tmp, "bin"), "DESTDIR="+destdir, "PREFIX="+prefix)
	cmd.Dir = moduleRoot
	cmd.Env = slices.DeleteFunc(cleanEnv(), func(kv string) bool { // make's default, not this run's
		return strings.HasPrefix(kv, "CGO_ENABLED=") || strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=")
	})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	root := filepath.Join(destdir, prefix)
	bins := []string{filepath.Join(root, "bin", "driftd")}
	for _, name := range plugins {
		bins = append(bins, filepath.Join(root, "lib", "driftd", "plugins", "driftd-plugin-"+name))
	}
	for _, path := range bins {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", path, st.Mode())
		}
		if interp := elfInterpreter(t, path); interp != "" {
			t.Errorf("%s is not static: it needs %s", path, interp)
		}
	}
	unit := readFileString(t, filepath.Join(root, "lib", "systemd", "system", "driftd.service"))
	if !strings.Contains(unit, "ExecStart="+prefix+"/bin/driftd agent") {
		t.Errorf("the installed unit does not start %s/bin/driftd:\n%s", prefix, unit)
	}
	cfg := readFileString(t, filepath.Join(root, "share", "driftd", "driftd.hcl"))
	if !strings.Contains(cfg, `plugin_dir = "`+prefix+`/lib/driftd/plugins"`) {
		t.Errorf("the installed config's plugin_dir is not under %s:\n%s", prefix, cfg)
	}
	// Staged under DESTDIR: the plugins are there, state and socket in tmp.
	cfg = strings.ReplaceAll(cfg, `"`+prefix+"/", `"`+destdir+prefix+"/")
	path := writeFile(t, filepath.Join(tmp, "driftd.hcl"), []byte(relocate(cfg, tmp)))
	code, stdout, stderr := run(t, tmp, nil, "validate", path)
	if code != 0 {
		t.Fatalf("driftd validate of the installed config: exit %d\n%s%s", code, stdout, stderr)
	}
	// Every file the image copies out of the build stage is one make
	// install (and the Dockerfile's own steps) put there.
	docker := readRepoFile(t, "Dockerfile")
	for _, want := range []string{"make install DESTDIR=/out PREFIX=/usr/local", "/out/usr/local/share/driftd/driftd.hcl /out/etc/driftd/driftd.hcl",
		"USER 65532:65532", `CMD ["agent", "-config", "/etc/driftd/driftd.hcl"]`, `VOLUME ["/run/driftd", "/var/lib/driftd"]`} {
		if !strings.Contains(docker, want) {
			t.Errorf("Dockerfile: no %q", want)
		}
	}
}

// The Kubernetes example's config validates, and the DaemonSet mounts what
// the config names: the config directory the agent is started with, the
// socket's directory on a hostPath that the serving pod mounts too, and
// data_dir on a volume.
func TestKubernetesExample(t *testing.T) {
	requireE2E(t)
	docs := yamlDocuments(t, readRepoFile(t, "deploy/kubernetes/driftd.yaml"))
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		kinds[str(d, "kind")] = d
	}
	for _, k := range []string{"Namespace", "ConfigMap", "DaemonSet", "Deployment"} {
		if kinds[k] == nil {
			t.Fatalf("no %s in deploy/kubernetes/driftd.yaml", k)
		}
	}
	hcl := str(kinds["ConfigMap"], "data", "driftd.hcl")
	for _, want := range []string{`data_dir   = "/var/lib/driftd"`, `socket      = "/run/driftd/driftd.sock"`, `plugin_dir = "/usr/local/lib/driftd/plugins"`} {
		if !strings.Contains(hcl, want) {
			t.Errorf("the ConfigMap's driftd.hcl has no %s", want)
		}
	}
	tmp := tempDir(t)
	cfg := strings.ReplaceAll(relocate(hcl, tmp), `"/usr/local/lib/driftd/plugins"`, `"`+pluginDir+`"`)
	path := writeFile(t, filepath.Join(tmp, "driftd.hcl"), []byte(cfg))
	if code, stdout, stderr := run(t, tmp, nil, "validate", path); code != 0 {
		t.Fatalf("driftd validate of the ConfigMap's config: exit %d\n%s%s", code, stdout, stderr)
	}

	pod := kinds["DaemonSet"]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if str(pod, "securityContext", "runAsNonRoot") != "true" {
		t.Error("the DaemonSet's pod does not run as non-root")
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	args := strings.Join(strSlice(c["args"]), " ")
	if args != "agent -config /etc/driftd/driftd.hcl" {
		t.Errorf("container args %q", args)
	}
	mounts := mountsByPath(pod, c)
	if m := mounts["/etc/driftd"]; m == nil || str(m, "configMap", "name") != str(kinds["ConfigMap"], "metadata", "name") {
		t.Errorf("/etc/driftd is not the ConfigMap: %v", m)
	}
	if m := mounts["/run/driftd"]; m == nil || str(m, "hostPath", "path") != "/run/driftd" {
		t.Errorf("/run/driftd is not the hostPath /run/driftd: %v", m)
	}
	if m := mounts["/var/lib/driftd"]; m == nil {
		t.Error("data_dir /var/lib/driftd is not a volume")
	}
	spod := kinds["Deployment"]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	sc := spod["containers"].([]any)[0].(map[string]any)
	smounts := mountsByPath(spod, sc)
	if m := smounts["/run/driftd"]; m == nil || str(m, "hostPath", "path") != "/run/driftd" {
		t.Errorf("the serving pod does not mount the hostPath /run/driftd: %v", m)
	}
}

// relocate points a deployment config's data_dir and socket into dir.
func relocate(cfg, dir string) string {
	cfg = strings.ReplaceAll(cfg, `"/var/lib/driftd"`, `"`+filepath.Join(dir, "data")+`"`)
	return strings.ReplaceAll(cfg, `"/run/driftd/driftd.sock"`, `"`+filepath.Join(dir, "driftd.sock")+`"`)
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	return readFileString(t, filepath.Join(moduleRoot, rel))
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// elfInterpreter returns the dynamic loader an ELF binary asks for, "" for
// a static one.
func elfInterpreter(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

func yamlDocuments(t *testing.T, s string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(s))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("deploy/kubernetes/driftd.yaml: %v", err)
		}
		docs = append(docs, d)
	}
}

// str follows keys through nested maps and formats what it finds; "" when
// a key is missing.
func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	default:
		return ""
	}
}

func strSlice(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// mountsByPath maps each of container c's mount paths to its volume.
func mountsByPath(pod, c map[string]any) map[string]map[string]any {
	vols := map[string]map[string]any{}
	for _, v := range pod["volumes"].([]any) {
		v := v.(map[string]any)
		vols[str(v, "name")] = v
	}
	out := map[string]map[string]any{}
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		out[str(m, "mountPath")] = vols[str(m, "name")]
	}
	return out
}

// The fleet example's agent config validates, names itself after the node
// and reaches the NATS servers the StatefulSet's Service names; the
// DaemonSet gives it the node's name and keeps data_dir (the spool) on the
// node.
func TestKubernetesFleetExample(t *testing.T) {
	requireE2E(t)
	const file = "deploy/kubernetes/driftd-fleet.yaml"
	docs := yamlDocuments(t, readRepoFile(t, file))
	byName := map[string]map[string]any{}
	for _, d := range docs {
		byName[str(d, "kind")+"/"+str(d, "metadata", "name")] = d
	}
	cm, ds, sts := byName["ConfigMap/driftd-config"], byName["DaemonSet/driftd"], byName["StatefulSet/nats"]
	if cm == nil || ds == nil || sts == nil || byName["Service/nats"] == nil {
		t.Fatalf("%s lacks the agents' ConfigMap, their DaemonSet, or NATS' StatefulSet and Service", file)
	}
	if r := sts["spec"].(map[string]any)["replicas"]; r != 3 {
		t.Errorf("NATS runs %v servers, want 3", r)
	}
	hcl := str(cm, "data", "driftd.hcl")
	tmp := tempDir(t)
	cfg := strings.ReplaceAll(relocate(hcl, tmp), `"/usr/local/lib/driftd/plugins"`, `"`+pluginDir+`"`)
	path := writeFile(t, filepath.Join(tmp, "driftd.hcl"), []byte(cfg))
	if code, stdout, stderr := run(t, tmp, cleanEnv("NODE_NAME=node-7"), "validate", path); code != 0 {
		t.Fatalf("driftd validate of the fleet ConfigMap's config: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, s := range []string{"nats-0", "nats-1", "nats-2"} {
		if !strings.Contains(hcl, "nats://"+s+".nats.driftd.svc:4222") {
			t.Errorf("the cluster block does not name %s", s)
		}
	}
	pod := ds["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	var nodeName bool
	for _, e := range c["env"].([]any) {
		e := e.(map[string]any)
		if str(e, "name") == "NODE_NAME" && str(e, "valueFrom", "fieldRef", "fieldPath") == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("the DaemonSet does not set NODE_NAME from spec.nodeName")
	}
	mounts := mountsByPath(pod, c)
	if m := mounts["/var/lib/driftd"]; m == nil || str(m, "hostPath", "path") != "/var/lib/driftd" {
		t.Errorf("data_dir, where the spool is, is not on the node: %v", m)
	}
}
