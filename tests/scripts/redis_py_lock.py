"""redis-py's Lock against a server, as its users run it (tests/tests/scripting_clients.rs).

Acquire, a second client refused, extend, reacquire, release by a non-owner refused by
the release script, release, and release again after SCRIPT FLUSH (EVALSHA answers
NOSCRIPT and redis-py loads the script again). Prints OK on success.
"""
import sys

import redis
from redis.exceptions import LockNotOwnedError

r = redis.Redis(port=int(sys.argv[1]))
lock = r.lock("resource", timeout=10)
assert lock.acquire(blocking=False), "acquire"
assert not r.lock("resource", timeout=10).acquire(blocking=False), "second acquire"
assert lock.extend(5), "extend"
ttl = r.pttl("resource")
assert 10000 < ttl <= 15000, ttl
assert lock.reacquire(), "reacquire"
assert r.pttl("resource") <= 10000
intruder = r.lock("resource", timeout=10)
intruder.local.token = b"not-the-owner"
try:
    intruder.release()
    raise SystemExit("a non-owner released the lock")
except LockNotOwnedError:
    pass
assert r.get("resource") is not None
lock.release()
assert r.get("resource") is None, "released"
assert lock.acquire(blocking=False), "acquire again"
r.script_flush()
lock.release()
assert r.get("resource") is None, "released after SCRIPT FLUSH"
print("OK")
