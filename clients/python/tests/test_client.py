"""Unit tests of the client against a fake daemon on a Unix socket.

    python3 -m unittest discover -s clients/python/tests -t clients/python
"""

import datetime
import http.server
import json
import logging
import os
import shutil
import socketserver
import tempfile
import threading
import time
import unittest

import driftd
from driftd import _client


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeDaemon:
    """Answers POST /v1/metrics with answer(n, lines) -> (status, headers,
    result), n counting requests from 1; records the lines of each."""

    def __init__(self, answer=None, path=None):
        self.answer = answer or (lambda n, lines: (200, {}, {"accepted": len(lines), "rejected": 0}))
        self.dir = None
        if path is None:
            self.dir = tempfile.mkdtemp(prefix="ddc")
            path = os.path.join(self.dir, "d.sock")
        self.path = path
        self.lock = threading.Lock()
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                lines = [json.loads(line) for line in body.decode().splitlines()]
                with fake.lock:
                    fake.requests.append(lines)
                    n = len(fake.requests)
                status, headers, result = fake.answer(n, lines)
                result.setdefault("errors", [])
                data = json.dumps(result).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = _Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def cleanup(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def lines(self):
        with self.lock:
            return [line for r in self.requests for line in r]


def _when(rfc3339):
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


def ok_answer(n, lines):
    return 200, {}, {"accepted": len(lines), "rejected": 0}


class ClientTest(unittest.TestCase):
    def fake(self, answer=None, path=None):
        f = FakeDaemon(answer, path)
        self.addCleanup(f.cleanup)
        return f

    def client(self, socket, **kw):
        c = driftd.Client(socket=socket, **kw)
        self.addCleanup(c.close, 1)
        return c

    def test_batches_in_push_order(self):
        f = self.fake()
        c = self.client(f.path, batch_size=100, flush_interval=0.02)
        for i in range(250):
            c.push("m", "v1", accuracy=i / 1000, latency_ms=i)
        self.assertTrue(c.flush(20))
        for r in f.requests:
            self.assertLessEqual(len(r), 100)
        self.assertEqual([line["accuracy"] for line in f.lines()], [i / 1000 for i in range(250)])
        self.assertEqual(c.stats(), {"sent": 250, "rejected": 0, "dropped": 0, "errors": 0, "queued": 0})
        line = f.lines()[0]
        self.assertEqual(set(line), {"model", "version", "timestamp", "accuracy", "latency_ms"})
        ts = datetime.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        self.assertLess(abs(ts.timestamp() - time.time()), 60)

    def test_values_and_timestamps(self):
        f = self.fake()
        c = self.client(f.path)
        when = datetime.datetime(2026, 11, 28, 6, 0, 0, tzinfo=datetime.timezone.utc)
        c.push("m", "v", precision=0.5, recall=1, metrics={"f1": 0.25}, timestamp=when)
        c.push("m", "v", accuracy=float("nan"), timestamp="2026-11-28T06:00:01Z")
        c.push("m", "v", accuracy=True, timestamp=1795845602.25)
        c.push("m", "v", latency_ms=3, timestamp=1795845603)
        self.assertTrue(c.flush(20))
        got = f.lines()
        self.assertEqual(got[0], {"model": "m", "version": "v", "timestamp": "2026-11-28T06:00:00+00:00",
                                  "precision": 0.5, "recall": 1, "metrics": {"f1": 0.25}})
        self.assertNotEqual(got[1]["accuracy"], got[1]["accuracy"])  # NaN, for the daemon to reject
        self.assertEqual(got[2]["timestamp"], "2026-11-28T06:00:02.250000Z")
        self.assertIs(got[2]["accuracy"], True)
        self.assertEqual(got[3]["timestamp"], "2026-11-28T06:00:03.000000Z")

    def test_answers(self):
        def answer(n, lines):
            if n == 1:  # 3 read (one bad), then busy
                return 503, {"Retry-After": "0"}, {"accepted": 2, "rejected": 1, "error": "busy", "errors": [
                    {"line": 2, "error": "accuracy: 1.5 is out of range [0, 1]"}]}
            if n == 2:  # 2 read, the third too long
                return 413, {}, {"accepted": 2, "rejected": 0, "error": "line too long"}
            if n == 3:  # every line bad
                return 400, {}, {"accepted": 0, "rejected": len(lines), "error": "no metric accepted", "errors": [
                    {"line": i + 1, "error": "accuracy: %d.5 is out of range [0, 1]" % (i + 2)} for i in range(len(lines))]}
            return ok_answer(n, lines)

        f = self.fake(answer)
        c = self.client(f.path, batch_size=10)
        with self.assertLogs("driftd", logging.WARNING) as logs:
            for i in range(10):
                c.push("m", "v1", accuracy=i / 1000)
            self.assertTrue(c.flush(20))
        self.assertEqual([len(r) for r in f.requests], [10, 7, 4])
        self.assertEqual(f.requests[1][0]["accuracy"], 0.003)  # after the 503: the lines not read
        self.assertEqual(f.requests[2][0]["accuracy"], 0.006)  # after the 413: past the long line
        self.assertEqual(c.stats(), {"sent": 4, "rejected": 6, "dropped": 0, "errors": 1, "queued": 0})
        self.assertEqual(sum("out of range" in m for m in logs.output), 1, logs.output)

    def test_full_queue_drops_oldest(self):
        d = tempfile.mkdtemp(prefix="ddc")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "d.sock")
        c = self.client(path, queue_size=50, batch_size=10, max_backoff=0.02)
        with self.assertLogs("driftd", logging.WARNING):
            for i in range(1000):
                c.push("m", "v1", accuracy=i / 1000)
            st = c.stats()
            self.assertGreaterEqual(st["dropped"], 1000 - 50 - 10)
            self.assertLessEqual(st["queued"], 60)
            deadline = time.monotonic() + 20
            while c.stats()["errors"] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # until the sender has found the daemon away
            f = self.fake(path=path)
            self.assertTrue(c.flush(20))
        st = c.stats()
        got = [line["accuracy"] for line in f.lines()]
        self.assertEqual(st["sent"] + st["dropped"], 1000, st)
        self.assertEqual(st["sent"], len(got))
        self.assertEqual(got[-1], 0.999)
        self.assertGreater(st["errors"], 0)

    def test_threads(self):
        f = self.fake()
        c = self.client(f.path, batch_size=100)

        def pusher(k):
            for i in range(1000):
                c.push("m%d" % k, "v1", accuracy=i / 1000)

        threads = [threading.Thread(target=pusher, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertTrue(c.flush(30))
        self.assertEqual(c.stats()["sent"], 8000)
        for k in range(8):
            got = [line["accuracy"] for line in f.lines() if line["model"] == "m%d" % k]
            self.assertEqual(got, [i / 1000 for i in range(1000)])

    def test_fork(self):
        f = self.fake()
        c = self.client(f.path, batch_size=1000, flush_interval=60)
        for i in range(10):
            c.push("parent", "v1", accuracy=0.5)  # queued at the fork
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own queue, thread and connection
            try:
                os.close(r)
                before = c.stats()
                for i in range(100):
                    c.push("child", "v1", accuracy=0.5)
                flushed = c.flush(20)
                os.write(w, json.dumps({"before": before, "flushed": flushed, "after": c.stats()}).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r) as rf:
            child = json.loads(rf.read())
        os.waitpid(pid, 0)
        self.assertEqual(child["before"], {"sent": 0, "rejected": 0, "dropped": 0, "errors": 0, "queued": 0})
        self.assertTrue(child["flushed"])
        self.assertEqual(child["after"]["sent"], 100)
        self.assertTrue(c.flush(20))
        self.assertEqual(c.stats()["sent"], 10)
        models = [line["model"] for line in f.lines()]
        self.assertEqual((models.count("parent"), models.count("child")), (10, 100))

    def test_push_never_raises(self):
        f = self.fake(lambda n, lines: (400, {}, {"accepted": 0, "rejected": len(lines), "error": "no metric accepted"}))
        c = self.client(f.path)
        with self.assertLogs("driftd", logging.WARNING) as logs:
            c.push(["unhashable"], "v1", accuracy=0.5)
            c.push("m", "v1", accuracy=object())
            c.push("m", "v1", timestamp=object(), accuracy=0.5)
            self.assertTrue(c.flush(20))
        self.assertEqual(c.stats()["rejected"], 3)
        self.assertEqual(len(logs.output), 1, logs.output)  # one kind: cannot be sent

    def test_close(self):
        f = self.fake()
        c = driftd.Client(socket=f.path, flush_interval=60)
        c.push("m", "v1", accuracy=0.5)
        self.assertTrue(c.close(5))
        c.push("m", "v1", accuracy=0.5)
        self.assertEqual(c.stats(), {"sent": 1, "rejected": 0, "dropped": 1, "errors": 0, "queued": 0})

    def test_close_while_away(self):
        d = tempfile.mkdtemp(prefix="ddc")
        self.addCleanup(shutil.rmtree, d, True)
        c = driftd.Client(socket=os.path.join(d, "none.sock"), max_backoff=0.02, logger=logging.getLogger("quiet"))
        for i in range(5):
            c.push("m", "v1", accuracy=0.5)
        self.assertFalse(c.close(0.2))
        st = c.stats()
        self.assertEqual((st["sent"], st["dropped"], st["queued"]), (0, 5, 0), st)

    def test_options(self):
        for kw in ({"queue_size": 0}, {"batch_size": 0}, {"flush_interval": 0}, {"timeout": -1}, {"max_backoff": 0}):
            with self.assertRaises(ValueError):
                driftd.Client(socket="x", **kw)

    def test_socket_default(self):
        old = os.environ.pop("DRIFTD_SOCKET", None)
        try:
            self.assertEqual(driftd.Client().socket, "/run/driftd/driftd.sock")
            os.environ["DRIFTD_SOCKET"] = "/tmp/x.sock"
            self.assertEqual(driftd.Client().socket, "/tmp/x.sock")
            self.assertEqual(driftd.Client("/a.sock").socket, "/a.sock")
        finally:
            os.environ.pop("DRIFTD_SOCKET", None)
            if old is not None:
                os.environ["DRIFTD_SOCKET"] = old

    def test_fast_lines_match_json(self):
        c = driftd.Client(socket="x")
        for item in [("m", "v", 1795845602.5, 0.95, None, 0, 12.5, None),
                     ("m", 'v"x', 1795845602.123456, None, 1, None, None, {"f1": 0.5}),
                     ("ü", "v", 0, 1e-300, None, None, 1e300, None)]:
            fast = c._encode_fast(item)
            self.assertIsNotNone(fast)
            slow = c._encode_slow(item)
            fast, slow = json.loads(fast), json.loads(slow)
            self.assertEqual(_when(fast.pop("timestamp")), _when(slow.pop("timestamp")), item)
            self.assertEqual(fast, slow, item)
        for odd in [float("nan"), float("inf"), True]:
            self.assertIsNone(c._encode_fast(("m", "v", 1.0, odd, None, None, None, None)))

    def test_kind(self):
        self.assertEqual(_client._kind("accuracy: 1.5 is out of range [0, 1]"),
                         _client._kind("accuracy: 2 is out of range [0, 1]"))
        self.assertNotEqual(_client._kind("accuracy: 1.5 is out of range [0, 1]"),
                            _client._kind("recall: 1.5 is out of range [0, 1]"))


if __name__ == "__main__":
    unittest.main()
