//! Lua scripting, differential: the same EVAL / EVALSHA / SCRIPT commands go to kvd and to
//! Debian's redis-server, both fresh, and every reply must be byte-for-byte identical in
//! RESP2 and in RESP3 (conversions, error texts with their script positions, the
//! sandbox, shebang flags, read-only scripts, cjson, bit, math.random's sequence),
//! FUNCTION LOAD/LIST/DELETE/FLUSH/STATS/KILL/DUMP/RESTORE with FCALL and FCALL_RO
//! (FUNCTION DUMP payloads restore across the two), redis.acl_check_cmd with a limited
//! user, and the cmsgpack and struct libraries (packed bytes, unpacked values, their
//! errors).
//! Skips with a message if redis-server is not installed.

use kv_tests::{encode_command, Kvd, RawConn, RedisServer};

const RETURN_1_SHA: &str = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";

/// Commands, each a list of arguments; `\n` inside a script is a real newline.
fn cases() -> Vec<Vec<String>> {
    let e = |script: &str, rest: &[&str]| {
        let mut v = vec!["EVAL".to_string(), script.to_string()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let c = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        // math.random's sequence on a fresh server (first, so both servers are fresh)
        e("return tostring(math.random())", &["0"]),
        e("return math.random(1000)", &["0"]),
        e("return math.random(5, 10)", &["0"]),
        // conversions of what a script returns
        e("return 1", &["0"]),
        e("return {1,2,{3,'x',{4}},'y'}", &["0"]),
        e("return {1,2,nil,4}", &["0"]),
        e("return 3.99", &["0"]),
        e("return -3.5", &["0"]),
        e("return true", &["0"]),
        e("return false", &["0"]),
        e("return nil", &["0"]),
        e("return {true,false,1}", &["0"]),
        e("return {1,{2,{3,{4,{5}}}}}", &["0"]),
        e("return {err='my err'}", &["0"]),
        e("return {ok='FINE'}", &["0"]),
        e("return {1, {err='inner'}, {ok='fine'}}", &["0"]),
        e("return {double=3.5}", &["0"]),
        e(
            "return {big_number='123456789012345678901234567890'}",
            &["0"],
        ),
        e("return {big_number='12\r\n3'}", &["0"]),
        // redis.acl_check_cmd (the default user may run everything)
        e("return redis.acl_check_cmd('get', 'k')", &["0"]),
        e("return redis.acl_check_cmd('config', 'get', 'x')", &["0"]),
        e("return redis.acl_check_cmd('nosuch')", &["0"]),
        e("return redis.acl_check_cmd('config', 'nosuch')", &["0"]),
        e("return redis.acl_check_cmd()", &["0"]),
        e("return redis.acl_check_cmd('get', {})", &["0"]),
        c(&["SCRIPT", "DEBUG", "NO"]),
        c(&["SCRIPT", "DEBUG", "maybe"]),
        e("return {map={a=1}}", &["0"]),
        e("return {set={a=true}}", &["0"]),
        e("return redis.error_reply('x y')", &["0"]),
        e("return redis.error_reply('boom')", &["0"]),
        e("return redis.error_reply('-BOOM bad')", &["0"]),
        e("return redis.status_reply('OK2')", &["0"]),
        e("return redis.error_reply()", &["0"]),
        // KEYS, ARGV, numkeys
        e("return KEYS[1]..ARGV[1]", &["1", "k", "a"]),
        e(
            "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
            &["2", "a", "b", "c", "d"],
        ),
        e("return #KEYS + #ARGV", &["0", "x", "y", "z"]),
        e("return 1", &["x"]),
        e("return 1", &["-1"]),
        e("return 1", &["5", "a"]),
        // redis.call and redis.pcall
        e("return redis.call('set',KEYS[1],ARGV[1])", &["1", "k", "v"]),
        e("return redis.call('get',KEYS[1])", &["1", "k"]),
        e("return #redis.call('get', KEYS[1])", &["1", "k"]),
        e("return redis.call('get','nokey')", &["0"]),
        e("return redis.call('incr',KEYS[1])", &["1", "k"]),
        e("return redis.pcall('incr',KEYS[1])", &["1", "k"]),
        e(
            "local r = redis.pcall('incr',KEYS[1]) return type(r) .. ':' .. r.err",
            &["1", "k"],
        ),
        e("return redis.call('get')", &["0"]),
        e("return redis.pcall('get')", &["0"]),
        e("return redis.call('nosuch')", &["0"]),
        e("return redis.pcall('nosuch')", &["0"]),
        e("return redis.call()", &["0"]),
        e("return redis.call('get', {})", &["0"]),
        e("return redis.call('multi')", &["0"]),
        e("return redis.call('eval','return 1','0')", &["0"]),
        e(
            "return redis.call('set','k','v','EX','notanint')",
            &["1", "k"],
        ),
        e("return redis.call('set',KEYS[1],0.1)", &["1", "fl"]),
        c(&["GET", "fl"]),
        e("return redis.call('set',KEYS[1],1.5)", &["1", "fl"]),
        c(&["GET", "fl"]),
        e(
            "local x = 1\nlocal y = 2\nreturn redis.call('incr', 'k')",
            &["0"],
        ),
        e("redis.call('set','partial','1') error('after')", &["0"]),
        c(&["GET", "partial"]),
        e(
            "redis.call('select','1') redis.call('set','x','1') return redis.call('get','x')",
            &["0"],
        ),
        c(&["GET", "x"]),
        // errors raised by scripts
        e("error('boom')", &["0"]),
        e("error({err='TBL x'})", &["0"]),
        e("syntax error here", &["0"]),
        e("return redis.sha1hex('abc')", &["0"]),
        e("return redis.sha1hex()", &["0"]),
        // the sandbox
        e("x = 1", &["0"]),
        e("return os", &["0"]),
        e("return type(io)", &["0"]),
        e("return print", &["0"]),
        e("rawset(_G, 'x', 1)", &["0"]),
        e("string.len = nil", &["0"]),
        e("redis.call = nil", &["0"]),
        e("_G.redis = nil", &["0"]),
        e("return type(loadstring)", &["0"]),
        e("return _VERSION", &["0"]),
        e("local t = {} t.x = 1 return t.x", &["0"]),
        e("return tostring(1e15) .. ' ' .. tonumber('0x10')", &["0"]),
        e("return redis.REPL_ALL", &["0"]),
        e("return redis.set_repl(redis.REPL_NONE)", &["0"]),
        e("return redis.set_repl(99)", &["0"]),
        e(
            "redis.log(redis.LOG_WARNING, 'from a script') return 1",
            &["0"],
        ),
        e("redis.log()", &["0"]),
        // the protocol a script asks for
        e("redis.setresp(3) return redis.call('get','nokey')", &["0"]),
        e("redis.setresp(3) return {double=3.5}", &["0"]),
        e("redis.setresp(3) return true", &["0"]),
        e("redis.setresp(3) return false", &["0"]),
        e("redis.setresp(4)", &["0"]),
        e("redis.setresp()", &["0"]),
        e(
            "redis.setresp(3) local v = redis.call('get','nokey') return v == nil",
            &["0"],
        ),
        // libraries
        e("return cjson.encode({1,2,{a=1}})", &["0"]),
        e("return cjson.encode({x='a/b'})", &["0"]),
        e("return cjson.decode('[1,2,{\"a\":1.5}]')[3].a", &["0"]),
        e(
            "return cjson.encode(cjson.decode('{\"k\":[1,2,3]}'))",
            &["0"],
        ),
        e("return bit.band(0xff, 0x0f)", &["0"]),
        e("return bit.tohex(255)", &["0"]),
        e(
            "return bit.bxor(5, 3) + bit.bor(1, 2) + bit.rshift(256, 4)",
            &["0"],
        ),
        e("return bit.tobit(4294967295)", &["0"]),
        // EVALSHA and SCRIPT
        c(&["EVALSHA", RETURN_1_SHA, "0"]),
        c(&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]),
        c(&["EVALSHA", "short", "0"]),
        c(&["SCRIPT", "LOAD", "return 'loaded'"]),
        c(&["EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"]),
        c(&[
            "SCRIPT",
            "EXISTS",
            RETURN_1_SHA,
            "ffffffffffffffffffffffffffffffffffffffff",
        ]),
        c(&["SCRIPT", "LOAD", "syntax error here"]),
        c(&["SCRIPT", "FLUSH", "bad"]),
        c(&["SCRIPT", "KILL"]),
        c(&["SCRIPT", "BOGUS"]),
        c(&["SCRIPT", "FLUSH"]),
        c(&["SCRIPT", "EXISTS", RETURN_1_SHA]),
        c(&["EVALSHA", RETURN_1_SHA, "0"]),
        c(&["SCRIPT", "FLUSH", "ASYNC"]),
        // shebang flags and read-only scripts
        e(
            "#!lua flags=no-writes\nreturn redis.call('set','a','b')",
            &["1", "a"],
        ),
        e("#!lua flags=no-writes,allow-oom\nreturn 2", &["0"]),
        e("#!lua flags=bogus\nreturn 1", &["0"]),
        e("#!python\nreturn 1", &["0"]),
        e("#!lua name=x\nreturn 1", &["0"]),
        e("#!lua", &["0"]),
        e("#!lua\nreturn redis.call('set','a','b')", &["1", "a"]),
        c(&["EVAL_RO", "return redis.call('set','a','b')", "1", "a"]),
        c(&["EVAL_RO", "#!lua\nreturn 1", "0"]),
        c(&["EVAL_RO", "return redis.call('get','a')", "1", "a"]),
        c(&["EVALSHA_RO", RETURN_1_SHA, "0"]),
        c(&["EVAL"]),
        c(&["EVALSHA", RETURN_1_SHA]),
    ]
}

