"""What every example shares: the cluster's nodes, a client per node, and how to tell
an error that wrote nothing from one whose outcome is unknown (docs/consistency.md).

A kvd cluster needs no cluster-aware client: any node serves any key, so the examples
open one plain redis-py client per node and spread their workers over them.
"""
import sys
from concurrent.futures import ThreadPoolExecutor

import redis

# The nodes of `kvtool cluster up --nodes 3 --base-port 7001` (README.md).
DEFAULT_NODES = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
REPLY_TIMEOUT = 10  # seconds for any one reply: a hang is a failure, not a wait


def addresses():
    """The node addresses given as arguments (host:port ...), else DEFAULT_NODES."""
    return sys.argv[1:] or DEFAULT_NODES


def client(address):
    """A plain redis-py client of one node."""
    host, port = address.rsplit(":", 1)
    return redis.Redis(
        host=host,
        port=int(port),
        socket_timeout=REPLY_TIMEOUT,
        socket_connect_timeout=REPLY_TIMEOUT,
    )


def nothing_written(error):
    """True if the error says for sure that the command was not applied: a consensus
    round that kept losing (TRYAGAIN) or too few replicas (CLUSTERDOWN). Anything else
    after the command was sent (a broken connection, TIMEOUT) may have applied it."""
    return isinstance(error, redis.ResponseError) and "nothing was written" in str(error)


def outcome_unknown(error):
    """True if the command may or may not have been applied: the connection broke or
    timed out after it was sent, or the cluster answered TIMEOUT (docs/consistency.md)."""
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        return True
    return isinstance(error, redis.ResponseError) and str(error).startswith("TIMEOUT")


def until_answered(call, attempts=20):
    """call(), sent again after any error that wrote nothing or whose outcome is
    unknown. Only for commands that are safe to repeat: LOCK by its owner, anything
    wrapped in IDEMPOTENT."""
    for _ in range(attempts):
        try:
            return call()
        except redis.RedisError as e:
            if not (nothing_written(e) or outcome_unknown(e)):
                raise
            print(f"sending again after: {e!r}")
    fail(f"no answer after {attempts} attempts")


def unless_nothing_written(call):
    """call(), sent again while it fails with an error saying nothing was written; any
    other error is raised (the caller decides what an unknown outcome means for it)."""
    while True:
        try:
            return call()
        except redis.RedisError as e:
            if not nothing_written(e):
                raise


def fail(message):
    """Ends the program with a non-zero status: an expectation did not hold."""
    print("FAILED:", message)
    sys.exit(1)


def run_together(task, count):
    """Runs task(0) .. task(count - 1) in threads at once and returns their results in
    order; a failure in any (an exception, fail()) ends the program with it."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(task, i) for i in range(count)]
        return [f.result() for f in futures]
