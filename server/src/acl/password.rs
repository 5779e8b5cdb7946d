//! Passwords are kept only as SHA-256 digests (as Redis keeps them) and compared in
//! constant time, so neither memory dumps nor reply timing reveal them.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A password's SHA-256 digest.
pub type PassHash = [u8; 32];

/// The digest of a clear-text password.
pub fn hash(password: &[u8]) -> PassHash {
    Sha256::digest(password).into()
}

/// Lower-case hex, as ACL GETUSER and ACL LIST show digests.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a `#<hash>` digest: exactly 64 lower-case hex characters (Redis's rule).
pub fn from_hex(s: &str) -> Option<PassHash> {
    let b = s.as_bytes();
    if b.len() != 64 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// True if `password` matches one of `stored`. Every digest is compared, each in
/// constant time, so the time taken says nothing about which or how much matched.
pub fn matches(stored: &[PassHash], password: &[u8]) -> bool {
    let h = hash(password);
    stored
        .iter()
        .fold(subtle::Choice::from(0), |acc, s| acc | s.ct_eq(&h))
        .into()
}

/// ACL GENPASS: `bits` random bits from the OS as hex (rounded up to a nibble).
pub fn generate(bits: usize) -> String {
    let chars = bits.div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut s = to_hex(&bytes);
    s.truncate(chars);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_and_match() {
        let h = hash(b"foobar");
        assert_eq!(
            to_hex(&h),
            "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
        );
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert!(from_hex(&to_hex(&h).to_uppercase()).is_none());
        assert!(from_hex("abc").is_none());
        assert!(matches(&[hash(b"x"), h], b"foobar"));
        assert!(!matches(&[hash(b"x")], b"foobar"));
        assert!(!matches(&[], b""));
    }

    #[test]
    fn genpass_lengths() {
        assert_eq!(generate(256).len(), 64);
        assert_eq!(generate(5).len(), 2);
        assert_ne!(generate(128), generate(128));
    }
}