/// FUNCTION and FCALL commands (FUNCTION DUMP of one library: Redis's bytes).
fn function_cases() -> Vec<Vec<String>> {
    let c = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let two = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return {keys[1], args[1]} end)\nredis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
    let one = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return #keys + #args end)";
    vec![
        c(&["FUNCTION", "FLUSH"]),
        c(&["FUNCTION", "LOAD", two]),
        c(&["FCALL", "myfunc", "1", "k", "a"]),
        c(&["FCALL_RO", "myfunc", "0"]),
        c(&["SET", "k", "v"]),
        c(&["FCALL_RO", "ro", "1", "k"]),
        c(&["FCALL", "nosuch", "0"]),
        c(&["FCALL", "myfunc", "-1"]),
        c(&["FCALL", "myfunc", "x"]),
        c(&["FUNCTION", "LOAD", two]),
        c(&["FUNCTION", "LOAD", "return 1"]),
        c(&["FUNCTION", "LOAD", "#!lua\nreturn 1"]),
        c(&["FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"]),
        c(&["FUNCTION", "LOAD", "#!lua name=bad\nredis.register_function('myfunc', function() return 1 end)"]),
        c(&["FUNCTION", "LOAD", "#!lua name=syn\nthis is bad"]),
        c(&["FUNCTION", "LOAD", "#!lua name=bad name\nreturn 1"]),
        c(&["FUNCTION", "DELETE", "nosuch"]),
        c(&["FUNCTION", "STATS"]),
        c(&["FUNCTION", "KILL"]),
        c(&["FUNCTION", "LOAD", "REPLACE", one]),
        c(&["FCALL", "myfunc", "2", "a", "b", "c"]),
        c(&["FCALL", "ro", "0"]),
        c(&["FUNCTION", "LIST"]),
        c(&["FUNCTION", "LIST", "WITHCODE"]),
        c(&["FUNCTION", "DUMP"]),
        c(&["FUNCTION", "RESTORE", "x", "APPEND", "more"]),
        c(&["FUNCTION", "RESTORE", "x", "sometimes"]),
        c(&["FUNCTION", "LOAD", "#!lua name=e2\nredis.register_function('f2', function(keys, args) return redis.call('incr', 'k') end)"]),
        c(&["FCALL", "f2", "0"]),
        c(&["FUNCTION", "DELETE", "mylib"]),
        c(&["FUNCTION", "DELETE", "e2"]),
        c(&["FUNCTION", "LIST"]),
        c(&["FUNCTION", "RESTORE", "garbage"]),
        c(&["FUNCTION", "FLUSH", "bad"]),
        c(&["FUNCTION", "STATS"]),
    ]
}

