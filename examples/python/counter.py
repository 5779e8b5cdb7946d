"""A counter incremented at once by several clients through different nodes.

Every INCR on a kvd cluster is a consensus round on the key's replicas, so increments
through different nodes never overwrite each other: the sum is exact. An INCR whose
outcome the client did not learn (a broken connection, TIMEOUT) may or may not have
counted; the final value must then lie between the acknowledged increments and those
plus the unknown ones, and the example checks exactly that.

Usage: counter.py [host:port ...]   (default: the three nodes of the README's cluster)
"""
import redis

from nodes import addresses, client, fail, run_together, unless_nothing_written

KEY = "example:counter"
CLIENTS = 6  # spread over the nodes: two per node on three nodes
INCREMENTS = 25  # by each client


def increment_many(address):
    """INCRs by one client: (the replies it got, how many ended of unknown outcome)."""
    r = client(address)
    replies, unknown = [], 0
    for _ in range(INCREMENTS):
        try:
            replies.append(unless_nothing_written(lambda: r.incr(KEY)))
        except redis.RedisError as e:
            print(f"unknown outcome through {address}: {e!r}")
            unknown += 1
    return replies, unknown


def main():
    nodes = addresses()
    client(nodes[0]).delete(KEY)
    results = run_together(lambda i: increment_many(nodes[i % len(nodes)]), CLIENTS)
    replies = [reply for got, _ in results for reply in got]
    unknown = sum(u for _, u in results)
    print(f"{CLIENTS} clients through {len(nodes)} nodes: {len(replies)} INCRs acknowledged, "
          f"{unknown} of unknown outcome")

    if len(set(replies)) != len(replies):
        fail("two INCRs got the same reply: one increment was lost")
    finals = {address: int(client(address).get(KEY) or 0) for address in nodes}
    print("final value through each node:", finals)
    if len(set(finals.values())) != 1:
        fail("the nodes disagree on the counter")
    final = finals[nodes[0]]
    if not len(replies) <= final <= len(replies) + unknown:
        fail(f"counter {final}, expected between {len(replies)} and {len(replies) + unknown}")
    print(f"counter = {final}: every acknowledged increment counted once")
    print("OK")


main()
