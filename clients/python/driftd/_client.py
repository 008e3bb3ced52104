"""The client: a bounded queue on the caller's side, one sender thread."""

import atexit
import collections
import datetime
import http.client
import json
import logging
import os
import random
import re
import socket as _socket
import threading
import time
import weakref

DEFAULT_SOCKET = "/run/driftd/driftd.sock"

_log = logging.getLogger("driftd")

# The clients of this process, for the fork and exit hooks.
_clients = weakref.WeakSet()


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a Unix socket."""

    def __init__(self, path, timeout):
        super().__init__("driftd", timeout=timeout)
        self._path = path

    def connect(self):
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


class _Answer:
    """What the daemon answered to one request."""

    __slots__ = ("status", "accepted", "rejected", "errors", "error", "retry_after")

    def __init__(self, status, body, retry_after):
        self.status = status
        self.accepted = self.rejected = 0
        self.errors = []
        self.error = ""
        self.retry_after = retry_after
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            self.accepted = _count(doc.get("accepted"))
            self.rejected = _count(doc.get("rejected"))
            errors = doc.get("errors")
            if isinstance(errors, list):
                self.errors = [e for e in errors if isinstance(e, dict)]
            self.error = str(doc.get("error") or "")
        elif body:
            self.error = body[:200].decode("utf-8", "replace")


def _count(v):
    return v if isinstance(v, int) and v >= 0 else 0


def _number(o):
    """json.dumps's fallback: numbers that are not floats (numpy's float32,
    Decimal) as floats."""
    try:
        return float(o)
    except (TypeError, ValueError):
        raise TypeError("%r is not a number" % (o,)) from None


def _rfc3339(ts):
    if isinstance(ts, str):
        return ts
    if isinstance(ts, datetime.datetime):
        if ts.tzinfo is None:
            ts = ts.astimezone()  # a naive datetime is local time
        return ts.isoformat()
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


# The variable parts of a line error (numbers, quoted strings), left out
# of its kind: errors of one kind are logged once.
_variable = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*')


def _kind(msg):
    return _variable.sub("_", msg)


class Client:
    """A client of one driftd agent's socket.

    push() puts a value in a bounded in-memory queue and returns; a
    background thread sends the queue as NDJSON to POST /v1/metrics in
    batches of up to batch_size values, at the latest flush_interval seconds
    after a value arrived, over one kept-alive connection. When the daemon is
    away or busy (503, 429) the thread keeps the values and tries again,
    backing off up to max_backoff seconds (or as the daemon's Retry-After
    says); when the queue is full, the oldest value is dropped and counted.

    The socket is the argument, then $DRIFTD_SOCKET, then
    /run/driftd/driftd.sock. Errors are logged to the "driftd" logger (or
    logger), each kind once; stats() counts everything.
    """

    def __init__(self, socket=None, *, queue_size=10000, batch_size=1000, flush_interval=0.1,
                 timeout=10.0, max_backoff=5.0, exit_timeout=2.0, logger=None):
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1, not %r" % (queue_size,))
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1, not %r" % (batch_size,))
        if not flush_interval > 0:
            raise ValueError("flush_interval must be positive, not %r" % (flush_interval,))
        if not timeout > 0:
            raise ValueError("timeout must be positive, not %r" % (timeout,))
        if not max_backoff > 0:
            raise ValueError("max_backoff must be positive, not %r" % (max_backoff,))
        self.socket = socket or os.environ.get("DRIFTD_SOCKET") or DEFAULT_SOCKET
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._exit_timeout = exit_timeout
        self._log = logger or _log
        self._closed = False
        self._reset()
        _clients.add(self)

    def _reset(self):
        """The state of a new client: also a forked child's, which sends its
        own values on its own connection and thread."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # a batch was settled
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue = collections.deque()
        self._inflight = 0  # values the sender took and has not settled
        self._flushing = 0  # flush() calls waiting
        self._thread = None
        self._conn = None
        self._sent = self._rejected = self._dropped = self._errors = 0
        self._logged = set()
        self._heads = {}  # (model, version) -> '{"model":...,"version":...'
        self._ts_sec, self._ts_head = None, ""

    def push(self, model, version, accuracy=None, precision=None, recall=None, latency_ms=None,
             metrics=None, timestamp=None):
        """Queue one metric and return at once; never raises.

        timestamp is a datetime, an RFC 3339 string or seconds since the
        epoch; None means now. metrics maps custom names to numbers. The
        daemon checks the values; what it rejects is logged and counted in
        stats()["rejected"].
        """
        try:
            if timestamp is None:
                timestamp = time.time()
            item = (model, version, timestamp, accuracy, precision, recall, latency_ms, metrics)
            with self._lock:
                if self._closed:
                    self._dropped += 1
                    return
                q = self._queue
                if len(q) >= self._queue_size:
                    q.popleft()
                    self._dropped += 1
                q.append(item)
                n = len(q)
                if self._thread is None:
                    self._start()
            if n == self._batch_size:
                self._wake.set()
        except Exception:  # never into the serving path
            self._dropped += 1

    def flush(self, timeout=None):
        """Wait until every value pushed so far was answered by the daemon or
        dropped; at most timeout seconds (None: no bound). Returns whether it
        got there."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if not self._queue and not self._inflight:
                return True
            self._flushing += 1
        self._wake.set()
        try:
            with self._lock:
                while self._queue or self._inflight:
                    if self._thread is None or not self._thread.is_alive():
                        return False
                    wait = None if deadline is None else deadline - time.monotonic()
                    if wait is not None and wait <= 0:
                        return False
                    self._idle.wait(wait)
                return True
        finally:
            with self._lock:
                self._flushing -= 1

    def close(self, timeout=5.0):
        """Flush for at most timeout seconds, then stop the sender. Values
        still unsent count as dropped; push() after close() drops."""
        flushed = self.flush(timeout)
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._timeout)
        with self._lock:
            self._dropped += len(self._queue)
            self._queue.clear()
        return flushed

    def stats(self):
        """Counts since the client was made (in a forked child, since the
        fork): values the daemon accepted (sent), rejected, dropped (queue
        full, closed, or unencodable), failed requests (errors), and values
        waiting (queued)."""
        with self._lock:
            return {
                "sent": self._sent,
                "rejected": self._rejected,
                "dropped": self._dropped,
                "errors": self._errors,
                "queued": len(self._queue) + self._inflight,
            }

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # The sender.

    def _start(self):
        # Under self._lock.
        t = threading.Thread(target=self._run, name="driftd-sender", daemon=True)
        self._thread = t
        t.start()

    def _run(self):
        q = self._queue
        bs = self._batch_size
        try:
            while not self._stop.is_set():
                if not (len(q) >= bs or (self._flushing and q)):
                    self._wake.wait(self._flush_interval)
                    self._wake.clear()
                    if self._stop.is_set():
                        return
                with self._lock:
                    n = min(len(q), bs)
                    items = [q.popleft() for _ in range(n)]
                    self._inflight = n
                    if not n:
                        self._idle.notify_all()
                        continue
                try:
                    self._deliver(self._encode(items))
                except Exception as e:  # a bug: keep the thread alive
                    self._count(errors=1, dropped=n)
                    self._once("internal", "driftd client: cannot send %d values: %r", n, e)
                finally:
                    with self._lock:
                        self._inflight = 0
                        self._idle.notify_all()
        finally:
            self._close_conn()

    def _encode(self, items):
        lines = []
        for item in items:
            try:
                line = self._encode_fast(item)
                if line is None:
                    line = self._encode_slow(item)
                lines.append(line)
            except Exception as e:
                self._count(rejected=1)
                self._once("encode", "driftd client: a value of model %r cannot be sent: %s", item[0], e)
        return lines

    def _encode_fast(self, item):
        """The line of a metric whose values are finite floats or ints and
        whose timestamp is a number, built from cached pieces; None for any
        other."""
        model, version, ts, acc, prec, rec, lat, metrics = item
        head = self._heads.get((model, version))
        if head is None:
            head = json.dumps({"model": model, "version": version}, separators=(",", ":"))[:-1]
            if len(self._heads) < 10000:
                self._heads[(model, version)] = head
        tt = type(ts)
        if (tt is not float and tt is not int) or ts < 0:
            return None
        sec = int(ts)
        if sec != self._ts_sec:
            self._ts_head = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            self._ts_sec = sec
        parts = [head, ',"timestamp":"%s.%06dZ"' % (self._ts_head, int((ts - sec) * 1e6))]
        for name, v in ((',"accuracy":', acc), (',"precision":', prec), (',"recall":', rec), (',"latency_ms":', lat)):
            if v is None:
                continue
            t = type(v)
            if not ((t is float and v - v == 0.0) or t is int):
                return None  # NaN, Infinity, numpy, bool: the slow way
            parts.append(name)
            parts.append(repr(v))
        if metrics:
            parts.append(',"metrics":')
            parts.append(json.dumps(metrics, separators=(",", ":"), default=_number))
        parts.append("}\n")
        return "".join(parts).encode()

    def _encode_slow(self, item):
        model, version, ts, acc, prec, rec, lat, metrics = item
        d = {"model": model, "version": version, "timestamp": _rfc3339(ts)}
        if acc is not None:
            d["accuracy"] = acc
        if prec is not None:
            d["precision"] = prec
        if rec is not None:
            d["recall"] = rec
        if lat is not None:
            d["latency_ms"] = lat
        if metrics:
            d["metrics"] = metrics
        return json.dumps(d, separators=(",", ":"), default=_number).encode() + b"\n"

    def _deliver(self, lines):
        """Send lines until the daemon has answered for each, or the client
        stops (the rest count as dropped)."""
        failures = 0
        while lines:
            try:
                a = self._post(lines)
            except (OSError, http.client.HTTPException) as e:
                # No answer: the daemon may have kept some lines of this
                # request, but says not which. Send them all again (at least
                # once; a duplicate is possible only when the connection
                # broke after the daemon read a line).
                self._close_conn()
                self._count(errors=1)
                self._once("connection", "driftd client: cannot reach %s: %s (retrying)", self.socket, e)
                failures += 1
                if not self._pause(self._backoff(failures)):
                    self._count(dropped=len(lines))
                    return
                continue
            done = a.accepted + a.rejected  # lines the daemon read, from the first
            self._count(sent=a.accepted, rejected=a.rejected)
            for e in a.errors:
                self._once("line:" + _kind(str(e.get("error"))),
                           "driftd rejected a value: %s (errors of this kind are logged once)", e.get("error"))
            if a.status == 200:
                return
            if a.status in (429, 503):
                lines = lines[done:]
                self._count(errors=1)
                self._once("busy:%d" % a.status, "driftd client: the daemon answered %d: %s (retrying)",
                           a.status, a.error)
                failures += 1
                delay = a.retry_after if a.retry_after is not None else max(0.05, self._backoff(failures))
                if not self._pause(delay):
                    self._count(dropped=len(lines))
                    return
                continue
            failures = 0
            if a.status == 413 and done < len(lines):
                # The line after the ones read was too long: it is dropped
                # as rejected, and the rest are sent again.
                self._count(rejected=1)
                self._once("413", "driftd rejected a value: %s (errors of this kind are logged once)", a.error)
                lines = lines[done + 1:]
                continue
            # 400 (every line rejected) or an answer of another kind: what
            # was not read is not sent again.
            rest = len(lines) - done
            if rest > 0:
                self._count(rejected=rest)
            if a.status != 400 or rest > 0:
                self._count(errors=1)
                self._once("status:%d" % a.status, "driftd client: the daemon answered %d: %s", a.status, a.error)
            return

    def _post(self, lines):
        conn = self._conn
        if conn is None:
            conn = self._conn = _UnixConnection(self.socket, self._timeout)
        conn.request("POST", "/v1/metrics", b"".join(lines), {"Content-Type": "application/x-ndjson"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self._close_conn()
        retry_after = None
        ra = resp.getheader("Retry-After")
        if ra is not None:
            try:
                retry_after = min(max(float(ra), 0.0), 3600.0)
            except ValueError:
                pass
        return _Answer(resp.status, data, retry_after)

    def _close_conn(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _backoff(self, failures):
        """The wait after the failures-th failure in a row: none after the
        first (a kept-alive connection the daemon closed), then 50 ms
        doubling up to max_backoff, less up to half at random."""
        if failures <= 1:
            return 0.0
        d = min(self._max_backoff, 0.05 * (2 ** min(failures - 2, 20)))
        return d * (0.5 + random.random() / 2)

    def _pause(self, seconds):
        """Sleep, or return False at once when the client stops."""
        return not self._stop.wait(seconds)

    def _count(self, sent=0, rejected=0, dropped=0, errors=0):
        with self._lock:
            self._sent += sent
            self._rejected += rejected
            self._dropped += dropped
            self._errors += errors

    def _once(self, kind, msg, *args):
        if kind in self._logged or len(self._logged) >= 1000:
            return
        self._logged.add(kind)
        self._log.warning(msg, *args)

    def _after_fork(self):
        conn = self._conn
        self._reset()
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.close()  # the child's copy only
            except OSError:
                pass


def _after_fork_in_child():
    for c in list(_clients):
        c._after_fork()


def _at_exit():
    for c in list(_clients):
        if c._thread is not None and not c._closed:
            c.close(c._exit_timeout)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