/// Lua prelude of the library cases: `hex(s)` shows packed bytes, `strs(...)` every
/// value as Lua prints it (floats and the positions unpack returns stay exact).
const PRELUDE: &str = "local function hex(s) return (string.gsub(s, '.', function(c) \
    return string.format('%02x', string.byte(c)) end)) end \
    local function strs(...) local t = {} for i = 1, select('#', ...) do \
    t[i] = tostring((select(i, ...))) end return t end ";

/// cmsgpack and struct: packed bytes (as hex), unpacked values and errors.
fn library_cases() -> Vec<Vec<String>> {
    let run = |body: &str| {
        vec![
            "EVAL".to_string(),
            format!("{PRELUDE}{body}"),
            "0".to_string(),
        ]
    };
    let hex = |expr: &str| run(&format!("return hex({expr})"));
    let strs = |expr: &str| run(&format!("return strs({expr})"));
    let mut out = Vec::new();
    for v in [
        "0", "1", "127", "128", "255", "256", "65535", "65536", "4294967295", "4294967296",
        "-1", "-32", "-33", "-128", "-129", "-32768", "-32769", "-2147483648", "-2147483649",
        "2^53", "-2^63", "2^63", "2^64", "1.5", "0.1", "-0.25", "1e300", "1/0", "-1/0",
        "0/0", "'abc'", "''", "string.rep('a', 31)", "string.rep('b', 32)",
        "string.rep('c', 255)", "true", "false", "nil", "{}", "{1, 2, 3}", "{1, 2, nil, 4}",
        "{[1] = 1, [3] = 3}", "{a = 1, b = 2, c = 3}", "{x = {y = {1, 'z'}}, [2] = false}",
        "{1, 'x', {y = 2}, 2.5}", "{[1.5] = 1}", "{['1'] = 1}", "{[0] = 0, 1}",
        "cjson.null", "print == nil and 1 or 2", "function() end",
        "{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}",
        "(function() local t = {} for i = 1, 40 do t['k' .. i] = i end return t end)()",
        "(function() local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return t end)()",
    ] {
        out.push(hex(&format!("cmsgpack.pack({v})")));
    }
    out.extend([
        hex("cmsgpack.pack(1, 'a', {2}, nil, true)"),
        hex("string.sub(cmsgpack.pack(string.rep('d', 256)), 1, 4)"),
        hex("string.sub(cmsgpack.pack(string.rep('e', 65536)), 1, 6)"),
        run("return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {2, 3}, {k = 'v'}))}"),
        strs("cmsgpack.unpack(cmsgpack.pack(0.1, 1.5, -7, 2^40, 1e300))"),
        strs("cmsgpack.unpack(string.char(0xcf, 255, 255, 255, 255, 255, 255, 255, 255))"),
        strs("cmsgpack.unpack(string.char(0xd3, 128, 0, 0, 0, 0, 0, 0, 1))"),
        strs("cmsgpack.unpack(string.char(0xce, 255, 255, 255, 255, 0xd2, 255, 255, 255, 254))"),
        strs("cmsgpack.unpack(string.char(0xd9, 2, 104, 105, 0xda, 0, 1, 33, 0xc0, 0xc2))"),
        strs("cmsgpack.unpack(string.char(0xca, 0x3f, 0xc0, 0, 0, 0xe0, 0xd0, 0x80))"),
        hex("cmsgpack.pack(cmsgpack.unpack(string.char(0x83, 1, 2, 0xa1, 97, 3, 0xa1, 98, 0x90)))"),
        strs("cmsgpack.unpack('')"),
        strs("cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))"),
        strs("cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)"),
        strs("cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 3)"),
        strs("cmsgpack.unpack_one('')"),
        strs("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)"),
        strs("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 5, 1)"),
        strs("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0)"),
        strs("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0, 1)"),
        run("return cmsgpack.pack()"),
        run("return cmsgpack.unpack(string.char(0xc1))"),
        run("return cmsgpack.unpack(string.char(0xc4, 1, 1))"),
        run("return cmsgpack.unpack(string.char(0x92, 1))"),
        run("return cmsgpack.unpack(string.char(0xa5, 1))"),
        run("return cmsgpack.unpack()"),
        run("return cmsgpack.unpack({})"),
        run("return cmsgpack.unpack_one('abc', 10)"),
        run("return cmsgpack.unpack_one('abc', -1)"),
        run("return cmsgpack.unpack_limit('abc')"),
        run("return cmsgpack.unpack_limit('abc', 'x')"),
        run("return cmsgpack.unpack_limit('abc', -2)"),
        run("return cmsgpack._VERSION"),
        run("cmsgpack.pack = nil"),
        run("return type(cmsgpack_safe)"),
        // struct
        hex("struct.pack('>i2<H!4bi', 258, 1, -1, 7)"),
        hex("struct.pack('bBhHlLiI', -1, 255, -2, 65535, -3, 4, -5, 6)"),
        hex("struct.pack('>bBhHlLiI', -1, 255, -2, 65535, -3, 4, -5, 6)"),
        hex("struct.pack('i8', 2^53)"),
        hex("struct.pack('i16', -1)"),
        hex("struct.pack('>i16', -2)"),
        hex("struct.pack('>i3I1', 70000, 300)"),
        hex("struct.pack('i0', 5)"),
        hex("struct.pack('d', 1.5)"),
        hex("struct.pack('>d<f', 0.1, 0.1)"),
        hex("struct.pack('s', 'ab')"),
        hex("struct.pack('c5', 'abcdef')"),
        hex("struct.pack('c0c', 'xyz', 'w')"),
        hex("struct.pack('xbx', 9)"),
        hex("struct.pack('!8bd', 1, 2.0)"),
        hex("struct.pack('!bh!2bi!4bT', 1, 2, 3, 4, 5, 6)"),
        hex("struct.pack(' < i2 ', '12')"),
        hex("struct.pack('b', 3.9)"),
        hex("struct.pack('B', -1)"),
        hex("struct.pack('I', 2^32 + 5)"),
        hex("struct.pack('')"),
        strs("struct.unpack('<hsd', struct.pack('<hsd', -5, 'ab', 2.5))"),
        strs("struct.unpack('>I2i2', string.char(255, 254, 255, 254))"),
        strs("struct.unpack('i16', string.rep(string.char(255), 16))"),
        strs("struct.unpack('>i12', string.rep(string.char(1), 12))"),
        strs("struct.unpack('bc0', string.char(3) .. 'abcd')"),
        strs("struct.unpack('c2c0', '3xabcd')"),
        strs("struct.unpack('b', 'xyz', 2)"),
        strs("struct.unpack('!4bi', string.char(1, 0, 0, 0, 2, 0, 0, 0))"),
        strs("struct.unpack('xs', 'zab' .. string.char(0) .. 'c')"),
        strs("struct.unpack('>fd', struct.pack('>fd', 0.1, 0.1))"),
        strs("struct.unpack('', 'abc', 4)"),
        strs("struct.size('bhi!4dc3i2')"),
        strs("struct.size('zi')"),
        strs("struct.size('<>')"),
        run("return struct.unpack('c0', 'abc')"),
        run("return struct.unpack('i4', 'abc')"),
        run("return struct.unpack('i4', 'abcd', 0)"),
        run("return struct.unpack('i4', 'abcd', 9)"),
        run("return struct.unpack('b', 'abcd', -1)"),
        run("return struct.unpack('s', 'abc')"),
        run("return struct.unpack('i')"),
        run("return struct.unpack({}, 'x')"),
        run("return struct.size('s')"),
        run("return struct.size('c0')"),
        run("return struct.size('!3')"),
        run("return struct.size('?')"),
        run("return struct.pack('z', 1)"),
        run("return struct.pack('i99', 1)"),
        run("return struct.pack('i99999999999', 1)"),
        run("return struct.pack('c5', 'ab')"),
        run("return struct.pack('i', 'x')"),
        run("return struct.pack('i')"),
        run("return struct.pack('ii', 1)"),
        run("return struct.pack('s', {})"),
        run("return struct.pack('!3i', 1)"),
        run("return struct.pack()"),
        run("struct.pack = nil"),
    ]);
    out
}

