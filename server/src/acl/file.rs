//! The aclfile and `user` lines of the config file: one `user <name> <rules...>` per line,
//! `#` comments, Redis quoting. ACL SAVE writes the same format (the lines of ACL LIST)
//! atomically: a temporary file beside the target, fsync, rename, fsync of the directory,
//! so a crash leaves the old file or the new one, never half of either.

use super::rules::{merge_selector_args, Perms};
use crate::protocol::parser::split_args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// True if a user name has no spaces or NULs (Redis's rule for names).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.bytes().any(|b| b.is_ascii_whitespace() || b == 0)
}

/// Builds users from `user` declarations: `(where, words after "user")`. Errors name
/// the place and the rule, like Redis's aclfile errors.
pub fn parse_users<'a>(
    decls: impl IntoIterator<Item = (String, &'a [String])>,
) -> Result<BTreeMap<String, Perms>, String> {
    let mut users = BTreeMap::new();
    for (place, words) in decls {
        let Some((name, rules)) = words.split_first() else {
            return Err(format!("{place}: should start with user keyword."));
        };
        if !valid_name(name) {
            return Err(format!(
                "{place}: username '{name}' contains invalid characters."
            ));
        }
        if users.contains_key(name) {
            return Err(format!("{place}: Duplicate user '{name}' found."));
        }
        let rules = merge_selector_args(rules).ok_or_else(|| {
            format!("{place}: Unmatched parenthesis in acl selector starting at '('.")
        })?;
        let mut p = Perms::new_user();
        p.apply_all(rules.iter().map(String::as_str))
            .map_err(|(rule, e)| {
                format!(
                    "{place}: Error in user declaration '{rule}': {}.",
                    e.message()
                )
            })?;
        users.insert(name.clone(), p);
    }
    Ok(users)
}

/// Reads an aclfile.
pub fn load(path: &Path) -> Result<BTreeMap<String, Perms>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    let mut decls: Vec<(String, Vec<String>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let place = format!("{}:{}", path.display(), i + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_args(line.as_bytes())
            .ok_or_else(|| format!("{place}: unbalanced quotes in acl line."))?;
        let mut words: Vec<String> = words
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        if words.first().map(String::as_str) != Some("user") || words.len() < 2 {
            return Err(format!("{place} should start with user keyword."));
        }
        words.remove(0);
        decls.push((place, words));
    }
    parse_users(decls.iter().map(|(p, w)| (p.clone(), &w[..])))
}

/// Writes the users to `path` atomically.
pub fn save<'a>(
    path: &Path,
    users: impl IntoIterator<Item = (&'a str, String)>,
) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, rules) in users {
        text.push_str(&format!("user {name} {rules}\n"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "aclfile".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.acl");
        let mut alice = Perms::new_user();
        alice
            .apply_all(["on", ">pw", "~a:*", "+get", "(+set ~b)"])
            .unwrap();
        save(
            &path,
            [
                ("alice", alice.describe()),
                ("default", Perms::default_user().describe()),
            ],
        )
        .unwrap();
        let users = load(&path).unwrap();
        assert_eq!(users["alice"].describe(), alice.describe());
        assert_eq!(users["default"], Perms::default_user());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.acl");
        std::fs::write(&path, "# c\n\nuser a on\nuser b bogus\n").unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.ends_with(":4: Error in user declaration 'bogus': Syntax error."),
            "{e}"
        );
        std::fs::write(&path, "user a\nuser a\n").unwrap();
        assert!(load(&path).unwrap_err().contains("Duplicate user 'a'"));
        std::fs::write(&path, "nouser a\n").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .contains("should start with user keyword"));
        assert!(load(&dir.path().join("missing"))
            .unwrap_err()
            .starts_with("Error loading ACLs, opening file"));
    }
}
