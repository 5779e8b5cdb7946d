/* hiredis against a server, as its users write it (tests/clients/README.md).
 *
 * Usage: kvd_client_check HOST PORT. Build: gcc kvd_client_check.c -lhiredis (Debian's
 * libhiredis-dev). Prints one line per step and `OK` last; any mismatch exits non-zero.
 * hiredis 0.14 (Debian 12) speaks RESP2 only (RESP3 came in hiredis 1.0) and has no
 * client-side cache: tracking is exercised by hand, CLIENT TRACKING with REDIRECT to a
 * connection subscribed to `__redis__:invalidate`.
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds any one reply or message: a hang is a failure, not a wait. */
static const struct timeval TIMEOUT = {10, 0};

static const char *host;
static int port;

static void fail(const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static redisContext *connect_or_fail(void) {
    redisContext *c = redisConnectWithTimeout(host, port, TIMEOUT);
    if (c == NULL || c->err) fail("connect: %s", c ? c->errstr : "out of memory");
    if (redisSetTimeout(c, TIMEOUT) != REDIS_OK) fail("timeout: %s", c->errstr);
    return c;
}

/* A reply (never NULL: a lost connection ends the program). */
static redisReply *checked(redisContext *c, void *reply, const char *what) {
    if (reply == NULL) fail("%s: %s", what, c->errstr);
    return reply;
}

static redisReply *next_reply(redisContext *c, const char *what) {
    void *reply = NULL;
    if (redisGetReply(c, &reply) != REDIS_OK) fail("%s: %s", what, c->errstr);
    return checked(c, reply, what);
}

/* Checks a status or string reply's text and frees it. */
static void expect_str(const char *what, redisReply *r, const char *want) {
    if ((r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_STRING) || strcmp(r->str, want) != 0)
        fail("%s: reply type %d %s, want %s", what, r->type, r->str ? r->str : "", want);
    freeReplyObject(r);
    printf("%s ok\n", what);
}

static void expect_int(const char *what, redisReply *r, long long want) {
    if (r->type != REDIS_REPLY_INTEGER || r->integer != want)
        fail("%s: reply type %d %lld, want %lld", what, r->type, r->integer, want);
    freeReplyObject(r);
    printf("%s ok\n", what);
}

static void expect_error(const char *what, redisReply *r, const char *want) {
    if (r->type != REDIS_REPLY_ERROR || strcmp(r->str, want) != 0)
        fail("%s: reply type %d %s, want error %s", what, r->type, r->str ? r->str : "", want);
    freeReplyObject(r);
    printf("%s ok\n", what);
}

/* Checks a pub/sub delivery [kind, channel, payload] with a string payload. */
static void expect_message(const char *what, redisReply *r, const char *kind, const char *channel,
                           const char *payload, size_t payload_len) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || strcmp(r->element[0]->str, kind) != 0 ||
        strcmp(r->element[1]->str, channel) != 0)
        fail("%s: not a %s on %s", what, kind, channel);
    redisReply *p = r->element[r->elements - 1];
    if (payload != NULL && (p->type != REDIS_REPLY_STRING || p->len != payload_len ||
                            memcmp(p->str, payload, payload_len) != 0))
        fail("%s: wrong payload", what);
    freeReplyObject(r);
    printf("%s ok\n", what);
}

static void pipeline(redisContext *r) {
    for (int i = 0; i < 500; i++) redisAppendCommand(r, "SET p:%d %d", i, i);
    for (int i = 0; i < 500; i++) redisAppendCommand(r, "GET p:%d", i);
    redisAppendCommand(r, "INCR p:counter");
    char want[16];
    for (int i = 0; i < 500; i++) {
        redisReply *reply = next_reply(r, "pipeline SET");
        if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "OK") != 0) fail("pipeline SET %d", i);
        freeReplyObject(reply);
    }
    for (int i = 0; i < 500; i++) {
        redisReply *reply = next_reply(r, "pipeline GET");
        snprintf(want, sizeof want, "%d", i);
        if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, want) != 0) fail("pipeline GET %d", i);
        freeReplyObject(reply);
    }
    printf("pipeline sets and gets ok\n");
    expect_int("pipeline incr", next_reply(r, "INCR"), 1);
}

/* WATCH/MULTI/EXEC loop; on the first attempt `other` changes the watched key between
 * WATCH and EXEC, so EXEC answers nil and the loop retries. */
static void watch_retry(redisContext *r, redisContext *other) {
    freeReplyObject(checked(r, redisCommand(r, "SET balance 100"), "SET"));
    int attempts = 0;
    for (;;) {
        if (++attempts > 5) fail("WATCH retry did not commit in 5 attempts");
        freeReplyObject(checked(r, redisCommand(r, "WATCH balance"), "WATCH"));
        redisReply *got = checked(r, redisCommand(r, "GET balance"), "GET");
        long balance = got->type == REDIS_REPLY_STRING ? strtol(got->str, NULL, 10) : -1;
        freeReplyObject(got);
        if (attempts == 1)
            freeReplyObject(checked(other, redisCommand(other, "INCRBY balance 50"), "INCRBY"));
        freeReplyObject(checked(r, redisCommand(r, "MULTI"), "MULTI"));
        freeReplyObject(checked(r, redisCommand(r, "SET balance %ld", balance - 30), "SET"));
        redisReply *exec = checked(r, redisCommand(r, "EXEC"), "EXEC");
        int aborted = exec->type == REDIS_REPLY_NIL;
        if (!aborted && (exec->type != REDIS_REPLY_ARRAY || exec->elements != 1))
            fail("EXEC: reply type %d", exec->type);
        freeReplyObject(exec);
        if (!aborted) break;
    }
    if (attempts != 2) fail("watch retry attempts: %d, want 2", attempts);
    printf("watch retry attempts ok\n");
    expect_str("watch retry result", checked(r, redisCommand(r, "GET balance"), "GET"), "120");
}