fn send(c: &mut RawConn, cmd: &[String]) -> String {
    let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
    c.send(&encode_command(&args));
    String::from_utf8_lossy(&c.reply()).into_owned()
}

fn compare(kvd: &Kvd, redis: &RedisServer, resp3: bool) {
    let (mut a, mut b) = (kvd.raw(), redis.raw());
    for c in [&mut a, &mut b] {
        if resp3 {
            send(c, &["HELLO".into(), "3".into()]);
        }
    }
    for cmd in cases()
        .into_iter()
        .chain(function_cases())
        .chain(library_cases())
    {
        let (ra, rb) = (send(&mut a, &cmd), send(&mut b, &cmd));
        assert_eq!(
            ra, rb,
            "resp3 {resp3}: replies differ (kvd left, redis right) to {cmd:?}"
        );
    }
}

/// A fresh redis-server, or `None` after saying loudly that the test is skipped.
fn redis_or_skip() -> Option<RedisServer> {
    let redis = RedisServer::start();
    if redis.is_none() {
        eprintln!(
            "SKIPPED: redis-server is not installed (apt-get install redis-server); CI installs it"
        );
    }
    redis
}

#[test]
fn scripts_match_redis_byte_for_byte() {
    if redis_or_skip().is_none() {
        return;
    }
    for resp3 in [false, true] {
        // Fresh servers each time: math.random's sequence starts over.
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let kvd = Kvd::start_default();
        compare(&kvd, &redis, resp3);
    }
}

