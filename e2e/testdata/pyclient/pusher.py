"""A serving app's use of the driftd Python client, for the end-to-end tests.

    pusher.py MODE SOCKET [ARG]

Each mode prints JSON lines on stdout: {"stats": ..., "pushed": N, ...}.
Log records of the client go to stderr.
"""

import json
import logging
import os
import sys
import threading
import time

import driftd


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def wait_for(cond, timeout=20):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def drift(c, path):
    """Push the accuracies in path, one a line, a second apart."""
    with open(path) as f:
        values = [float(line) for line in f if line.strip()]
    t0 = 1795845600.0  # 2026-11-28T06:00:00Z
    for i, v in enumerate(values):
        c.push("quality_inspector", "v1.2.3", accuracy=v, latency_ms=12.5, timestamp=t0 + i)
    out(flushed=c.flush(60), stats=c.stats(), pushed=len(values))


def stream(c, _):
    """Push until stdin says stop (and print the stats when it says stats);
    the value is the push's number."""
    stop = threading.Event()
    pushed = 0

    def read():
        for line in sys.stdin:
            if line.strip() == "stats":
                out(stats=c.stats())
            else:
                break
        stop.set()

    threading.Thread(target=read, daemon=True).start()
    out(started=True)
    while not stop.is_set():
        for _ in range(50):
            c.push("restart", "v1", metrics={"n": pushed})
            pushed += 1
        time.sleep(0.002)
    out(flushed=c.flush(60), stats=c.stats(), pushed=pushed, last=pushed - 1)


def full(c, _):
    """Push 1000 with the daemon away, then wait for stdin."""
    for i in range(1000):
        c.push("full", "v1", metrics={"n": i})
    wait_for(lambda: c.stats()["errors"] > 0)
    out(away=c.stats())
    sys.stdin.readline()
    out(flushed=c.flush(60), stats=c.stats(), pushed=1000)


def invalid(c, _):
    """Good and bad values."""
    for i in range(100):
        c.push("invalid", "v1", accuracy=0.9)
        c.push("invalid", "v1", accuracy=1.5 + i)  # out of range, a message each
        c.push("invalid", "bad version!", accuracy=0.9)
        c.push("invalid", "v1", accuracy=float("nan"))
    out(flushed=c.flush(60), stats=c.stats(), pushed=400)


def workers(c, _):
    """Threads, then forked workers (as gunicorn makes) with threads of
    their own, all on the client made before the fork."""

    def pusher(model, n):
        for i in range(n):
            c.push(model, "v1", metrics={"n": i})

    def run_threads(prefix, k, n):
        ts = [threading.Thread(target=pusher, args=("%s%d" % (prefix, j), n)) for j in range(k)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    run_threads("thread", 4, 1000)
    children = []
    for w in range(3):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                before = c.stats()
                run_threads("fork%d-" % w, 2, 1000)
                out(worker=w, before=before, flushed=c.flush(60), stats=c.stats(), pushed=2000)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    out(flushed=c.flush(60), stats=c.stats(), pushed=4000, children=codes)


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    mode, socket = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    kw = {}
    if mode == "full":
        kw = {"queue_size": 100, "batch_size": 50, "max_backoff": 0.05}
    if mode == "stream":
        kw = {"max_backoff": 0.1, "queue_size": 1000000}
    c = driftd.Client(socket=socket, **kw)
    {"drift": drift, "stream": stream, "full": full, "invalid": invalid, "workers": workers}[mode](c, arg)
    c.close()


if __name__ == "__main__":
    main()
