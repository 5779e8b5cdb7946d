//! Glob matching for KEYS, SCAN MATCH, COMMAND LIST FILTERBY PATTERN and CONFIG GET:
//! Redis's `stringmatchlen` with its 7.0.9 fix for CVE-2022-36021.
//!
//! The plain recursive matcher tries every split of the string for every `*`, which is
//! exponential in the number of stars (`KEYS a*a*a*a*...b` against a long key hung the
//! server). Redis's fix, reproduced here: when the rest of the pattern after a `*` matches
//! nowhere in the rest of the string, no earlier `*` can help by eating more of the string
//! (that only moves the rest's start further right), so the whole match fails at once. That
//! bounds the work by about `pattern.len() * string.len()` steps; a nesting limit of 1000
//! bounds the recursion depth. Semantics (classes, escapes, unterminated `[`) are Redis's
//! to the byte; a property test checks them against the unbounded matcher.

/// Redis's nesting limit for `*` recursion (`stringmatchlen_impl`).
const MAX_NESTING: usize = 1000;

/// Whether `s` matches the glob `pattern` (`* ? [abc] [^a] [a-z] \x`), optionally ignoring
/// ASCII case, exactly as Redis's `stringmatchlen` decides.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    Matcher::new(nocase).matches(pattern, s, 0)
}

struct Matcher {
    nocase: bool,
    /// Set when the rest of a pattern after a `*` matched nowhere: every caller fails fast.
    skip_longer_matches: bool,
    /// Character comparisons and recursive calls made (the cost the fix bounds).
    steps: u64,
}

impl Matcher {
    fn new(nocase: bool) -> Matcher {
        Matcher {
            nocase,
            skip_longer_matches: false,
            steps: 0,
        }
    }

    fn eq(&self, a: u8, b: u8) -> bool {
        if self.nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    }

