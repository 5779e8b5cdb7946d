//! Scripts as client libraries ship them, shared by the single-node and cluster tests.

/// A token bucket kept in one string key as JSON: refills `rate` tokens per ms up to
/// `capacity`, takes `requested` if there are enough. Replies {allowed, tokens left}.
pub const TOKEN_BUCKET: &str = r#"
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local requested = tonumber(ARGV[4])
local tokens, ts = capacity, now
local state = redis.call('GET', key)
if state then
  local d = cjson.decode(state)
  tokens, ts = d.tokens, d.ts
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= requested then
  tokens = tokens - requested
  allowed = 1
end
redis.call('SET', key, cjson.encode({tokens = tokens, ts = now}), 'PX', 60000)
return {allowed, tostring(tokens)}
"#;

/// Takes one token by EVALSHA, loading the script first if the server answers NOSCRIPT
/// (what client libraries do).
pub fn try_take(
    c: &mut redis::Connection,
    key: &str,
    capacity: u32,
    now: u64,
) -> redis::RedisResult<(i64, String)> {
    let sha = "d1e2e0e6c5c8f7d4bd3f4e3ad9cd8e2f8b1d0f4e"; // deliberately stale: first call loads
    let call = |c: &mut redis::Connection, sha: &str| {
        redis::cmd("EVALSHA")
            .arg(sha)
            .arg(1)
            .arg(key)
            .arg(capacity)
            .arg("0.001")
            .arg(now)
            .arg(1)
            .query::<(i64, String)>(c)
    };
    match call(c, sha) {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            let loaded: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(TOKEN_BUCKET)
                .query(c)?;
            call(c, &loaded)
        }
        other => other,
    }
}

/// [`try_take`], failing the test on an error.
pub fn take(c: &mut redis::Connection, key: &str, capacity: u32, now: u64) -> (i64, String) {
    try_take(c, key, capacity, now).unwrap_or_else(|e| panic!("EVALSHA failed: {e}"))
}
