"""Optimistic concurrency: read a value with its version, write only if nobody wrote
since, and when told it lost, retry with the newer version the server sent back.

Several writers add to one balance at once through different nodes. A plain GET and SET
would lose updates (two writers read 5, both write 6); SETIFMATCH writes only if the
key's version is still the one read, and a loser's reply carries the current version
and value, so it retries without another read (docs/versions-and-locks.md). The final
balance proves no update was lost.

Usage: optimistic_concurrency.py [host:port ...]   (default: the README's cluster)
"""
import redis

from nodes import addresses, client, fail, nothing_written, run_together

KEY = "example:balance"
WRITERS = 4  # spread over the nodes
UPDATES = 8  # by each writer, each adding 1


def read_balance(r):
    """(version, balance); version 0 means there is no such key."""
    reply = r.execute_command("GETWITHETAG", KEY)  # None, or [version, value]
    return (0, 0) if reply is None else (int(reply[0]), int(reply[1]))


def add_one(r, tally):
    """Adds 1 to the balance; counts lost races and attempts of unknown outcome."""
    version, value = read_balance(r)
    while True:
        try:
            new_version, current = r.execute_command("SETIFMATCH", KEY, value + 1, version)
        except redis.RedisError as e:
            if not nothing_written(e):
                # It may have been applied: the final check allows for it.
                print(f"unknown outcome: {e!r}")
                tally["unknown"] += 1
                version, value = read_balance(r)
            continue
        if current is None and new_version != 0:
            return  # written: new_version is the key's version now
        # Lost the race: the reply is what is there now ([0, None] if nothing is).
        tally["lost"] += 1
        version, value = int(new_version), int(current or 0)


def writer(address):
    """UPDATES additions by one writer; returns its tally."""
    r = client(address)
    tally = {"lost": 0, "unknown": 0}
    for _ in range(UPDATES):
        add_one(r, tally)
    return tally


def main():
    nodes = addresses()
    client(nodes[0]).set(KEY, 0)
    tallies = run_together(lambda i: writer(nodes[i % len(nodes)]), WRITERS)
    lost = sum(t["lost"] for t in tallies)
    unknown = sum(t["unknown"] for t in tallies)
    updates = WRITERS * UPDATES
    print(f"{WRITERS} writers through {len(nodes)} nodes made {updates} updates; "
          f"{lost} attempts lost a race and were retried with the newer version; "
          f"{unknown} of unknown outcome")

    version, balance = read_balance(client(nodes[-1]))
    print(f"balance = {balance} at version {version}")
    if not updates <= balance <= updates + unknown:
        fail(f"balance {balance}, expected {updates} (plus at most {unknown}): an update was lost")
    print("no update was lost")
    print("OK")


main()
