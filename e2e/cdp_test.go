package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// chromiumBin is Debian's Chromium, which scripts/test-deps installs.
const chromiumBin = "/usr/bin/chromium"

// browser is a headless Chromium driven over the Chrome DevTools Protocol
// on its --remote-debugging-pipe: JSON messages, each ended by a NUL byte,
// written to the browser's fd 3 and read from its fd 4.
type browser struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser // the browser's fd 3

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	events  []cdpEvent
	closed  chan struct{} // closed once the reader ends
	log     *syncBuffer
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// cdpEvent is an event the browser sent.
type cdpEvent struct {
	Method    string          `json:"method"`
	SessionID string          `json:"sessionId"`
	Params    json.RawMessage `json:"params"`
}

// startBrowser starts a headless Chromium with a profile in a temp dir. On
// cleanup it is closed and waited for.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		t.Fatalf("the status page's test drives Debian's Chromium: %v; run scripts/test-deps as root to install it", err)
	}
	profile := tempDir(t)
	toBrowser, fd3, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fd4, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, waiting: map[int]chan cdpReply{}, closed: make(chan struct{}), log: &syncBuffer{}}
	b.cmd = exec.Command(chromiumBin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "--window-size=1400,1100", "about:blank")
	b.cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser} // fd 3 and fd 4
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.Env = cleanEnv("HOME=" + profile)
	b.cmd.WaitDelay = 5 * time.Second
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toBrowser.Close()
	fromBrowser.Close()
	b.in = fd3
	go b.read(fd4)
	t.Cleanup(func() {
		b.in.Close() // the browser exits when its pipe closes
		select {
		case <-b.closed:
		case <-time.After(stopTimeout):
		}
		done := make(chan struct{})
		go func() { _ = b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = b.cmd.Process.Kill()
			<-done
		}
		fd4.Close()
		if t.Failed() {
			t.Logf("chromium's output:\n%s", shorten(b.log.String(), 8<<10, 8<<10))
		}
	})
	return b
}

func (b *browser) read(r io.Reader) {
	defer close(b.closed)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		msg = bytes.TrimSuffix(msg, []byte{0})
		var m struct {
			ID int `json:"id"`
			cdpReply
			cdpEvent
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.waiting[m.ID]; ch != nil {
				ch <- m.cdpReply
				delete(b.waiting, m.ID)
			}
		} else {
			b.events = append(b.events, m.cdpEvent)
		}
		b.mu.Unlock()
	}
}

// call sends a command, to a page's session unless session is empty, and
// returns its result into out (when not nil).
func (b *browser) call(session, method string, params any, out any) {
	b.t.Helper()
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan cdpReply, 1)
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	b.waiting[id] = ch
	b.mu.Unlock()
	m := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		m["sessionId"] = session
	}
	msg, err := json.Marshal(m)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.in.Write(append(msg, 0)); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			b.t.Fatalf("%s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				b.t.Fatalf("%s: %v: %s", method, err, r.Result)
			}
		}
	case <-b.closed:
		b.t.Fatalf("%s: chromium closed its pipe", method)
	case <-time.After(cmdTimeout):
		b.t.Fatalf("%s: no answer within %v", method, cmdTimeout)
	}
}

// page is a tab, attached in flat mode: its commands carry its session.
type page struct {
	b       *browser
	session string
}

// newPage opens a blank tab and enables the domains whose events the tests
// read: Page, Runtime (console calls, exceptions) and Log.
func (b *browser) newPage() *page {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	p := &page{b: b, session: att.SessionID}
	for _, domain := range []string{"Page", "Runtime", "Log"} {
		b.call(p.session, domain+".enable", nil, nil)
	}
	return p
}

func (p *page) navigate(url string) {
	p.b.t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	p.b.call(p.session, "Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		p.b.t.Fatalf("navigate to %s: %s", url, res.ErrorText)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value
// into out.
func (p *page) eval(expr string, out any) {
	p.b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if e := res.ExceptionDetails; e != nil {
		p.b.t.Fatalf("evaluate %s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			p.b.t.Fatalf("evaluate %s: %v: %s", expr, err, res.Result.Value)
		}
	}
}

// evalBool evaluates a JavaScript expression that is true or false.
func (p *page) evalBool(expr string) bool {
	p.b.t.Helper()
	var ok bool
	p.eval(expr, &ok)
	return ok
}

// screenshot saves a PNG of the page at path.
func (p *page) screenshot(path string) {
	p.b.t.Helper()
	var res struct {
		Data []byte `json:"data"` // base64 in JSON
	}
	p.b.call(p.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res)
	if !bytes.HasPrefix(res.Data, []byte("\x89PNG\r\n\x1a\n")) {
		p.b.t.Fatalf("the screenshot is not a PNG (%d bytes)", len(res.Data))
	}
	if err := os.WriteFile(path, res.Data, 0o644); err != nil {
		p.b.t.Fatal(err)
	}
}

// problems returns what the page reported as an error: console.error and
// console.assert calls, uncaught exceptions, and log entries of level error
// (a failed load, a refused script).
func (p *page) problems() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	var out []string
	for _, e := range p.b.events {
		if e.SessionID != p.session {
			continue
		}
		switch e.Method {
		case "Runtime.consoleAPICalled":
			var c struct {
				Type string `json:"type"`
				Args []struct {
					Value       any    `json:"value"`
					Description string `json:"description"`
				} `json:"args"`
			}
			_ = json.Unmarshal(e.Params, &c)
			if c.Type == "error" || c.Type == "assert" {
				out = append(out, fmt.Sprintf("console.%s: %v", c.Type, c.Args))
			}
		case "Runtime.exceptionThrown":
			out = append(out, "exception: "+string(e.Params))
		case "Log.entryAdded":
			var l struct {
				Entry struct {
					Level string `json:"level"`
					Text  string `json:"text"`
					URL   string `json:"url"`
				} `json:"entry"`
			}
			_ = json.Unmarshal(e.Params, &l)
			if l.Entry.Level == "error" {
				out = append(out, fmt.Sprintf("log: %s %s", l.Entry.Text, l.Entry.URL))
			}
		}
	}
	return out
}