/// The payload of a bulk string reply.
fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    let header_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a RESP header");
    assert_eq!(
        reply[0],
        b'$',
        "a bulk reply: {:?}",
        String::from_utf8_lossy(reply)
    );
    reply[header_end + 2..reply.len() - 2].to_vec()
}

fn raw_cmd(c: &mut RawConn, args: &[&[u8]]) -> Vec<u8> {
    c.send(&encode_command(args));
    c.reply()
}

/// A library of `n` pseudo-random words in a comment (stored plainly when LZF cannot
/// shorten it, over 16 KiB for a 32-bit length), with one function.
fn big_library(name: &str, n: usize) -> String {
    let mut x: u32 = 12345;
    let mut comment = String::new();
    for _ in 0..n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        comment.push_str(&format!("{:08x}", x));
    }
    format!("#!lua name={name}\n-- {comment}\nredis.register_function('{name}_f', function() return '{name}' end)")
}

/// FUNCTION DUMP of one library is Redis's payload byte for byte (plain, LZF-compressed,
/// over 16 KiB); dumps of several libraries restore from redis-server into kvd and from
/// kvd into redis-server, where every function then answers the same; RESTORE's errors
/// are Redis's.
#[test]
fn function_dumps_cross_between_kvd_and_redis() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let kvd = Kvd::start_default();
    let (mut k, mut r) = (kvd.raw(), redis.raw());
    let libraries = [
        "#!lua name=x\nredis.register_function('f', function() return 1 end)".to_string(),
        "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)\n-- again: redis.register_function('myfunc', function(keys, args) return args[1] end)".to_string(),
        big_library("noise", 3000),
        format!("#!lua name=long\n{}redis.register_function('long_f', function() return 'long' end)", "-- the same line again and again\n".repeat(700)),
    ];
    let both = |k: &mut RawConn, r: &mut RawConn, args: &[&[u8]]| {
        let (a, b) = (raw_cmd(k, args), raw_cmd(r, args));
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "replies differ (kvd left, redis right) to {:?}",
            args.iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
        );
        a
    };
    for lib in &libraries {
        both(&mut k, &mut r, &[b"FUNCTION", b"FLUSH"]);
        both(&mut k, &mut r, &[b"FUNCTION", b"LOAD", lib.as_bytes()]);
        let (a, b) = (
            raw_cmd(&mut k, &[b"FUNCTION", b"DUMP"]),
            raw_cmd(&mut r, &[b"FUNCTION", b"DUMP"]),
        );
        assert!(a == b, "FUNCTION DUMP differs for {}", &lib[..20]);
    }
    let fcalls = |c: &mut RawConn| -> Vec<String> {
        ["f", "myfunc", "noise_f", "long_f"]
            .iter()
            .map(|f| {
                String::from_utf8_lossy(&raw_cmd(c, &[b"FCALL", f.as_bytes(), b"0", b"arg"]))
                    .into_owned()
            })
            .collect()
    };
    for redis_to_kvd in [true, false] {
        let (from, to) = if redis_to_kvd {
            (&mut r, &mut k)
        } else {
            (&mut k, &mut r)
        };
        raw_cmd(from, &[b"FUNCTION", b"FLUSH"]);
        for lib in &libraries {
            raw_cmd(from, &[b"FUNCTION", b"LOAD", lib.as_bytes()]);
        }
        let payload = bulk_payload(&raw_cmd(from, &[b"FUNCTION", b"DUMP"]));
        raw_cmd(
            to,
            &[
                b"FUNCTION",
                b"LOAD",
                b"#!lua name=old\nredis.register_function('old', function() return 0 end)",
            ],
        );
        assert_eq!(
            raw_cmd(to, &[b"FUNCTION", b"RESTORE", &payload, b"FLUSH"]),
            b"+OK\r\n"
        );
        assert_eq!(fcalls(to), fcalls(from));
        assert_eq!(fcalls(to)[1], "$3\r\narg\r\n");
        assert!(
            String::from_utf8_lossy(&raw_cmd(to, &[b"FCALL", b"old", b"0"]))
                .contains("Function not found")
        );
        // APPEND over the same libraries: the error names one of them (Redis: the first
        // in its hash table's order); a truncated payload: the same error.
        for c in [&mut *to, &mut *from] {
            let a = String::from_utf8_lossy(&raw_cmd(c, &[b"FUNCTION", b"RESTORE", &payload]))
                .into_owned();
            assert!(
                a.starts_with("-ERR Library ") && a.ends_with(" already exists\r\n"),
                "{a}"
            );
        }
        let cut = &payload[..payload.len() - 1];
        let (a, b) = (
            raw_cmd(to, &[b"FUNCTION", b"RESTORE", cut]),
            raw_cmd(from, &[b"FUNCTION", b"RESTORE", cut]),
        );
        assert_eq!(a, b);
    }
    // A restored function that collides with another library's, with each policy.
    both(&mut k, &mut r, &[b"FUNCTION", b"FLUSH"]);
    both(
        &mut k,
        &mut r,
        &[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=b\nredis.register_function('shared', function() return 'b' end)",
        ],
    );
    let payload = bulk_payload(&raw_cmd(&mut r, &[b"FUNCTION", b"DUMP"]));
    both(&mut k, &mut r, &[b"FUNCTION", b"FLUSH"]);
    both(
        &mut k,
        &mut r,
        &[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=a\nredis.register_function('shared', function() return 'a' end)",
        ],
    );
    both(&mut k, &mut r, &[b"FUNCTION", b"RESTORE", &payload]);
    both(
        &mut k,
        &mut r,
        &[b"FUNCTION", b"RESTORE", &payload, b"REPLACE"],
    );
    both(&mut k, &mut r, &[b"FCALL", b"shared", b"0"]);
    both(
        &mut k,
        &mut r,
        &[b"FUNCTION", b"RESTORE", &payload, b"FLUSH"],
    );
    both(&mut k, &mut r, &[b"FCALL", b"shared", b"0"]);
}

