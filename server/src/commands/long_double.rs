//! INCRBYFLOAT's arithmetic exactly as Redis does it on x86-64: both numbers parsed with
//! `strtold` into an x87 80-bit long double (64-bit significand), added with one
//! rounding to nearest-even, printed with `%.17Lf` and trailing zeros trimmed
//! (Redis's `ld2string(..., LD_STR_HUMAN)`). kvd emulates the format with exact big
//! integer arithmetic so the digits are the same on every platform.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// Significand bits of the x87 extended format (explicit integer bit).
const MANT_BITS: u64 = 64;
/// Exponent of the least significant significand bit of the smallest subnormal:
/// 2^-16382 is the smallest normal, 63 fraction bits below it.
const MIN_EXP: i64 = -16382 - 63;
/// A value needs `mant * 2^exp < 2^16384`.
const MAX_BINARY_EXP: i64 = 16384;
/// Longest number text Redis parses or prints (MAX_LONG_DOUBLE_CHARS).
pub const MAX_CHARS: usize = 5 * 1024;

/// A finite long double: (-1)^neg × mant × 2^exp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// A parsed number: finite, or an infinity (`inf` is valid input to strtold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A finite value.
    Finite(LongDouble),
    /// +inf or -inf.
    Infinite,
}

/// Rounds the exact non-negative value `num / den` to a long double (None: overflow).
fn round(neg: bool, num: &BigUint, den: &BigUint) -> Option<LongDouble> {
    if num.is_zero() {
        return Some(LongDouble {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    // Pick exp so that the quotient has 64 bits (one more or less is corrected below).
    let mut exp = num.bits() as i64 - den.bits() as i64 - MANT_BITS as i64;
    exp = exp.max(MIN_EXP);
    loop {
        let (n, d) = if exp < 0 {
            (num << ((-exp) as u64), den.clone())
        } else {
            (num.clone(), den << (exp as u64))
        };
        let q = &n / &d;
        let r = &n - &q * &d;
        if q.bits() > MANT_BITS {
            exp += 1;
            continue;
        }
        if q.bits() < MANT_BITS && exp > MIN_EXP {
            exp -= 1;
            continue;
        }
        let twice = &r << 1u32;
        let mut q = q;
        if twice > d || (twice == d && q.bit(0)) {
            q += 1u32;
        }
        if q.bits() > MANT_BITS {
            q >>= 1u32;
            exp += 1;
        }
        let mant = q.to_u64()?;
        if exp + MANT_BITS as i64 > MAX_BINARY_EXP {
            return None;
        }
        return Some(LongDouble { neg, mant, exp });
    }
}

fn pow(base: u32, e: u64) -> BigUint {
    BigUint::from(base).pow(e as u32)
}

/// Parses like Redis's `string2ld`: `strtold` over the whole text, no leading space,
/// no NaN, no overflow, no underflow to zero. Decimal and hexadecimal (`0x1.8p3`) forms.
pub fn parse(text: &[u8]) -> Option<Parsed> {
    if text.is_empty() || text.len() >= MAX_CHARS {
        return None;
    }
    let s = std::str::from_utf8(text).ok()?;
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Parsed::Infinite);
    }
    let (hex, body) = match lower.strip_prefix("0x") {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, lower.as_str()),
    };
    let (base, exp_mark) = if hex { (16u32, 'p') } else { (10u32, 'e') };
    let (mantissa, exponent) = match body.split_once(exp_mark) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digit_ok = |c: char| c.is_digit(base);
    if !int_part.chars().all(digit_ok) || !frac_part.chars().all(digit_ok) {
        return None;
    }
    let exp10: i64 = match exponent {
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Beyond this every value overflows or underflows; saturate instead.
            let v: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(1 << 40);
            if e.starts_with('-') {
                -v
            } else {
                v
            }
        }
        None => 0,
    };
    let all_digits: String = format!("{int_part}{frac_part}");
    let digits = all_digits.trim_start_matches('0');
    let mut value = BigUint::zero();
    for c in digits.chars() {
        value = value * base + c.to_digit(base)?;
    }
    if value.is_zero() {
        return Some(Parsed::Finite(LongDouble {
            neg,
            mant: 0,
            exp: 0,
        }));
    }
    let frac_len = frac_part.len() as i64;
    let rounded = if hex {
        // value × 2^(exp - 4 × fraction digits)
        let e2 = exp10 - 4 * frac_len;
        if e2 + (digits.len() as i64) * 4 > MAX_BINARY_EXP + 8 {
            return None;
        }
        if e2 + (digits.len() as i64) * 4 < MIN_EXP - 8 {
            return None; // underflows to zero
        }
        if e2 >= 0 {
            round(neg, &(value << (e2 as u64)), &BigUint::one())
        } else {
            round(neg, &value, &(BigUint::one() << ((-e2) as u64)))
        }
    } else {
        let e = exp10 - frac_len;
        let magnitude = digits.len() as i64 + e; // value < 10^magnitude
        if magnitude - 1 > 4933 {
            return None;
        }
        if magnitude < -4952 {
            return None; // underflows to zero
        }
        if e >= 0 {
            round(neg, &(value * pow(10, e as u64)), &BigUint::one())
        } else {
            round(neg, &value, &pow(10, (-e) as u64))
        }
    }?;
    if rounded.mant == 0 {
        return None; // strtold underflow to zero: ERANGE, refused
    }
    Some(Parsed::Finite(rounded))
}

