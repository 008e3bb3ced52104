"""pyprobe: a test-only Python detector that exercises every path of the
Python plugin kit: config checks, a log line, stray stdout, a refused value,
a crash inside Update. It raises a drift for every value above `limit`."""

from driftd_plugin import BOOL, DRIFT, NUMBER, STRING, Attribute, BadRequest, ConfigError, Detector, Info, Streams, logger, serve


class Probe(Streams, Detector):
    def info(self):
        return Info(name="pyprobe", version="0.0.1", description="test probe")

    def schema(self):
        return [
            Attribute("limit", NUMBER, required=True, description="drift above this"),
            Attribute("label", STRING, default="x"),
            Attribute("strict", BOOL, default=False),
        ]

    def configure(self, config):
        if config.get("label") == "boom":
            raise ValueError("the label blew up")
        if config.get("limit", 0) < 0:
            raise ConfigError("limit", "must be >= 0")
        limit = config["limit"]
        logger.info("pyprobe configured", extra={"limit": limit})
        self.new = lambda: State(limit)


class State:
    def __init__(self, limit):
        self.limit = limit

    def update(self, x):
        if x == 7:
            print(f"stray stdout line for {x}")
        if x == 13:
            raise RuntimeError("unlucky 13")
        if x == 42:
            raise BadRequest("42 is not a value")
        if x > self.limit:
            return DRIFT, {"value": x}
        return None


if __name__ == "__main__":
    serve(Probe())
