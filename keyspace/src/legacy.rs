//! The data-key layout of kvd before keyspace format 2, kept only so that the migration
//! (migrate.rs) can read directories written by it and tests can build them. Nothing else
//! may use it.
//!
//! ```text
//! legacy data key := namespace:u32-BE redis-key      ; engine keyspace "default"
//! ```

/// Bytes of namespace before the Redis key in a legacy data key.
pub const LEGACY_NAMESPACE_LEN: usize = 4;

/// The legacy (format 1) engine key of `key` in namespace `ns`.
pub fn legacy_data_key(ns: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(LEGACY_NAMESPACE_LEN + key.len());
    k.extend_from_slice(&ns.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits a legacy data key into namespace and Redis key; `None` if it is too short.
pub fn legacy_split_data_key(k: &[u8]) -> Option<(u32, &[u8])> {
    let (ns, key) = k.split_first_chunk::<LEGACY_NAMESPACE_LEN>()?;
    Some((u32::from_be_bytes(*ns), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_keys_sort_by_namespace_then_key_and_split_back() {
        let a = legacy_data_key(1, b"zzz");
        let b = legacy_data_key(2, b"");
        assert!(a < b);
        assert_eq!(legacy_split_data_key(&a), Some((1, &b"zzz"[..])));
        assert_eq!(legacy_split_data_key(&b), Some((2, &b""[..])));
        assert_eq!(legacy_split_data_key(b"abc"), None);
    }
}
