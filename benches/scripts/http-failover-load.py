#!/usr/bin/env python3
"""HTTP load that retries on the next node, as a load balancer in front of the cluster
would: the failover half of benches/scripts/http-vs-resp.sh (docs/performance.md).

Each of C threads holds one keep-alive connection to a node's HTTP port and loops over
PUT /kv/key:N and GET /kv/key:N (half each, random keys). A request that fails (no
connection, a reset, a timeout, a 5xx) is retried on the next node, up to one attempt
per node; an operation counts as failed only when every node failed it. Prints one
line per second (operations, failed, retried) and a summary: operations that
succeeded, the share of them, and the share that succeeded at the first attempt.

Usage: http-failover-load.py SECONDS CONNECTIONS PORT [PORT...]
Standard library only (no pip install).
"""

import http.client
import random
import sys
import threading
import time

TIMEOUT_S = 5.0
KEYS = 1000
VALUE = b"v" * 100


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.retried = 0

    def add(self, ok, retried):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
            if retried:
                self.retried += 1

    def snapshot(self):
        with self.lock:
            return self.ok, self.failed, self.retried


def one_request(conn, method, path):
    """True if the node answered with a non-5xx status (404 on GET is an answer)."""
    headers = {"Content-Type": "application/octet-stream"}
    body = VALUE if method == "PUT" else None
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status < 500


def worker(ports, start_index, stop_at, counters):
    node = start_index % len(ports)
    conn = None
    while time.monotonic() < stop_at:
        method = "PUT" if random.random() < 0.5 else "GET"
        path = "/kv/key:%012d" % random.randrange(KEYS)
        ok = False
        attempts = 0
        while attempts < len(ports) and not ok:
            attempts += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", ports[node], timeout=TIMEOUT_S)
                ok = one_request(conn, method, path)
            except (OSError, http.client.HTTPException):
                ok = False
            if not ok:
                if conn is not None:
                    conn.close()
                conn = None
                node = (node + 1) % len(ports)
        counters.add(ok, attempts > 1)
    if conn is not None:
        conn.close()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    seconds = float(sys.argv[1])
    connections = int(sys.argv[2])
    ports = [int(p) for p in sys.argv[3:]]
    counters = Counters()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=worker, args=(ports, i, stop_at, counters), daemon=True)
        for i in range(connections)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    last = (0, 0, 0)
    while time.monotonic() < stop_at:
        time.sleep(1.0)
        now = counters.snapshot()
        print(
            "t=%3.0fs ops=%6d failed=%4d retried=%4d"
            % (time.monotonic() - started, now[0] + now[1] - last[0] - last[1],
               now[1] - last[1], now[2] - last[2]),
            flush=True,
        )
        last = now
    for t in threads:
        t.join(TIMEOUT_S * len(ports) + 5)
    ok, failed, retried = counters.snapshot()
    total = ok + failed
    if total == 0:
        sys.exit("no operation completed")
    print(
        "summary: %d operations, %d succeeded (%.3f%%), %d failed, %d needed a retry "
        "(%.3f%% succeeded at the first attempt)"
        % (total, ok, 100.0 * ok / total, failed, retried, 100.0 * (total - retried) / total)
    )


if __name__ == "__main__":
    main()
