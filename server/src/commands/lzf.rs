//! LZF, the compression Redis applies to RDB strings (liblzf 3.6 as Redis 7 builds it:
//! `HLOG 16`, `VERY_FAST`), so a FUNCTION DUMP payload compresses to Redis's very bytes
//! and every payload Redis writes decompresses (rdb_string.rs). Format
//! (docs/format/function-dump.md):
//!
//! ```text
//! 000LLLLL <L+1 bytes>            literal run of L+1 = 1..32 bytes
//! LLLooooo oooooooo               back reference: L+2 = 3..8 bytes from o+1 = 1..8192 back
//! 111ooooo LLLLLLLL oooooooo      back reference: L+9 bytes from o+1 back
//! ```
//!
//! Both directions check every index against the buffers: a corrupt input gives `None`,
//! never a panic.

/// Bits of the match-finder's hash table (Redis's lzfP.h `HLOG`); changing it changes
/// which matches are found, so the bytes would no longer be Redis's.
const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
/// Longest literal run one control byte covers.
const MAX_LIT: usize = 1 << 5;
/// Farthest back a reference reaches.
const MAX_OFF: usize = 1 << 13;
/// Longest match one reference covers.
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// liblzf's `IDX` (its `VERY_FAST` variant) of the 3-byte hash `h`.
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// The compressed output: `op` is where the next byte goes, `lit` the length of the
/// literal run whose control byte is reserved just before it (at `op - lit - 1`).
/// Writes past the end are refused instead of panicking.
struct Out {
    buf: Vec<u8>,
    op: usize,
    lit: usize,
}

impl Out {
    fn set(&mut self, at: usize, b: u8) -> Option<()> {
        *self.buf.get_mut(at)? = b;
        Some(())
    }

    /// Appends one literal byte; a full run gets its control byte and a new run starts.
    fn literal(&mut self, b: u8) -> Option<()> {
        self.lit += 1;
        self.set(self.op, b)?;
        self.op += 1;
        if self.lit == MAX_LIT {
            self.set(self.op - self.lit - 1, (self.lit - 1) as u8)?;
            self.lit = 0;
            self.op += 1;
        }
        Some(())
    }

    /// Writes the open run's control byte, or takes its slot back if the run is empty.
    fn end_run(&mut self) -> Option<()> {
        self.set(self.op - self.lit - 1, (self.lit as u8).wrapping_sub(1))?;
        self.op -= usize::from(self.lit == 0);
        Some(())
    }
}

/// `input` compressed into at most `max_out` bytes, as liblzf's `lzf_compress` does
/// (same matches, same bytes); `None` when it does not fit (Redis then stores the string
/// as it is).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    if n == 0 || max_out == 0 {
        return None;
    }
    let at = |i: usize| u32::from(input[i]);
    // Positions + 1 (0: empty slot), as liblzf's table of pointers zeroed.
    let mut htab = vec![0usize; HSIZE];
    let mut out = Out {
        buf: vec![0u8; max_out + 1],
        op: 1, // the first run's control byte goes at 0
        lit: 0,
    };
    let mut ip = 0usize;
    let mut hval = if n >= 2 { (at(0) << 8) | at(1) } else { 0 };
    while ip + 2 < n {
        hval = (hval << 8) | at(ip + 2);
        let slot = idx(hval);
        let reference = htab[slot].checked_sub(1);
        htab[slot] = ip + 1;
        let found = reference.filter(|&r| {
            r > 0
                && ip.checked_sub(r + 1).is_some_and(|off| off < MAX_OFF)
                && input[r..r + 3] == input[ip..ip + 3]
        });
        let Some(r) = found else {
            if out.op >= max_out {
                return None;
            }
            out.literal(input[ip])?;
            ip += 1;
            continue;
        };
        let off = ip - r - 1;
        let maxlen = (n - ip - 2).min(MAX_REF);
        if out.op - usize::from(out.lit == 0) + 3 + 1 >= max_out {
            return None;
        }
        out.end_run()?;
        let len = match_len(input, r, ip, maxlen) - 2;
        ip += 1;
        let op = out.op;
        if len < 7 {
            out.set(op, ((off >> 8) + (len << 5)) as u8)?;
            out.op += 1;
        } else {
            out.set(op, ((off >> 8) + (7 << 5)) as u8)?;
            out.set(op + 1, (len - 7) as u8)?;
            out.op += 2;
        }
        out.set(out.op, off as u8)?;
        out.op += 2; // the offset's low byte, then the next run's control byte
        out.lit = 0;
        ip += len + 1;
        if ip + 2 >= n {
            break;
        }
        // VERY_FAST: hash the two positions before the new one.
        ip -= 2;
        hval = (at(ip) << 8) | at(ip + 1);
        for _ in 0..2 {
            hval = (hval << 8) | at(ip + 2);
            htab[idx(hval)] = ip + 1;
            ip += 1;
        }
    }
    if out.op + 3 > max_out {
        return None;
    }
    for &b in &input[ip..] {
        out.literal(b)?;
    }
    out.end_run()?;
    out.buf.truncate(out.op);
    Some(out.buf)
}