    fn matches(&mut self, mut p: &[u8], mut s: &[u8], nesting: usize) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        self.steps += 1;
        while !p.is_empty() && !s.is_empty() {
            self.steps += 1;
            // Each arm consumes one pattern token matching `s[0]`; `*` decides the rest.
            p = match p[0] {
                b'*' => return self.star(p, s, nesting),
                b'?' => &p[1..],
                b'[' => match self.class(&p[1..], s[0]) {
                    (true, rest) => rest,
                    (false, _) => return false,
                },
                b'\\' if p.len() >= 2 => {
                    if !self.eq(p[1], s[0]) {
                        return false;
                    }
                    &p[2..]
                }
                c => {
                    if !self.eq(c, s[0]) {
                        return false;
                    }
                    &p[1..]
                }
            };
            s = &s[1..];
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    /// `p` starts with `*` and `s` is not empty.
    fn star(&mut self, mut p: &[u8], mut s: &[u8], nesting: usize) -> bool {
        while p.len() > 1 && p[1] == b'*' {
            p = &p[1..];
        }
        if p.len() == 1 {
            return true;
        }
        while !s.is_empty() {
            if self.matches(&p[1..], s, nesting + 1) {
                return true;
            }
            if self.skip_longer_matches {
                return false;
            }
            s = &s[1..];
        }
        // The rest of the pattern matches nowhere in the rest of the string: an earlier `*`
        // eating more characters cannot change that.
        self.skip_longer_matches = true;
        false
    }

    /// Matches `c` against the class whose body starts at `p` (just after `[`). Returns
    /// whether it matched and the pattern after the closing `]` (an unterminated class ends
    /// with the pattern, as in Redis).
    fn class<'p>(&mut self, mut p: &'p [u8], c: u8) -> (bool, &'p [u8]) {
        let not = p.first() == Some(&b'^');
        if not {
            p = &p[1..];
        }
        let mut matched = false;
        loop {
            self.steps += 1;
            if p.is_empty() {
                break; // unterminated
            }
            if p[0] == b'\\' && p.len() >= 2 {
                p = &p[1..];
                if p[0] == c {
                    matched = true;
                }
            } else if p[0] == b']' {
                break;
            } else if p.len() >= 3 && p[1] == b'-' {
                let (mut lo, mut hi) = (p[0], p[2]);
                let mut c = c;
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                if self.nocase {
                    lo = lo.to_ascii_lowercase();
                    hi = hi.to_ascii_lowercase();
                    c = c.to_ascii_lowercase();
                }
                p = &p[2..];
                if c >= lo && c <= hi {
                    matched = true;
                }
            } else if self.eq(p[0], c) {
                matched = true;
            }
            p = &p[1..];
        }
        if not {
            matched = !matched;
        }
        (matched, p.get(1..).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn steps(pattern: &[u8], s: &[u8]) -> (bool, u64) {
        let mut m = Matcher::new(false);
        let r = m.matches(pattern, s, 0);
        (r, m.steps)
    }

    #[test]
    fn glob_patterns_match_like_redis() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", "anything"));
        assert!(!m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("user:*", "user:"));
        assert!(!m("foo", "foobar"));
        assert!(m("*bar", "foobar"));
        assert!(m("a[b", "ab"));
        assert!(
            !m("a[", "a["),
            "an unterminated empty class matches nothing"
        );
        assert!(glob_match(b"HELLO", b"hello", true));
    }

    /// CVE-2022-36021: many stars against a long string that almost matches. The unbounded
    /// matcher takes about C(len, stars) steps here (over 10^20); the fix stays within
    /// pattern length times string length.
    #[test]
    fn hostile_patterns_cost_at_most_pattern_times_string() {
        let s = vec![b'a'; 400];
        for stars in [2usize, 10, 30, 100] {
            let pattern = format!("{}b", "a*".repeat(stars));
            let (matched, n) = steps(pattern.as_bytes(), &s);
            assert!(!matched);
            let bound = 4 * (pattern.len() as u64 + 1) * (s.len() as u64 + 1);
            assert!(n <= bound, "{stars} stars: {n} steps > {bound}");
        }
        let (matched, _) = steps("*a*a*a*a*a*a*a*a*a*a*a*a*a*".as_bytes(), &s);
        assert!(matched);
    }

    /// The matcher before the fix: tries every split for every star.
    fn unbounded(mut p: &[u8], mut s: &[u8], nocase: bool) -> bool {
        let eq = |a: u8, b: u8| {
            if nocase {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        while !p.is_empty() && !s.is_empty() {
            match p[0] {
                b'*' => {
                    while p.len() > 1 && p[1] == b'*' {
                        p = &p[1..];
                    }
                    if p.len() == 1 {
                        return true;
                    }
                    return (0..s.len()).any(|i| unbounded(&p[1..], &s[i..], nocase));
                }
                b'?' => s = &s[1..],
                b'[' => {
                    p = &p[1..];
                    let not = p.first() == Some(&b'^');
                    if not {
                        p = &p[1..];
                    }
                    let mut matched = false;
                    while !p.is_empty() {
                        if p[0] == b'\\' && p.len() >= 2 {
                            p = &p[1..];
                            matched |= p[0] == s[0];
                        } else if p[0] == b']' {
                            break;
                        } else if p.len() >= 3 && p[1] == b'-' {
                            let (lo, hi) = (p[0].min(p[2]), p[0].max(p[2]));
                            let c = s[0];
                            matched |= if nocase {
                                let c = c.to_ascii_lowercase();
                                c >= lo.to_ascii_lowercase() && c <= hi.to_ascii_lowercase()
                            } else {
                                c >= lo && c <= hi
                            };
                            p = &p[2..];
                        } else {
                            matched |= eq(p[0], s[0]);
                        }
                        p = &p[1..];
                    }
                    if matched == not {
                        return false;
                    }
                    s = &s[1..];
                    if p.is_empty() {
                        continue;
                    }
                }
                b'\\' if p.len() >= 2 => {
                    p = &p[1..];
                    if !eq(p[0], s[0]) {
                        return false;
                    }
                    s = &s[1..];
                }
                c => {
                    if !eq(c, s[0]) {
                        return false;
                    }
                    s = &s[1..];
                }
            }
            p = &p[1..];
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The fast-failing matcher decides exactly as the unbounded one on small inputs
        /// drawn from the characters that have a meaning in a pattern.
        #[test]
        fn same_answers_as_the_unbounded_matcher(
            p in proptest::collection::vec(proptest::sample::select(b"ab*?[]^-\\A".to_vec()), 0..9),
            s in proptest::collection::vec(proptest::sample::select(b"ab*[]-\\A".to_vec()), 0..9),
            nocase in any::<bool>(),
        ) {
            prop_assert_eq!(glob_match(&p, &s, nocase), unbounded(&p, &s, nocase));
        }
    }
}
