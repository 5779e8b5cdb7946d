//! ACL users on a cluster (docs/security.md, "Users on a cluster"): each user is one
//! cluster metadata entry `acl/user/<name>` whose value is the user's rules as ACL LIST
//! writes them (empty: the user was deleted). One entry per user, not one for the whole
//! table, so that two nodes changing two different users at once both keep their
//! change under last-writer-wins; two changes of the same user keep the later one whole.

use super::file::parse_users;
use super::{protected_mode_violation, Acl, User, DEFAULT_USER};
use crate::config::Config;
use parking_lot::RwLock;

/// Prefix of the ACL user entries' names.
pub const USER_ENTRY_PREFIX: &str = "acl/user/";

/// The metadata entry name of user `name`.
pub fn user_entry_name(name: &str) -> String {
    format!("{USER_ENTRY_PREFIX}{name}")
}

/// What applying a replicated user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Created or changed.
    Set,
    /// Removed: its connections must close.
    Removed,
    /// Nothing to do (a deletion of a user this node does not have).
    Unchanged,
}

impl Acl {
    /// The entry value that describes user `name` now (`None` if it does not exist):
    /// its rules as ACL LIST shows them.
    pub fn replicated_value(&self, name: &str) -> Option<String> {
        self.get(name).map(|u| u.perms().describe())
    }

    /// Applies user `name` as another node wrote it: `rules` as ACL LIST shows them, or
    /// `None` for a deleted user. The user's rules are replaced whole. A default user
    /// that protected mode would refuse here (a passwordless default user on this node's
    /// non-loopback bind) is refused, as ACL SETUSER would be.
    pub fn apply_replicated(
        &self,
        config: &RwLock<Config>,
        name: &str,
        rules: Option<&str>,
    ) -> Result<UserChange, String> {
        let _g = self.changes.lock();
        let Some(rules) = rules else {
            if name == DEFAULT_USER {
                return Err("the default user cannot be removed".into());
            }
            let removed = self.users.write().remove(name).is_some();
            return Ok(match removed {
                true => UserChange::Removed,
                false => UserChange::Unchanged,
            });
        };
        let words: Vec<String> = std::iter::once(name.to_string())
            .chain(rules.split_whitespace().map(String::from))
            .collect();
        let place = format!("replicated user '{name}'");
        let mut parsed = parse_users([(place, &words[..])])?;
        let perms = parsed
            .remove(name)
            .ok_or_else(|| format!("replicated user '{name}' did not parse"))?;
        if name == DEFAULT_USER {
            if let Some(why) = protected_mode_violation(&config.read(), &perms) {
                return Err(format!("replicated default user refused: {why}"));
            }
        }
        let existing = self.get(name);
        match existing {
            Some(u) => u.replace(perms),
            None => {
                self.users
                    .write()
                    .insert(name.to_string(), User::new(name, perms));
            }
        }
        Ok(UserChange::Set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_travels_as_its_acl_list_rules_and_comes_back_equal() {
        let config = RwLock::new(Config::default());
        let a = Acl::from_config(&config.read()).unwrap();
        let b = Acl::from_config(&config.read()).unwrap();
        let rules: Vec<String> = ["on", ">pw", "~app:*", "+get", "(~x +set)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.set_user(&config, "alice", &rules).unwrap();
        let value = a.replicated_value("alice").unwrap();
        assert_eq!(
            b.apply_replicated(&config, "alice", Some(&value)),
            Ok(UserChange::Set)
        );
        assert_eq!(
            *b.get("alice").unwrap().perms(),
            *a.get("alice").unwrap().perms()
        );
        assert!(b.authenticate(b"alice", b"pw").is_some());
        assert_eq!(
            b.apply_replicated(&config, "alice", None),
            Ok(UserChange::Removed)
        );
        assert!(b.get("alice").is_none());
        assert_eq!(
            b.apply_replicated(&config, "alice", None),
            Ok(UserChange::Unchanged)
        );
        assert!(b.apply_replicated(&config, DEFAULT_USER, None).is_err());
        assert!(b
            .apply_replicated(&config, "bob", Some("on +nosuchcommand"))
            .is_err());
    }
}