impl LongDouble {
    /// The exact sum rounded once, None if it overflows to infinity.
    pub fn add(&self, other: &LongDouble) -> Option<LongDouble> {
        let lo = self.exp.min(other.exp);
        let scaled = |x: &LongDouble| BigUint::from(x.mant) << ((x.exp - lo) as u64);
        let (a, b) = (scaled(self), scaled(other));
        let (neg, sum) = if self.neg == other.neg {
            (self.neg, a + b)
        } else if a >= b {
            (self.neg, a - b)
        } else {
            (other.neg, b - a)
        };
        // An exact zero from opposite signs is +0 in round-to-nearest.
        let neg = neg && !sum.is_zero();
        if lo >= 0 {
            round(neg, &(sum << (lo as u64)), &BigUint::one())
        } else {
            round(neg, &sum, &(BigUint::one() << ((-lo) as u64)))
        }
    }

    /// `%.17Lf` with trailing zeros (and a bare `.`) removed, `-0` as `0`: Redis's
    /// LD_STR_HUMAN.
    pub fn to_human(&self) -> String {
        // round(|v| × 10^17), ties to even as glibc's printf rounds.
        let scale = pow(10, 17);
        let num = BigUint::from(self.mant) * scale;
        let (n, d) = if self.exp >= 0 {
            (num << (self.exp as u64), BigUint::one())
        } else {
            (num, BigUint::one() << ((-self.exp) as u64))
        };
        let mut q = &n / &d;
        let twice = (&n - &q * &d) << 1u32;
        if twice > d || (twice == d && q.bit(0)) {
            q += 1u32;
        }
        let digits = format!("{:0>18}", q.to_string());
        let (int_part, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        out.push_str(int_part);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out = "0".into();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        match (parse(a.as_bytes())?, parse(b.as_bytes())?) {
            (Parsed::Finite(x), Parsed::Finite(y)) => x.add(&y).map(|s| s.to_human()),
            _ => None,
        }
    }

    #[test]
    fn redis_incrbyfloat_results() {
        // Replies of Redis 7.0 on x86-64 for INCRBYFLOAT.
        assert_eq!(incr("10.50", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(incr("0", "0.1").as_deref(), Some("0.1"));
        assert_eq!(incr("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(incr("3.0", "-3.0").as_deref(), Some("0"));
        assert_eq!(incr("-0.1", "0").as_deref(), Some("-0.1"));
        assert_eq!(incr("1", "1e-30").as_deref(), Some("1"));
        assert_eq!(incr("0", "1e-30").as_deref(), Some("0"));
        assert_eq!(incr("0", "-1e-30").as_deref(), Some("0"));
        assert_eq!(incr("0x10", "0.5").as_deref(), Some("16.5"));
    }

    #[test]
    fn refused_like_string2ld() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "nan", "1e99999", "1e-99999", ".", "0x", "--1",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse(b"inf"), Some(Parsed::Infinite));
        assert!(parse(b"1e4000").is_some());
        assert!(parse(b".5").is_some() && parse(b"5.").is_some());
    }

    #[test]
    fn overflow_is_detected() {
        let Some(Parsed::Finite(big)) = parse(b"1e4932") else {
            panic!("1e4932 parses");
        };
        assert_eq!(big.add(&big), None);
    }
}
