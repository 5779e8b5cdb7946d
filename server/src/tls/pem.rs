//! Reads PEM files: certificate chains, private keys and CA roots. Every error names the
//! parameter and the path, because these are read at start and an operator must see at
//! once which file is wrong.

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn describe(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read: {e}"),
        pem::Error::NoItemsFound => "no PEM item of the expected kind found".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The certificates of a PEM file, leaf first. `param` names the setting in errors.
pub fn cert_chain(param: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{param} {path}: {}", describe(e)))?;
    if certs.is_empty() {
        return Err(format!("{param} {path}: no certificate found"));
    }
    Ok(certs)
}

const ENCRYPTED_PKCS8: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_PKCS8_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The private key of a PEM file: PKCS#8, PKCS#1 or SEC1, or an encrypted PKCS#8 key
/// (`BEGIN ENCRYPTED PRIVATE KEY`, what `openssl pkcs8 -topk8` and OpenSSL 3's `genpkey
/// -aes256` write) decrypted with `pass`. `pass_param` names the passphrase setting.
pub fn private_key(
    param: &str,
    path: &str,
    pass_param: &str,
    pass: &str,
) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{param} {path}: cannot read: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    if let Some(start) = text.find(ENCRYPTED_PKCS8) {
        if pass.is_empty() {
            return Err(format!(
                "{param} {path}: the key is encrypted and {pass_param} is not set"
            ));
        }
        let end = text[start..]
            .find(ENCRYPTED_PKCS8_END)
            .map(|e| start + e + ENCRYPTED_PKCS8_END.len())
            .ok_or_else(|| format!("{param} {path}: not valid PEM: no {ENCRYPTED_PKCS8_END}"))?;
        let der = decrypt_pkcs8(&text[start..end], pass)
            .map_err(|e| format!("{param} {path}: cannot decrypt with {pass_param}: {e}"))?;
        return Ok(PrivateKeyDer::Pkcs8(der.into()));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "{param} {path}: the key uses OpenSSL's legacy PEM encryption, which kvd does not \
             read; convert it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc \
             -in {path} -out key.p8`"
        ));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| format!("{param} {path}: {}", describe(e)))
}

/// The PKCS#8 DER inside one `ENCRYPTED PRIVATE KEY` PEM section (PBES2).
fn decrypt_pkcs8(section: &str, pass: &str) -> Result<Vec<u8>, String> {
    let (_, doc) = pkcs8::der::Document::from_pem(section).map_err(|e| e.to_string())?;
    let info =
        pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| e.to_string())?;
    // A wrong passphrase usually shows as bad padding; say what it most likely is.
    let key = info
        .decrypt(pass)
        .map_err(|e| format!("{e} (wrong passphrase?)"))?;
    Ok(key.as_bytes().to_vec())
}

/// CA roots from `tls-ca-cert-file` and every PEM file in `tls-ca-cert-dir` (either may be
/// empty, not both).
pub fn roots(ca_file: &str, ca_dir: &str) -> Result<RootCertStore, String> {
    let mut files: Vec<(&str, String)> = Vec::new();
    if !ca_file.is_empty() {
        files.push(("tls-ca-cert-file", ca_file.to_string()));
    }
    if !ca_dir.is_empty() {
        let entries = std::fs::read_dir(ca_dir)
            .map_err(|e| format!("tls-ca-cert-dir {ca_dir}: cannot read: {e}"))?;
        let mut paths: Vec<String> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        paths.sort();
        files.extend(paths.into_iter().map(|p| ("tls-ca-cert-dir", p)));
    }
    let mut store = RootCertStore::empty();
    for (param, path) in &files {
        // A CA directory (OpenSSL's c_rehash layout) may hold files that are not
        // certificates; only an explicit CA file must be one.
        let certs = match cert_chain(param, path) {
            Ok(c) => c,
            Err(_) if *param == "tls-ca-cert-dir" => continue,
            Err(e) => return Err(e),
        };
        for c in certs {
            store
                .add(c)
                .map_err(|e| format!("{param} {path}: not a usable CA certificate: {e}"))?;
        }
    }
    if store.is_empty() {
        let what = if ca_file.is_empty() && ca_dir.is_empty() {
            "neither is set".to_string()
        } else {
            format!("no CA certificate found in {}", [ca_file, ca_dir].join(" "))
        };
        return Err(format!(
            "tls-ca-cert-file or tls-ca-cert-dir must name CA certificates: {what}"
        ));
    }
    Ok(store)
}
