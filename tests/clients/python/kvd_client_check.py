"""redis-py against a server, as its users write it (tests/clients/README.md).

Usage: kvd_client_check.py HOST PORT. Prints one line per step and `OK` last; any
mismatch raises, so the exit status is non-zero. redis-py 4.3 (Debian 12) speaks RESP2
only and has no client-side cache of its own: tracking is exercised the way its users
did it by hand, CLIENT TRACKING with REDIRECT to a connection subscribed to
`__redis__:invalidate`.
"""
import sys

import redis
from redis.exceptions import ResponseError

TIMEOUT = 10  # seconds for any one reply or message: a hang is a failure, not a wait

host, port = sys.argv[1], int(sys.argv[2])


def connect(**kwargs):
    return redis.Redis(host=host, port=port, socket_timeout=TIMEOUT, **kwargs)


def expect(what, got, want):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")
    print(what, "ok")


def next_message(pubsub):
    """The next message (not a subscribe confirmation), or fail after TIMEOUT."""
    msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=TIMEOUT)
    if msg is None:
        raise SystemExit("no pub/sub message within the timeout")
    return msg


r = connect()
other = connect()
expect("connect", r.ping(), True)
r.flushall()  # start empty, so the program may run again on one server

binary = bytes(range(256)) + b"\r\n\x00end"
r.set(b"bin\x00key\xff", binary)
expect("binary set/get", r.get(b"bin\x00key\xff"), binary)

pipe = r.pipeline(transaction=False)
for i in range(500):
    pipe.set(f"p:{i}", i)
for i in range(500):
    pipe.get(f"p:{i}")
pipe.incr("p:counter")
replies = pipe.execute()
expect("pipeline sets", replies[:500], [True] * 500)
expect("pipeline gets", replies[500:1000], [str(i).encode() for i in range(500)])
expect("pipeline incr", replies[1000], 1)

# WATCH retry: redis-py's transaction() re-runs the function on WatchError. On the
# first run another connection changes the watched key between WATCH and EXEC, so the
# retry path is taken; the second run is left alone and commits.
r.set("balance", 100)
runs = []


def withdraw(pipe):
    runs.append(1)
    balance = int(pipe.get("balance"))
    if len(runs) == 1:
        other.incrby("balance", 50)
    pipe.multi()
    pipe.set("balance", balance - 30)


r.transaction(withdraw, "balance")
expect("watch retry runs", len(runs), 2)
expect("watch retry result", r.get("balance"), b"120")

r.set("text", "not a number")
try:
    r.incr("text")
    raise SystemExit("INCR of a non-integer did not raise")
except ResponseError as e:
    expect("error reply", str(e), "value is not an integer or out of range")
try:
    r.execute_command("GET", "a", "b")
    raise SystemExit("GET with two keys did not raise")
except ResponseError as e:
    expect("arity error", str(e), "wrong number of arguments for 'get' command")
expect("connection usable after errors", r.get("text"), b"not a number")

sub = connect().pubsub()
sub.subscribe("news")
confirmation = sub.get_message(timeout=TIMEOUT)
expect("subscribe", (confirmation["type"], confirmation["channel"]), ("subscribe", b"news"))
expect("publish receivers", other.publish("news", binary), 1)
msg = next_message(sub)
expect("message", (msg["channel"], msg["data"]), (b"news", binary))
sub.psubscribe("n*")
sub.get_message(timeout=TIMEOUT)  # psubscribe confirmation
expect("publish to channel and pattern", other.publish("news", "x"), 2)
expect("message then pmessage", [next_message(sub)["type"], next_message(sub)["type"]],
       ["message", "pmessage"])
sub.close()

# Client-side caching by hand: invalidations redirected to a RESP2 subscriber.
inval = connect(client_name="kvd-check-invalidations").pubsub()
inval.subscribe("__redis__:invalidate")
inval.get_message(timeout=TIMEOUT)
inval_id = next(c["id"] for c in r.client_list() if c["name"] == "kvd-check-invalidations")
cached = connect(single_connection_client=True)
cached.client_tracking_on(clientid=int(inval_id))
expect("tracked read", cached.get("balance"), b"120")
other.set("balance", 0)
msg = next_message(inval)
expect("invalidation", (msg["channel"], msg["data"]), (b"__redis__:invalidate", [b"balance"]))
inval.close()

print("OK")
