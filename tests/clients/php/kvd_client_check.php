<?php
// Predis against a server, as its users write it (tests/clients/README.md).
//
// Usage: php kvd_client_check.php HOST PORT (Debian's php-predis in /usr/share/php).
// Prints one line per step and `OK` last; any mismatch exits non-zero. Predis 1.1
// (Debian 12) speaks RESP2 only and has no client-side cache: tracking is exercised by
// hand, CLIENT TRACKING with REDIRECT to a connection subscribed to
// `__redis__:invalidate`.

require 'Predis/autoload.php';

use Predis\Response\ServerException;

const TIMEOUT = 10; // seconds for any one reply or message: a hang is a failure

set_error_handler(function ($severity, $message, $file, $line) {
    throw new ErrorException($message, 0, $severity, $file, $line);
});

function fail($why)
{
    fwrite(STDERR, $why . "\n");
    exit(1);
}

function expect($what, $got, $want)
{
    if ($got !== $want) {
        fail("$what: got " . var_export($got, true) . ', want ' . var_export($want, true));
    }
    echo "$what ok\n";
}

function connect()
{
    global $argv;
    $client = new Predis\Client([
        'host' => $argv[1],
        'port' => (int) $argv[2],
        'timeout' => TIMEOUT,
        'read_write_timeout' => TIMEOUT,
    ]);
    $client->connect();
    return $client;
}

// The next delivery of a pub/sub consumer (a read that times out throws).
function next_delivery($consumer)
{
    $consumer->next();
    return $consumer->current();
}

function main()
{
    $r = connect();
    $other = connect();
    expect('connect', (string) $r->ping(), 'PONG');
    $r->flushall(); // start empty, so the program may run again on one server

    $key = "bin\x00key\xff";
    $binary = implode('', array_map('chr', range(0, 255))) . "\r\n\x00end";
    $r->set($key, $binary);
    expect('binary set/get', $r->get($key), $binary);

    $replies = $r->pipeline(function ($pipe) {
        for ($i = 0; $i < 500; $i++) {
            $pipe->set("p:$i", $i);
        }
        for ($i = 0; $i < 500; $i++) {
            $pipe->get("p:$i");
        }
        $pipe->incr('p:counter');
    });
    expect('pipeline sets', array_map('strval', array_slice($replies, 0, 500)), array_fill(0, 500, 'OK'));
    expect('pipeline gets', array_slice($replies, 500, 500), array_map('strval', range(0, 499)));
    expect('pipeline incr', $replies[1000], 1);

    // WATCH retry: Predis's check-and-set transaction re-runs the callable when EXEC is
    // aborted. On the first run another connection changes the watched key between
    // WATCH and EXEC, so the retry path is taken.
    $r->set('balance', 100);
    $runs = 0;
    $r->transaction(['watch' => 'balance', 'cas' => true, 'retry' => 3],
        function ($tx) use (&$runs, $other) {
            $runs++;
            $balance = (int) $tx->get('balance');
            if ($runs === 1) {
                $other->incrby('balance', 50);
            }
            $tx->multi();
            $tx->set('balance', $balance - 30);
        });
    expect('watch retry runs', $runs, 2);
    expect('watch retry result', $r->get('balance'), '120');

    $r->set('text', 'not a number');
    try {
        $r->incr('text');
        fail('INCR of a non-integer did not throw');
    } catch (ServerException $e) {
        expect('error reply', $e->getMessage(), 'ERR value is not an integer or out of range');
    }
    try {
        $r->executeCommand($r->createCommand('GET', ['a', 'b']));
        fail('GET with two keys did not throw');
    } catch (ServerException $e) {
        expect('arity error', $e->getMessage(), "ERR wrong number of arguments for 'get' command");
    }
    expect('connection usable after errors', $r->get('text'), 'not a number');

    $sub = connect()->pubSubLoop();
    $sub->subscribe('news');
    $confirmation = $sub->current();
    expect('subscribe', [$confirmation->kind, $confirmation->channel], ['subscribe', 'news']);
    expect('publish receivers', $other->publish('news', $binary), 1);
    $msg = next_delivery($sub);
    expect('message', [$msg->kind, $msg->channel, $msg->payload], ['message', 'news', $binary]);
    $sub->psubscribe('n*');
    next_delivery($sub); // psubscribe confirmation
    expect('publish to channel and pattern', $other->publish('news', 'x'), 2);
    expect('message then pmessage', [next_delivery($sub)->kind, next_delivery($sub)->kind],
        ['message', 'pmessage']);
    $sub->stop(true);

    // Client-side caching by hand: invalidations redirected to a RESP2 subscriber.
    $invalClient = connect();
    $invalId = $invalClient->client('ID');
    $inval = $invalClient->pubSubLoop();
    $inval->subscribe('__redis__:invalidate');
    $inval->current(); // subscribe confirmation
    expect('tracking on', (string) $r->executeRaw(['CLIENT', 'TRACKING', 'ON', 'REDIRECT', $invalId]), 'OK');
    expect('tracked read', $r->get('balance'), '120');
    $other->set('balance', 0);
    $msg = next_delivery($inval);
    expect('invalidation', [$msg->channel, $msg->payload], ['__redis__:invalidate', ['balance']]);

    echo "OK\n";
}

try {
    main();
} catch (Throwable $e) {
    fail('failed: ' . get_class($e) . ': ' . $e->getMessage());
}
