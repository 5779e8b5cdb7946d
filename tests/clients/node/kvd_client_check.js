// node-redis against a server, as its users write it (tests/clients/README.md).
//
// Usage: node kvd_client_check.js HOST PORT (Debian's node-redis: NODE_PATH=/usr/share/nodejs).
// Prints one line per step and `OK` last; any mismatch exits non-zero. node-redis 4
// (Debian 12) speaks RESP2 only and has no client-side cache: tracking is exercised by
// hand, CLIENT TRACKING with REDIRECT to a connection subscribed to
// `__redis__:invalidate` (node-redis 4 decodes that channel's key lists itself).
'use strict';

const assert = require('assert');
const { createClient, commandOptions, ErrorReply, WatchError } = require('redis');

const TIMEOUT_MS = 10000; // for any one step: a hang is a failure, not a wait

const [host, portText] = process.argv.slice(2);
const port = Number(portText);

function expect(what, got, want) {
  assert.deepStrictEqual(got, want, what);
  console.log(what, 'ok');
}

async function connect() {
  const client = createClient({ socket: { host, port, connectTimeout: TIMEOUT_MS } });
  client.on('error', (e) => fail(`client error: ${e}`));
  await client.connect();
  return client;
}

function fail(why) {
  console.error(why);
  process.exit(1);
}

// A queue of pub/sub deliveries that a step can wait on with a deadline.
function inbox() {
  const items = [];
  const waiters = [];
  return {
    push(item) {
      const w = waiters.shift();
      if (w) w(item); else items.push(item);
    },
    next(what) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve) => {
        const timer = setTimeout(() => fail(`no ${what} within ${TIMEOUT_MS} ms`), TIMEOUT_MS);
        waiters.push((item) => { clearTimeout(timer); resolve(item); });
      });
    },
  };
}

async function main() {
  const r = await connect();
  const other = await connect();
  expect('connect', await r.ping(), 'PONG');
  await r.flushAll(); // start empty, so the program may run again on one server

  const key = Buffer.from('bin\x00key\xff', 'latin1');
  const binary = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from('\r\n\x00end')]);
  await r.set(key, binary);
  expect('binary set/get', await r.get(commandOptions({ returnBuffers: true }), key), binary);

  // Commands issued in one tick are written as one pipeline (node-redis's auto-pipelining),
  // and execAsPipeline sends a batch without MULTI.
  const sets = await Promise.all([...Array(500).keys()].map((i) => r.set(`p:${i}`, String(i))));
  expect('pipeline sets', sets, Array(500).fill('OK'));
  const batch = r.multi();
  for (let i = 0; i < 500; i++) batch.get(`p:${i}`);
  batch.incr('p:counter');
  const replies = await batch.execAsPipeline();
  expect('pipeline gets', replies.slice(0, 500), [...Array(500).keys()].map(String));
  expect('pipeline incr', replies[500], 1);

  // WATCH retry: on the first attempt another connection changes the watched key
  // between WATCH and EXEC, EXEC rejects with WatchError and the loop retries.
  await r.set('balance', '100');
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      await r.executeIsolated(async (iso) => {
        await iso.watch('balance');
        const balance = Number(await iso.get('balance'));
        if (attempts === 1) await other.incrBy('balance', 50);
        await iso.multi().set('balance', String(balance - 30)).exec();
      });
      break;
    } catch (e) {
      if (!(e instanceof WatchError) || attempts > 5) throw e;
    }
  }
  expect('watch retry attempts', attempts, 2);
  expect('watch retry result', await r.get('balance'), '120');

  await r.set('text', 'not a number');
  await assert.rejects(r.incr('text'), (e) => e instanceof ErrorReply &&
    e.message === 'ERR value is not an integer or out of range');
  console.log('error reply ok');
  await assert.rejects(r.sendCommand(['GET', 'a', 'b']), (e) => e instanceof ErrorReply &&
    e.message === "ERR wrong number of arguments for 'get' command");
  console.log('arity error ok');
  expect('connection usable after errors', await r.get('text'), 'not a number');

  const sub = await connect();
  const messages = inbox();
  await sub.subscribe('news', (message, channel) => messages.push(['message', channel, message]), true);
  expect('publish receivers', await other.publish('news', binary), 1);
  expect('message', await messages.next('message'), ['message', Buffer.from('news'), binary]);
  await sub.pSubscribe('n*', (message, channel) => messages.push(['pmessage', channel.toString(), message.toString()]));
  expect('publish to channel and pattern', await other.publish('news', 'x'), 2);
  expect('message then pmessage', [(await messages.next('message'))[0], await messages.next('pmessage')],
    ['message', ['pmessage', 'news', 'x']]);
  await sub.quit();

  // Client-side caching by hand: invalidations redirected to a RESP2 subscriber.
  const inval = await connect();
  const invalId = await inval.clientId();
  const invalidations = inbox();
  await inval.subscribe('__redis__:invalidate', (keys) => invalidations.push(keys));
  expect('tracking on', await r.sendCommand(['CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(invalId)]), 'OK');
  expect('tracked read', await r.get('balance'), '120');
  await other.set('balance', '0');
  expect('invalidation', await invalidations.next('invalidation'), ['balance']);

  await Promise.all([r.quit(), other.quit(), inval.quit()]);
  console.log('OK');
}

main().catch((e) => fail(`failed: ${e && e.stack ? e.stack : e}`));
