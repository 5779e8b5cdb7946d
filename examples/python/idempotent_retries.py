"""Retries that are safe: exponential backoff with jitter, and a request id per logical
request so that a retry never applies it twice.

A client that sent INCR and lost the connection before the reply cannot know whether it
counted. Sending it again may count it twice; not sending it may count it never. Wrapped
as `IDEMPOTENT <request-id> INCR key`, the retry (through any node) returns the first
attempt's reply if that attempt was applied, and applies it otherwise
(docs/versions-and-locks.md, docs/consistency.md "Idempotent retries").

Failures are injected on purpose: some requests drop their connection right after
sending, some read the reply and act as if it never came. Every request is then retried
through the next node. The counter must equal the number of requests.

Usage: idempotent_retries.py [host:port ...]   (default: the README's cluster)
"""
import random
import time
import uuid

import redis

from nodes import addresses, client, fail, nothing_written, outcome_unknown, run_together

KEY = "example:orders"
UNSAFE_KEY = "example:orders-without-ids"
WORKERS = 3
REQUESTS = 8  # by each worker
ATTEMPTS = 8  # per request, the first included
BASE_DELAY = 0.01  # seconds before the first retry, doubled each time ...
MAX_DELAY = 0.5  # ... up to this


class InjectedFailure(Exception):
    """A failure this program causes on purpose."""


def send_and_drop(r, *command):
    """Sends a command and closes the connection without reading the reply: what a
    client sees when the network breaks after the request left."""
    conn = r.connection_pool.get_connection(command[0])
    try:
        conn.send_command(*command)
    finally:
        conn.disconnect()
        r.connection_pool.release(conn)


def retryable(error):
    """Errors after which the request may or may not have been applied, or surely was
    not: with a request id, sending it again is safe after any of them."""
    return isinstance(error, InjectedFailure) or nothing_written(error) or outcome_unknown(error)


def backoff(attempt):
    """Full jitter (a random wait up to the exponential bound), so that clients failing
    together do not retry together."""
    time.sleep(random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**attempt)))


def increment_once(clients, first_node, inject, log):
    """One logical increment, retried until it is known to be applied; returns its
    reply (the counter's value after it)."""
    command = ("IDEMPOTENT", f"order-{uuid.uuid4()}", "INCR", KEY)
    first_reply = None
    for attempt in range(ATTEMPTS):
        r = clients[(first_node + attempt) % len(clients)]  # each retry through the next node
        try:
            if attempt == 0 and inject == "drop":
                send_and_drop(r, *command)
                raise InjectedFailure("connection dropped before the reply")
            reply = r.execute_command(*command)
            if attempt == 0 and inject == "lose reply":
                first_reply = reply
                raise InjectedFailure(f"reply {reply} treated as lost")
        except (InjectedFailure, redis.RedisError) as e:
            if not retryable(e):
                raise
            log.append(f"attempt {attempt + 1} of {command[1]}: {e}; retrying")
            backoff(attempt)
            continue
        if first_reply is not None and reply != first_reply:
            fail(f"{command[1]}: the retry answered {reply}, the first attempt {first_reply}")
        return reply
    fail(f"{command[1]}: no answer after {ATTEMPTS} attempts")


def worker(nodes, index, log):
    """REQUESTS increments, starting at node `index`; returns their replies."""
    clients = [client(a) for a in nodes]
    injected = [None, "drop", "lose reply"]
    return [
        increment_once(clients, index % len(nodes), injected[i % 3], log)
        for i in range(REQUESTS)
    ]


def main():
    nodes = addresses()
    client(nodes[0]).delete(KEY, UNSAFE_KEY)
    log = []  # list.append is atomic in CPython
    replies = [r for got in run_together(lambda i: worker(nodes, i, log), WORKERS) for r in got]
    for line in log[:4]:
        print(line)
    requests = WORKERS * REQUESTS
    print(f"{requests} requests by {WORKERS} workers, {len(log)} retries after injected "
          f"or real failures, each retry through another node")

    final = int(client(nodes[-1]).get(KEY) or 0)
    print(f"counter = {final}")
    if sorted(replies) != list(range(1, requests + 1)) or final != requests:
        fail(f"expected {requests} with replies 1..{requests}, got {sorted(replies)}")
    print("every request counted once, however often it was sent")

    # The same lost reply without a request id: the retry counts again.
    r = client(nodes[0])
    r.incr(UNSAFE_KEY)  # reply "lost"
    r.incr(UNSAFE_KEY)  # the retry
    unsafe = int(r.get(UNSAFE_KEY))
    print(f"without a request id, one increment retried once counts {unsafe} times")
    if unsafe != 2:
        fail(f"plain INCR retried: {unsafe}, expected 2")
    print("OK")


main()
