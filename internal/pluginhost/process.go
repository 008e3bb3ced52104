package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/driftd/driftd/internal/pluginwire"
)

// ProcessConfig says how to start a plugin binary.
type ProcessConfig struct {
	// Path of the plugin binary.
	Path string
	// Logger receives the plugin's own log lines, under its name.
	Logger hclog.Logger
	// StartTimeout bounds the handshake; 10s when zero.
	StartTimeout time.Duration
	// SHA256, when set, is the hex sha256 the binary must have: it is
	// checked right before the binary runs, and a mismatch is a
	// *ChecksumError.
	SHA256 string
	// SocketDir is where the process gets its private directory (mode 0700)
	// for its Unix socket, removed when the process is killed; the system's
	// temp dir when empty, or when a socket path in SocketDir would be too
	// long for a Unix socket.
	SocketDir string
}

// maxSocketDir bounds the length of a private socket directory's path, so
// that the socket go-plugin makes in it ("plugin" and up to ten digits)
// stays within sun_path's 108 bytes.
const maxSocketDir = 90

// socketDir makes a process's private socket directory, mode 0700, in
// parent or, when parent is empty or too deep, in the temp dir.
func socketDir(parent, name string) (string, error) {
	if parent == "" || len(parent)+len(name)+12 > maxSocketDir {
		parent = ""
	} else if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(parent, name+"-")
}

// Start runs a plugin binary, performs the handshake and reads the
// plugin's info and schema, within cfg.StartTimeout; when ctx ends first,
// the process is killed and the start fails at once. The process leads a
// process group of its own, killed whole when the plugin exits or is
// killed. It gets SIGKILL when the daemon's thread that started it dies, so
// a plugin never outlives a killed daemon; what its children left is for
// KillStrays.
//
// When $DRIFTD_PLUGIN_REATTACH names the plugin (the part of the file name
// after "driftd-plugin-"), Start attaches to that plugin, started by
// hand in debug mode, instead of running the binary.
func Start(ctx context.Context, cfg ProcessConfig) (*Instance, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	name := strings.TrimPrefix(filepath.Base(cfg.Path), "driftd-plugin-")
	rc, err := reattachFor(os.Getenv(pluginwire.ReattachEnv), name)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
	}
	if rc != nil {
		return attach(ctx, rc, logger)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if cfg.SHA256 != "" {
		if err := checkSHA256(cfg.Path, cfg.SHA256); err != nil {
			return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
		}
	}
	dir, err := socketDir(cfg.SocketDir, name)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: socket directory: %w", cfg.Path, err)
	}
	// Exec'd directly, no shell, in a process group of its own (see group);
	// its socket in a directory only the daemon's user can enter. The host
	// environment comes first so that the socket directory is the one that
	// counts; go-plugin's own is not used.
	env := []string{plugin.EnvUnixSocketDir + "=" + dir}
	if cfg.SocketDir != "" {
		if root, err := filepath.Abs(cfg.SocketDir); err == nil {
			env = append(env, SocketsEnv+"="+root)
		}
	}
	l := &launch{ctx: ctx}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginwire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pluginwire.ProtocolVersion: clientPlugins},
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, tmp string) (runner.Runner, error) {
			os.Remove(tmp)
			cmd := exec.Command(cfg.Path)
			cmd.Env = append(append(os.Environ(), spec.Env...), env...)
			cmd.Stdin = spec.Stdin
			return l.group(cmd)
		},
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		StartTimeout:     timeout,
		SyncStdout:       logWriter{logger, "stdout"},
		SyncStderr:       logWriter{logger, "stderr"},
		GRPCDialOptions:  pluginwire.DialOptions(),
	})
	dctx, cancel := context.WithTimeout(ctx, timeout) // info and schema, after the handshake
	defer cancel()
	// The handshake does not watch ctx: its end kills the process, which
	// ends the handshake.
	stop := context.AfterFunc(ctx, l.kill)
	p, err := connect(dctx, pc)
	if !stop() && err == nil { // killed as it connected
		p.Kill()
		p, err = nil, ctx.Err()
	}
	if err != nil {
		os.RemoveAll(dir)
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
	}
	p.sockDir, p.group, p.log, p.pid = dir, l.g, logger, l.g.pid
	return p, nil
}

// launch is the process group of a plugin being started, for a cancelled
// start to kill.
type launch struct {
	ctx  context.Context
	mu   sync.Mutex
	g    *group
	dead bool
}

func (l *launch) group(cmd *exec.Cmd) (*group, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || l.ctx.Err() != nil {
		return nil, fmt.Errorf("plugin not started: %w", context.Cause(l.ctx))
	}
	l.g = newGroup(cmd)
	return l.g, nil
}

func (l *launch) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	if l.g != nil {
		l.g.kill()
	}
}

// connect starts a go-plugin connection and reads the plugin's info and
// schema.
func connect(ctx context.Context, pc *plugin.Client) (*Instance, error) {
	if _, err := pc.Start(); err != nil {
		pc.Kill()
		return nil, translateStartError(err)
	}
	c, err := dial(ctx, pc)
	if err != nil {
		pc.Kill()
		return nil, err
	}
	i := &Instance{info: c.info, schema: c.schema, impl: c, client: c, pc: pc, log: hclog.NewNullLogger()}
	if rc := pc.ReattachConfig(); rc != nil {
		i.pid = rc.Pid
	}
	return i, nil
}

// logWriter logs what a plugin writes to its stdout after the handshake.
type logWriter struct {
	l      hclog.Logger
	stream string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn("plugin wrote to "+w.stream, "output", string(p))
	return len(p), nil
}
