"""redis-py's own client-side cache (redis-py 5.1 and later, from PyPI) against a server.

Usage: kvd_client_cache.py HOST PORT (tests/clients/README.md). The cache needs RESP3:
redis-py sends HELLO 3, then CLIENT TRACKING ON (default mode) on each connection of the
pool, keeps GET replies in its own dictionary, and drops an entry when the server's
`invalidate` push names its key (a null key list, after a flush, drops everything).

Prints one line per step and `OK` last; any mismatch raises (exit status 1). redis-py
only starts its cache when HELLO reports `server: redis` and a version of at least 7.4
(its CacheProxyConnection.connect); when it refuses, the program prints
`REFUSED: <the library's message>` last and exits with status 3, so the caller can tell a
refusal from a failure.
"""
import sys
import time

import redis
from redis.cache import CacheConfig

TIMEOUT = 10  # seconds for any one reply, and for an invalidation to take effect
REFUSED_STATUS = 3

host, port = sys.argv[1], int(sys.argv[2])


def expect(what, got, want):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")
    print(what, "ok")


def get_calls(conn):
    """GETs the server has run, from its INFO commandstats."""
    return conn.info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def cached_values(cache, key):
    """The values the library's cache holds for `key` (one per cached command)."""
    return [
        entry.cache_value
        for cache_key, entry in list(cache.collection.items())
        if key in cache_key.redis_keys
    ]


def until(what, cond):
    """Polls `cond` until it holds, failing after TIMEOUT: the invalidation push reaches
    the caching connection some time after the writer's reply."""
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {TIMEOUT} s")
        time.sleep(0.01)
    print(what, "ok")


print("redis-py", redis.__version__)
# A plain connection (RESP2, no cache) writes and reads the server's command counts.
plain = redis.Redis(host=host, port=port, socket_timeout=TIMEOUT)
plain.flushall()  # start empty, so the program may run again on one server
plain.set("cached", "v1")

cached = redis.Redis(
    host=host,
    port=port,
    protocol=3,
    cache_config=CacheConfig(),
    socket_timeout=TIMEOUT,
)
try:
    cached.ping()
except redis.ConnectionError as e:
    if "7.4 or later" not in str(e):
        raise
    print("server reports redis_version", plain.info("server")["redis_version"])
    print(f"REFUSED: {e}")
    sys.exit(REFUSED_STATUS)
cache = cached.get_cache()
if cache is None:
    raise SystemExit("redis-py started without its cache")
tracking = cached.execute_command("CLIENT", "TRACKINGINFO")
expect("CLIENT TRACKING ON by the library", tracking[b"flags"], [b"on"])

before = get_calls(plain)
expect("first GET (from the server)", cached.get("cached"), b"v1")
expect("the cache holds the reply", cached_values(cache, "cached"), [b"v1"])
expect("second GET (from the cache)", cached.get("cached"), b"v1")
expect("GETs that reached the server", get_calls(plain) - before, 1)

# Another connection's write: the server pushes `invalidate [cached]` to the caching
# connection, which drops the entry; the next GET goes to the server and sees v2.
plain.set("cached", "v2")
until("new value after the invalidation", lambda: cached.get("cached") == b"v2")
expect("GETs that reached the server", get_calls(plain) - before, 2)
expect("the cache holds the new reply", cached_values(cache, "cached"), [b"v2"])

# FLUSHALL: the push carries a null key list and the library empties its cache.
plain.flushall()
until("miss after FLUSHALL", lambda: cached.get("cached") is None)
print("OK")