static void error_replies(redisContext *r) {
    freeReplyObject(checked(r, redisCommand(r, "SET text %s", "not a number"), "SET"));
    expect_error("error reply", checked(r, redisCommand(r, "INCR text"), "INCR"),
                 "ERR value is not an integer or out of range");
    expect_error("arity error", checked(r, redisCommand(r, "GET a b"), "GET"),
                 "ERR wrong number of arguments for 'get' command");
    expect_str("connection usable after errors", checked(r, redisCommand(r, "GET text"), "GET"),
               "not a number");
}

static void pub_sub(redisContext *other, const char *binary, size_t binary_len) {
    redisContext *sub = connect_or_fail();
    expect_message("subscribe", checked(sub, redisCommand(sub, "SUBSCRIBE news"), "SUBSCRIBE"),
                   "subscribe", "news", NULL, 0);
    expect_int("publish receivers",
               checked(other, redisCommand(other, "PUBLISH news %b", binary, binary_len), "PUBLISH"), 1);
    expect_message("message", next_reply(sub, "message"), "message", "news", binary, binary_len);
    expect_message("psubscribe", checked(sub, redisCommand(sub, "PSUBSCRIBE n*"), "PSUBSCRIBE"),
                   "psubscribe", "n*", NULL, 0);
    expect_int("publish to channel and pattern",
               checked(other, redisCommand(other, "PUBLISH news x"), "PUBLISH"), 2);
    expect_message("message first", next_reply(sub, "message"), "message", "news", "x", 1);
    expect_message("then pmessage", next_reply(sub, "pmessage"), "pmessage", "n*", "x", 1);
    redisFree(sub);
}

static void tracking(redisContext *r, redisContext *other) {
    redisContext *inval = connect_or_fail();
    redisReply *id = checked(inval, redisCommand(inval, "CLIENT ID"), "CLIENT ID");
    if (id->type != REDIS_REPLY_INTEGER) fail("CLIENT ID: reply type %d", id->type);
    long long inval_id = id->integer;
    freeReplyObject(id);
    expect_message("subscribe invalidations",
                   checked(inval, redisCommand(inval, "SUBSCRIBE __redis__:invalidate"), "SUBSCRIBE"),
                   "subscribe", "__redis__:invalidate", NULL, 0);
    expect_str("tracking on",
               checked(r, redisCommand(r, "CLIENT TRACKING ON REDIRECT %lld", inval_id), "TRACKING"), "OK");
    expect_str("tracked read", checked(r, redisCommand(r, "GET balance"), "GET"), "120");
    freeReplyObject(checked(other, redisCommand(other, "SET balance 0"), "SET"));
    redisReply *msg = next_reply(inval, "invalidation");
    if (msg->type != REDIS_REPLY_ARRAY || msg->elements != 3 || msg->element[2]->type != REDIS_REPLY_ARRAY ||
        msg->element[2]->elements != 1 || strcmp(msg->element[2]->element[0]->str, "balance") != 0)
        fail("invalidation: not [message __redis__:invalidate [balance]]");
    expect_message("invalidation", msg, "message", "__redis__:invalidate", NULL, 0);
    redisFree(inval);
}

int main(int argc, char **argv) {
    if (argc != 3) fail("usage: %s HOST PORT", argv[0]);
    host = argv[1];
    port = atoi(argv[2]);
    redisContext *r = connect_or_fail();
    redisContext *other = connect_or_fail();
    expect_str("connect", checked(r, redisCommand(r, "PING"), "PING"), "PONG");
    /* Start empty, so the program may run again on one server. */
    freeReplyObject(checked(r, redisCommand(r, "FLUSHALL"), "FLUSHALL"));

    char binary[262];
    for (int i = 0; i < 256; i++) binary[i] = (char)i;
    memcpy(binary + 256, "\r\n\0end", 6);
    const char key[] = "bin\0key\xff";
    freeReplyObject(checked(r, redisCommand(r, "SET %b %b", key, sizeof key - 1, binary, sizeof binary), "SET"));
    redisReply *got = checked(r, redisCommand(r, "GET %b", key, sizeof key - 1), "GET");
    if (got->type != REDIS_REPLY_STRING || got->len != sizeof binary || memcmp(got->str, binary, sizeof binary) != 0)
        fail("binary set/get: wrong value");
    freeReplyObject(got);
    printf("binary set/get ok\n");

    pipeline(r);
    watch_retry(r, other);
    error_replies(r);
    pub_sub(other, binary, sizeof binary);
    tracking(r, other);
    redisFree(r);
    redisFree(other);
    printf("OK\n");
    return 0;
}
