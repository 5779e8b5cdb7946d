//! Protocol versions (`tls-protocols`) and cipher suites (`tls-ciphersuites` for TLS 1.3,
//! `tls-ciphers` for TLS 1.2) by the names OpenSSL, and so Redis, gives them. rustls has
//! no cipher-string language (`HIGH:!aNULL`): lists of names only, and a clear error
//! for anything else.

use rustls::crypto::ring::cipher_suite as rs;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// TLS 1.3 suites: OpenSSL and IANA use the same names.
static TLS13: &[(&str, SupportedCipherSuite)] = &[
    ("TLS_AES_256_GCM_SHA384", rs::TLS13_AES_256_GCM_SHA384),
    ("TLS_AES_128_GCM_SHA256", rs::TLS13_AES_128_GCM_SHA256),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        rs::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// TLS 1.2 suites rustls implements, by OpenSSL name (IANA names are accepted too).
static TLS12: &[(&str, SupportedCipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        rs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        rs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        rs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        rs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        rs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        rs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Parses `tls-protocols`: `TLSv1.2`, `TLSv1.3` separated by spaces; empty = both.
pub fn protocols(v: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let mut out = Vec::new();
    for word in v.split_whitespace() {
        let version = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!(
                    "{word} is not supported: it is insecure and rustls offers only TLSv1.2 and TLSv1.3"
                ))
            }
            _ => return Err(format!("invalid TLS protocol '{word}'")),
        };
        if !out.contains(&version) {
            out.push(version);
        }
    }
    if out.is_empty() {
        out = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    }
    Ok(out)
}

/// Parses a colon-separated list of suite names against one table; empty = the table.
fn suites(
    v: &str,
    table: &[(&str, SupportedCipherSuite)],
    what: &str,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = Vec::new();
    for name in v.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        let found = table.iter().find(|(openssl, suite)| {
            openssl.eq_ignore_ascii_case(name)
                || suite
                    .suite()
                    .as_str()
                    .is_some_and(|iana| iana.eq_ignore_ascii_case(name))
        });
        match found {
            Some((_, suite)) => out.push(*suite),
            None => {
                let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unsupported {what} '{name}' (kvd accepts a colon-separated list of: {})",
                    known.join(", ")
                ));
            }
        }
    }
    if out.is_empty() {
        out = table.iter().map(|(_, s)| *s).collect();
    }
    Ok(out)
}

/// Parses `tls-ciphersuites` (TLS 1.3).
pub fn tls13_suites(v: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    suites(v, TLS13, "TLSv1.3 ciphersuite")
}

/// Parses `tls-ciphers` (TLS 1.2).
pub fn tls12_suites(v: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    suites(v, TLS12, "TLSv1.2 cipher")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_like_redis() {
        assert_eq!(protocols("").unwrap().len(), 2);
        assert_eq!(protocols("TLSv1.3").unwrap(), vec![&rustls::version::TLS13]);
        assert_eq!(protocols("tlsv1.2 TLSv1.2").unwrap().len(), 1);
        assert!(protocols("TLSv1.1").unwrap_err().contains("not supported"));
        assert!(protocols("SSLv3").unwrap_err().contains("invalid"));
    }

    #[test]
    fn suite_names_openssl_and_iana() {
        assert_eq!(tls13_suites("").unwrap().len(), 3);
        let one = tls13_suites("TLS_CHACHA20_POLY1305_SHA256").unwrap();
        assert_eq!(one, vec![rs::TLS13_CHACHA20_POLY1305_SHA256]);
        let two =
            tls12_suites("ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
                .unwrap();
        assert_eq!(
            two,
            vec![
                rs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                rs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            ]
        );
        // A TLS 1.2 name is not a TLS 1.3 suite, and cipher strings are refused clearly.
        assert!(tls13_suites("ECDHE-RSA-AES128-GCM-SHA256").is_err());
        let e = tls12_suites("HIGH:!aNULL").unwrap_err();
        assert!(
            e.contains("'HIGH'") && e.contains("ECDHE-RSA-AES256-GCM-SHA384"),
            "{e}"
        );
    }
}