/// redis.acl_check_cmd for a user limited to some commands and keys answers as Redis.
#[test]
fn acl_check_cmd_follows_the_users_rules_as_redis() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let kvd = Kvd::start_default();
    let script = "return {redis.acl_check_cmd('get', 'k1'), redis.acl_check_cmd('get', 'other'), \
        redis.acl_check_cmd('set', 'k1', 'v'), redis.acl_check_cmd('get'), \
        redis.acl_check_cmd('config', 'get', 'x')}";
    for (mut c, name) in [(kvd.raw(), "kvd"), (redis.raw(), "redis")] {
        let setup: [&[&[u8]]; 2] = [
            &[
                b"ACL", b"SETUSER", b"limited", b"on", b">pw", b"+eval", b"+get", b"~k*",
            ],
            &[b"AUTH", b"limited", b"pw"],
        ];
        for cmd in setup {
            assert_eq!(raw_cmd(&mut c, cmd), b"+OK\r\n", "{name}");
        }
        let reply = raw_cmd(&mut c, &[b"EVAL", script.as_bytes(), b"0"]);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            "*5\r\n:1\r\n$-1\r\n$-1\r\n:1\r\n$-1\r\n",
            "{name}"
        );
    }
}

/// SCRIPT DEBUG YES and SYNC are refused by kvd (not compared: Redis would start its Lua
/// debugger); NO and other modes are in the differential cases above.
#[test]
fn script_debug_yes_and_sync_are_refused() {
    let kvd = Kvd::start_default();
    let mut c = kvd.raw();
    for mode in [&b"YES"[..], b"sync"] {
        assert_eq!(
            String::from_utf8_lossy(&raw_cmd(&mut c, &[b"SCRIPT", b"DEBUG", mode])),
            "-ERR SCRIPT DEBUG YES and SYNC are not supported: kvd has no Lua debugger\r\n"
        );
    }
    assert_eq!(raw_cmd(&mut c, &[b"SCRIPT", b"DEBUG", b"no"]), b"+OK\r\n");
    assert_eq!(raw_cmd(&mut c, &[b"EVAL", b"return 1", b"0"]), b":1\r\n");
}
