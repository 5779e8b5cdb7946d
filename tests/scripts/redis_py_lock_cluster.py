"""redis-py's Lock against a 3-node kvd cluster, one client per node
(tests/tests/cluster_scripts.rs): the lock is taken through node A, refused to a
second client through node B, extended through A, a release by a non-owner through
node C is refused by the release script, and the owner's token releases it through C.
Each step is a script (or SET NX) run through the key's consensus round, whichever node
runs it. Prints OK on success.
"""
import sys

import redis
from redis.exceptions import LockNotOwnedError

a, b, c = (redis.Redis(port=int(p)) for p in sys.argv[1:4])
lock = a.lock("resource", timeout=10)
assert lock.acquire(blocking=False), "acquire through A"
assert not b.lock("resource", timeout=10).acquire(blocking=False), "second acquire through B"
assert lock.extend(5), "extend through A"
ttl = c.pttl("resource")
assert 10000 < ttl <= 15000, ttl
intruder = c.lock("resource", timeout=10)
intruder.local.token = b"not-the-owner"
try:
    intruder.release()
    raise SystemExit("a non-owner released the lock through C")
except LockNotOwnedError:
    pass
assert b.get("resource") == lock.local.token, "the owner's token is still there"
owner_on_c = c.lock("resource", timeout=10)
owner_on_c.local.token = lock.local.token
owner_on_c.release()
assert a.get("resource") is None, "released through C"
print("OK")
