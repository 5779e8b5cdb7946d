"""A lock with a fencing token and a blocking wait, guarding a resource that refuses
stale tokens.

`LOCK key owner lease-ms WAIT timeout-ms` takes the lock or waits for it, and answers
a fencing token that grows with every acquisition, whichever node answered
(docs/versions-and-locks.md). A lease alone cannot protect a resource: a holder that
pauses past its lease (GC, swap, a partition) goes on writing while the next holder
works. So each write to the resource carries the token, and the resource refuses any
token lower than the highest it has seen.

Several workers take turns through different nodes, each reading the resource's value
and writing it back plus one (a lost update if two ever worked at once). Then a holder
with a short lease pauses past it, another worker takes the lock, and the paused
holder's late write is refused.

Usage: fencing_lock.py [host:port ...]   (default: the README's cluster)
"""
import threading
import time
import uuid

from nodes import addresses, client, fail, run_together, until_answered

LOCK_KEY = "example:lock"
WORKERS = 4  # spread over the nodes
ROUNDS = 4  # lock holds by each worker
LEASE_MS = 10_000  # far longer than a hold: a worker's lease never runs out here
WAIT_MS = 8_000  # longest a worker waits for its turn: below the reply timeout (nodes.py)
SHORT_LEASE_MS = 300  # the paused holder's


class StaleToken(Exception):
    """The resource refused a write: its token is lower than one it has seen."""


class FencedResource:
    """Stands for the storage the lock protects (a file store, another database). It
    knows nothing of the lock, only the highest fencing token it has seen."""

    def __init__(self):
        self._mutex = threading.Lock()
        self.highest = 0
        self.value = 0
        self.tokens = []  # every token it accepted, in the order it saw them

    def _admit(self, token):
        if token < self.highest:
            raise StaleToken(f"token {token} is below {self.highest}")
        self.highest = token
        self.tokens.append(token)

    def read(self, token):
        with self._mutex:
            self._admit(token)
            return self.value

    def write(self, token, value):
        with self._mutex:
            self._admit(token)
            self.value = value


def acquire(r, owner, lease_ms):
    """The fencing token of a hold by `owner`, waiting up to WAIT_MS for it. LOCK by the
    current owner takes the lock again, so resending it after any error is safe."""
    lock = ("LOCK", LOCK_KEY, owner, lease_ms, "WAIT", WAIT_MS)
    token = until_answered(lambda: r.execute_command(*lock))
    if token is None:
        fail(f"{owner} waited {WAIT_MS} ms without getting the lock")
    return int(token)


def release(r, owner):
    """True if `owner` still held the lock and released it. Under a request id, so that
    resending it after an unknown outcome answers the first reply instead of 0."""
    unlock = ("IDEMPOTENT", f"unlock-{owner}", "UNLOCK", LOCK_KEY, owner)
    return until_answered(lambda: r.execute_command(*unlock)) == 1


def add_one_under_lock(resource, token):
    value = resource.read(token)
    time.sleep(0.005)  # the work: another holder at the same time would lose this update
    resource.write(token, value + 1)


def worker(address, resource):
    """ROUNDS holds of the lock through the node at `address`; returns their tokens."""
    r = client(address)
    tokens = []
    for _ in range(ROUNDS):
        owner = f"worker-{uuid.uuid4()}"
        token = acquire(r, owner, LEASE_MS)
        try:
            add_one_under_lock(resource, token)
        except StaleToken as e:
            fail(f"the holder of token {token} was refused ({e}): tokens went backwards")
        if not release(r, owner):
            fail(f"{owner} lost the lock before releasing it")
        tokens.append(token)
    return tokens


def paused_holder_is_fenced_off(nodes, resource):
    """A holder pauses past its lease; the next holder works; the late write fails."""
    slow_node, fast_node = client(nodes[0]), client(nodes[1 % len(nodes)])
    slow, fast = f"slow-{uuid.uuid4()}", f"fast-{uuid.uuid4()}"
    slow_token = acquire(slow_node, slow, SHORT_LEASE_MS)
    value = resource.read(slow_token)
    print(f"{slow} holds the lock with token {slow_token}, read {value}, and pauses")
    # The next worker waits through another node and gets the lock when the lease ends.
    fast_token = acquire(fast_node, fast, LEASE_MS)
    add_one_under_lock(resource, fast_token)
    print(f"its lease ran out; {fast} got token {fast_token} and wrote {resource.value}")
    try:
        resource.write(slow_token, value + 1)
        fail(f"the resource took the paused holder's write with stale token {slow_token}")
    except StaleToken as e:
        print(f"the paused holder's late write was refused: {e}")
    if release(slow_node, slow):
        fail("the paused holder could still release a lock it had lost")
    if not release(fast_node, fast):
        fail(f"{fast} lost the lock before releasing it")
    return fast_token


def main():
    nodes = addresses()
    client(nodes[0]).delete(LOCK_KEY)
    resource = FencedResource()
    per_worker = run_together(lambda i: worker(nodes[i % len(nodes)], resource), WORKERS)
    holds = WORKERS * ROUNDS
    tokens = [t for got in per_worker for t in got]
    print(f"{WORKERS} workers through {len(nodes)} nodes held the lock {holds} times; "
          f"tokens {min(tokens)}..{max(tokens)}")
    if len(set(tokens)) != holds:
        fail("two holds got the same fencing token")
    if resource.value != holds:
        fail(f"the resource counts {resource.value}, expected {holds}: two holders overlapped")
    print(f"resource value {resource.value}: the holds never overlapped")

    last = paused_holder_is_fenced_off(nodes, resource)
    if last <= max(tokens) or resource.value != holds + 1:
        fail(f"after the pause: token {last}, value {resource.value}")
    if resource.tokens != sorted(resource.tokens):
        fail(f"the resource saw tokens go backwards: {resource.tokens}")
    print(f"the resource saw {len(resource.tokens)} tokens, never one going backwards")
    print("OK")


main()
