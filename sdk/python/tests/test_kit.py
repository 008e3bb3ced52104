"""Unit tests of the kit's pure parts. The protocol itself is tested from Go,
against the real daemon side, in e2e/python_test.go, which also runs these:
python3 -m unittest discover -s sdk/python/tests -t sdk/python"""

import io
import json
import logging
import os
import sys
import unittest
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

from driftd_plugin import (  # noqa: E402
    BOOL,
    DOMAIN_BINARY,
    DRIFT,
    NUMBER,
    STRING,
    Attribute,
    BadRequest,
    Batch,
    ConfigErrors,
    Detector,
    Info,
    Streams,
    apply_schema,
)
from driftd_plugin import log, schema, server  # noqa: E402

import meanshift  # noqa: E402

SCHEMA = [
    Attribute("limit", NUMBER, required=True),
    Attribute("label", STRING, default="x"),
    Attribute("strict", BOOL, default=False),
    Attribute("scale", NUMBER, default=2.0),
]


class SchemaTest(unittest.TestCase):
    def test_defaults(self):
        self.assertEqual(apply_schema(SCHEMA, {"limit": 3}), {"limit": 3.0, "label": "x", "strict": False, "scale": 2.0})

    def test_every_problem(self):
        with self.assertRaises(ConfigErrors) as cm:
            apply_schema(SCHEMA, {"label": 1.0, "strict": 1.0, "colour": "red"})
        got = sorted((e.attribute, e.message) for e in cm.exception.errors)
        self.assertEqual(
            got,
            [
                ("colour", "unsupported attribute"),
                ("label", "must be a string, not a number"),
                ("limit", "required attribute is missing"),
                ("strict", "must be a bool, not a number"),
            ],
        )

    def test_bool_is_not_a_number(self):
        with self.assertRaises(ConfigErrors):
            apply_schema(SCHEMA, {"limit": True})

    def test_validate(self):
        schema.validate(SCHEMA)
        for bad in (
            [Attribute("", NUMBER)],
            [Attribute("a", NUMBER), Attribute("a", NUMBER)],
            [Attribute("a", "list")],
            [Attribute("a", NUMBER, default="1")],
        ):
            with self.assertRaises(ValueError):
                schema.validate(bad)


class Above(Streams, Detector):
    def info(self):
        return Info(name="above")

    def configure(self, config):
        self.new = lambda: AboveState()


class AboveState:
    def update(self, x):
        return (DRIFT, {"value": x}) if x > 1 else None


class Twice:
    def update(self, x):
        return [("warning", {}), (DRIFT, {"x": x})] if x > 1 else None


class StreamsTest(unittest.TestCase):
    def test_several_signals_for_one_value(self):
        d = Above()
        d.new = Twice
        sigs = d.update([Batch("a", 5, [0, 2, 0, 3])])
        self.assertEqual([(s.index, s.type) for s in sigs], [(6, "warning"), (6, DRIFT), (8, "warning"), (8, DRIFT)])

    def test_indices_and_streams(self):
        d = Above()
        d.configure({})
        sigs = d.update([Batch("a", 10, [0, 2, 0]), Batch("b", 0, [5])])
        self.assertEqual([(s.stream, s.index, s.type) for s in sigs], [("a", 11, DRIFT), ("b", 0, DRIFT)])
        self.assertEqual(len(d), 2)
        d.reset("a")
        self.assertEqual(len(d), 1)

    def test_refuses_before_applying(self):
        d = Above()
        d.configure({})
        with self.assertRaises(BadRequest):
            d.update([Batch("a", 0, [2]), Batch("b", 0, [1, float("nan")])])
        self.assertEqual(len(d), 0, "no value of a refused call may be applied")
        d.domain = DOMAIN_BINARY
        with self.assertRaises(BadRequest):
            d.update([Batch("a", 0, [0, 1, 0.5])])
        self.assertEqual(d.update([Batch("a", 0, [0, 1])]), [])

    def test_domain_from_info(self):
        class Rate(Above):
            def info(self):
                return Info(name="rate", domain=DOMAIN_BINARY)

        d = Rate()
        d.configure({})
        with self.assertRaises(BadRequest):
            d.update([Batch("a", 0, [0, 1, 0.5])])
        self.assertEqual(len(d), 0, "no value of a refused call may be applied")
        self.assertEqual(d.update([Batch("a", 0, [0, 1])]), [])


class LogTest(unittest.TestCase):
    def test_hclog_json(self):
        out = io.StringIO()
        logger = logging.getLogger("test_hclog_json")
        logger.propagate = False
        logger.addHandler(log.HclogHandler(out))
        logger.setLevel(log.TRACE)
        logger.warning("hello %s", "there", extra={"window": 5})
        logger.log(log.TRACE, "fine")
        first, second = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual(first["@level"], "warn")
        self.assertEqual(first["@message"], "hello there")
        self.assertEqual(first["window"], 5)
        # go-plugin parses the timestamp with Go's layout 2006-01-02T15:04:05.000000Z07:00.
        datetime.strptime(first["@timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertRegex(first["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(second["@level"], "trace")


class CodecTest(unittest.TestCase):
    def test_stdio_data(self):
        # StdioData{channel: STDOUT, data: "hi"}
        self.assertEqual(server._stdio_data(1, b"hi"), b"\x08\x01\x12\x02hi")
        self.assertEqual(server._stdio_data(1, b"x" * 300)[:5], b"\x08\x01\x12\xac\x02")

    def test_health_request(self):
        self.assertEqual(server._health_request_service(b"\x0a\x06plugin"), "plugin")
        self.assertEqual(server._health_request_service(b""), "")


class MeanShiftTest(unittest.TestCase):
    def state(self, **kw):
        cfg = apply_schema(meanshift.MeanShift().schema(), dict({"threshold": 0.1, "reference": 4, "recent": 2}, **kw))
        d = meanshift.MeanShift()
        d.configure(cfg)
        return d.new()

    def test_shift(self):
        st = self.state()
        got = [st.update(x) for x in [0.9] * 6 + [0.7, 0.7]]
        # At 6 the recent mean is 0.8, not more than 0.1 below 0.9; at 7, 0.7.
        self.assertEqual([i for i, r in enumerate(got) if r], [7])
        self.assertAlmostEqual(got[7][1]["difference"], -0.2)
        self.assertAlmostEqual(got[7][1]["reference_mean"], 0.9)
        # Reset after the drift: 5 more values before the next test.
        self.assertEqual([st.update(0.1) for _ in range(5)], [None] * 5)

    def test_direction(self):
        st = self.state(direction="up")
        self.assertFalse(any(st.update(x) for x in [0.9] * 6 + [0.1] * 4))

    def test_config_errors(self):
        d = meanshift.MeanShift()
        cfg = apply_schema(d.schema(), {"threshold": -1, "recent": 0.5, "direction": "sideways"})
        with self.assertRaises(ConfigErrors) as cm:
            d.configure(cfg)
        self.assertEqual(sorted(e.attribute for e in cm.exception.errors), ["direction", "recent", "threshold"])


if __name__ == "__main__":
    unittest.main()