/// How many bytes at `ip` repeat those at `r`, counted as liblzf counts them: 16 at a
/// time while more than 16 may match (which can overshoot `maxlen` by two, as in C),
/// then one by one up to `maxlen`.
fn match_len(input: &[u8], r: usize, ip: usize, maxlen: usize) -> usize {
    let mut len = 2;
    if maxlen > 16 {
        for _ in 0..16 {
            len += 1;
            if input[r + len] != input[ip + len] {
                return len;
            }
        }
    }
    loop {
        len += 1;
        if !(len < maxlen && input[r + len] == input[ip + len]) {
            return len;
        }
    }
}

/// `input` decompressed; `None` unless it is valid LZF of exactly `len` bytes (Redis's
/// check: `lzf_decompress(...) != len` is a corrupt string).
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    // A forged `len` must not make this allocate more than the input can describe (each
    // input byte yields at most MAX_REF bytes); it then fails below.
    let mut out: Vec<u8> = Vec::with_capacity(len.min(input.len().saturating_mul(MAX_REF)));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < MAX_LIT {
            let run = input.get(ip..ip + ctrl + 1)?;
            if out.len() + run.len() > len {
                return None;
            }
            out.extend_from_slice(run);
            ip += ctrl + 1;
            continue;
        }
        let mut n = ctrl >> 5;
        if n == 7 {
            n += usize::from(*input.get(ip)?);
            ip += 1;
        }
        let low = usize::from(*input.get(ip)?);
        ip += 1;
        let back = ((ctrl & 0x1f) << 8) + low + 1;
        let start = out.len().checked_sub(back)?;
        if out.len() + n + 2 > len {
            return None;
        }
        // Byte by byte: the reference may overlap what it produces (a run).
        for i in start..start + n + 2 {
            out.push(out[i]);
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_compresses_repetition() {
        let texts: [&[u8]; 4] = [
            b"#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)\n",
            &[b'a'; 1000],
            b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc0123456789",
            b"xyz",
        ];
        for t in texts {
            let c = compress(t, t.len() + 64).unwrap();
            assert_eq!(decompress(&c, t.len()).unwrap(), t);
        }
        assert!(compress(&[b'a'; 1000], 100).unwrap().len() < 20);
    }

    #[test]
    fn incompressible_input_does_not_fit_and_corrupt_input_is_refused() {
        let noise: Vec<u8> = (0u32..200).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(compress(&noise, noise.len() - 4).is_none());
        let c = compress(&[b'a'; 100], 100).unwrap();
        assert!(decompress(&c, 99).is_none());
        assert!(decompress(&c, 101).is_none());
        for cut in 0..c.len() {
            assert!(decompress(&c[..cut], 100).is_none());
        }
        // A reference before the start of the output.
        assert!(decompress(&[0x20, 0x05], 3).is_none());
        assert!(decompress(&[0xe0], 10).is_none());
        assert!(decompress(&c, usize::MAX).is_none());
    }
}
