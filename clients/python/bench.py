"""What the client costs, against a running agent.

    PYTHONPATH=clients/python python3 clients/python/bench.py SOCKET [N]

Prints one JSON object:
- push_us_paced: the time push() takes on the caller's thread, with the
  sender running, at about 20,000 pushes a second (a busy serving app);
- push_us_flat_out: the same, pushing as fast as one thread can (timeit),
  the sender sending what it can and the queue dropping the rest;
- metrics_per_s: N metrics pushed as fast as possible into a queue that
  holds them all, until flush() returns: what one process delivers.
"""

import json
import sys
import time
import timeit

import driftd


def main():
    socket = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    out = {"python": sys.version.split()[0], "n": n}

    c = driftd.Client(socket=socket)
    push = c.push
    spent, count = 0.0, 0
    clock = time.perf_counter
    end = clock() + 3
    while clock() < end:
        t0 = clock()
        for _ in range(100):
            push("bench", "paced", accuracy=0.95, latency_ms=12.5)
        spent += clock() - t0
        count += 100
        time.sleep(0.005)
    c.flush(60)
    out["push_us_paced"] = round(spent / count * 1e6, 3)
    out["paced"] = c.stats()

    t = timeit.timeit(lambda: push("bench", "flat", accuracy=0.95, latency_ms=12.5), number=n)
    c.flush(60)
    out["push_us_flat_out"] = round(t / n * 1e6, 3)
    out["flat_out"] = c.stats()
    c.close()

    c = driftd.Client(socket=socket, queue_size=n)
    push = c.push
    t0 = clock()
    for _ in range(n):
        push("bench", "throughput", accuracy=0.95, latency_ms=12.5)
    c.flush(600)
    out["metrics_per_s"] = round(n / (clock() - t0))
    out["throughput"] = c.stats()
    c.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
