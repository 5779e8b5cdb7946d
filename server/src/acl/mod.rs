//! Users and permissions as in Redis 7.0 ACLs (docs/security.md, "Users (ACL)").
//!
//! `rules` is the rule language and a user's permissions, `categories` derives command
//! categories and ids from the command table, `check` is the per-command permission
//! check, `password` hashes and compares passwords, `log` is ACL LOG, `file` the aclfile.
//! The default user keeps `requirepass` semantics: its password is `requirepass`, and
//! without one it is `nopass`. Protected mode is enforced here too (defect 11): no change
//! may leave a non-loopback bind with a passwordless default user while it is on.

pub mod categories;
pub mod check;
pub mod file;
pub mod log;
pub mod password;
pub mod replicated;
pub mod rules;

use crate::config::Config;
use log::{AclLog, LogEntry, Reason};
use parking_lot::{Mutex, MutexGuard, RwLock};
use rules::Perms;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The name of the user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// A user. Connections hold an `Arc` of it, so ACL SETUSER changes what they may do at
/// their next command, as in Redis.
#[derive(Debug)]
pub struct User {
    /// Its name.
    pub name: String,
    perms: RwLock<Arc<Perms>>,
}

impl User {
    fn new(name: &str, perms: Perms) -> Arc<User> {
        Arc::new(User {
            name: name.to_string(),
            perms: RwLock::new(Arc::new(perms)),
        })
    }

    /// Its current permissions (a snapshot: cheap to take, never blocks a change long).
    pub fn perms(&self) -> Arc<Perms> {
        self.perms.read().clone()
    }

    fn replace(&self, p: Perms) {
        *self.perms.write() = Arc::new(p);
    }
}

/// All users, the ACL LOG, and the lock that makes every change check protected mode
/// against the state it replaces.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    default: Arc<User>,
    /// ACL LOG.
    pub log: Mutex<AclLog>,
    /// Refusals by reason (INFO stats `acl_access_denied_auth/cmd/key/channel`).
    pub denied: Denied,
    changes: Mutex<()>,
}

/// Counts of refusals since start or CONFIG RESETSTAT.
#[derive(Default)]
pub struct Denied {
    /// Wrong user or password.
    pub auth: AtomicU64,
    /// Command not allowed.
    pub cmd: AtomicU64,
    /// Key not allowed.
    pub key: AtomicU64,
    /// Channel not allowed.
    pub channel: AtomicU64,
}

impl Denied {
    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [&self.auth, &self.cmd, &self.key, &self.channel] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Redis refuses this combination at start (`ACLLoadConfiguredUsers`).
const BOTH_SOURCES: &str = "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.";

/// The default user as `requirepass` defines it.
fn default_from_requirepass(base: &Perms, requirepass: Option<&str>) -> Perms {
    let mut p = base.clone();
    let _ = p.apply("resetpass"); // constant rule, cannot fail
    let _ = match requirepass {
        Some(pw) => p.apply(&format!(">{pw}")),
        None => p.apply("nopass"),
    };
    p
}

/// Why a configuration may not run: protected mode is on, a non-loopback address is
/// bound, and the default user needs no password. `None` if it may.
pub fn protected_mode_violation(c: &Config, default: &Perms) -> Option<String> {
    (c.protected_mode && default.nopass && !c.binds_loopback_only()).then(|| {
        format!(
            "protected mode is on and kvd listens on {}: the default user must have a password \
             (set requirepass or an ACL password), or bind only loopback addresses, or set \
             protected-mode no if the network is trusted",
            c.bind.join(" ")
        )
    })
}

/// Redis's reply to a non-loopback client while protected mode applies.
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

impl Acl {
    /// Users at start: the default user from `requirepass`, then `user` lines of the
    /// config file or the aclfile (not both, as in Redis).
    pub fn from_config(c: &Config) -> Result<Acl, String> {
        if c.aclfile.is_some() && !c.users.is_empty() {
            return Err(BOTH_SOURCES.into());
        }
        let mut users = match &c.aclfile {
            Some(path) => file::load(path)?,
            None => file::parse_users(
                c.users
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (format!("user line {}", i + 1), &w[..])),
            )?,
        };
        let default = users.remove(DEFAULT_USER).unwrap_or_else(|| {
            default_from_requirepass(&Perms::default_user(), c.requirepass.as_deref())
        });
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            default: User::new(DEFAULT_USER, default),
            log: Mutex::new(AclLog::default()),
            denied: Denied::default(),
            changes: Mutex::new(()),
        };
        acl.install(users);
        Ok(acl)
    }

    /// Replaces every user but the default one (whose `Arc` connections keep).
    fn install(&self, users: BTreeMap<String, Perms>) {
        let mut map: BTreeMap<String, Arc<User>> = users
            .into_iter()
            .map(|(n, p)| (n.clone(), User::new(&n, p)))
            .collect();
        map.insert(DEFAULT_USER.into(), self.default.clone());
        *self.users.write() = map;
    }

    /// The default user.
    pub fn default_user(&self) -> &Arc<User> {
        &self.default
    }

    /// The default user if a connection runs as it without AUTH (`on` and `nopass`).
    pub fn open_default(&self) -> Option<Arc<User>> {
        let p = self.default.perms();
        (p.enabled && p.nopass).then(|| self.default.clone())
    }

    /// A user by name.
    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// All users, by name.
    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// The user if it exists, is `on`, and `password` is one of its passwords (or it is
    /// `nopass`). Passwords are compared in constant time.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let user = self.get(std::str::from_utf8(name).ok()?)?;
        let p = user.perms();
        let ok = p.enabled && (password::matches(&p.passwords, pass) || p.nopass);
        ok.then_some(user)
    }

    /// The protected-mode check at start.
    pub fn check_start(&self, c: &Config) -> Result<(), String> {
        match protected_mode_violation(c, &self.default.perms()) {
            Some(why) => Err(format!("refusing to start: {why}")),
            None => Ok(()),
        }
    }

    /// ACL SETUSER: creates or changes a user. `Err` is the reply text without `ERR `.
    pub fn set_user(
        &self,
        config: &RwLock<Config>,
        name: &str,
        rules: &[String],
    ) -> Result<(), String> {
        let _g = self.changes.lock();
        let c = &*config.read();
        let rules = merge_selector_args(rules)?;
        let existing = self.get(name);
        let mut p = existing
            .as_ref()
            .map(|u| (*u.perms()).clone())
            .unwrap_or_else(Perms::new_user);
        p.apply_all(rules.iter().map(String::as_str))
            .map_err(|(rule, e)| {
                format!("Error in ACL SETUSER modifier '{rule}': {}", e.message())
            })?;
        if name == DEFAULT_USER {
            if let Some(why) = protected_mode_violation(c, &p) {
                return Err(format!(
                    "Error in ACL SETUSER for the default user: refused, {why}"
                ));
            }
        }
        match existing {
            Some(u) => u.replace(p),
            None => {
                self.users
                    .write()
                    .insert(name.to_string(), User::new(name, p));
            }
        }
        Ok(())
    }

    /// ACL DELUSER: removes users (never the default one); returns the removed names.
    pub fn delete_users(&self, names: &[String]) -> Result<Vec<String>, String> {
        if names.iter().any(|n| n == DEFAULT_USER) {
            return Err("The 'default' user cannot be removed".into());
        }
        let _g = self.changes.lock();
        let mut users = self.users.write();
        Ok(names
            .iter()
            .filter(|n| users.remove(n.as_str()).is_some())
            .cloned()
            .collect())
    }

    /// ACL LOAD: replaces all users with the aclfile's, or changes nothing. Returns the
    /// names of the users replaced, whose connections must close (as in Redis 7.0).
    pub fn load(&self, config: &RwLock<Config>) -> Result<Vec<String>, String> {
        let _g = self.changes.lock();
        let c = config.read().clone();
        let path = c.aclfile.as_ref().ok_or(NO_ACLFILE)?;
        let mut users = file::load(path)?;
        let default = users.remove(DEFAULT_USER).unwrap_or_else(|| {
            default_from_requirepass(&Perms::default_user(), c.requirepass.as_deref())
        });
        if let Some(why) = protected_mode_violation(&c, &default) {
            return Err(format!("Error loading ACLs: refused, {why}"));
        }
        let old: Vec<String> = self
            .users
            .read()
            .keys()
            .filter(|n| *n != DEFAULT_USER)
            .cloned()
            .collect();
        self.default.replace(default);
        self.install(users);
        Ok(old)
    }

    /// ACL SAVE: writes every user to the aclfile, atomically.
    pub fn save(&self, config: &RwLock<Config>) -> Result<(), String> {
        let _g = self.changes.lock();
        let path = config.read().aclfile.clone().ok_or(NO_ACLFILE)?;
        let lines: Vec<(String, String)> = self
            .all()
            .iter()
            .map(|u| (u.name.clone(), u.perms().describe()))
            .collect();
        file::save(&path, lines.iter().map(|(n, d)| (n.as_str(), d.clone()))).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "ACL SAVE failed");
            "There was an error trying to save the ACLs. Please check the server logs for more information".to_string()
        })
    }

    /// CONFIG SET hook: `next` is the configuration about to replace `config`. Moves a
    /// changed `requirepass` onto the default user and refuses a change that would leave
    /// a passwordless default user on a non-loopback bind under protected mode. The
    /// caller installs `next` before dropping the returned guard, so no ACL change can
    /// slip in between the check and the new configuration.
    pub fn config_changing(
        &self,
        config: &RwLock<Config>,
        next: &Config,
    ) -> Result<MutexGuard<'_, ()>, String> {
        let g = self.changes.lock();
        let old = config.read().clone();
        let current = self.default.perms();
        let default = if old.requirepass != next.requirepass {
            default_from_requirepass(&current, next.requirepass.as_deref())
        } else {
            (*current).clone()
        };
        if let Some(why) = protected_mode_violation(next, &default) {
            let arg = if old.requirepass != next.requirepass {
                "requirepass"
            } else if old.bind != next.bind {
                "bind"
            } else {
                "protected-mode"
            };
            return Err(format!(
                "CONFIG SET failed (possibly related to argument '{arg}') - refused, {why}"
            ));
        }
        if *current != default {
            self.default.replace(default);
        }
        self.log.lock().truncate(next.acllog_max_len as usize);
        Ok(g)
    }

    /// Records a refusal in ACL LOG.
    pub fn log_denial(
        &self,
        reason: Reason,
        context: &'static str,
        object: String,
        username: &str,
        client_info: String,
        max_len: usize,
    ) {
        match reason {
            Reason::Auth => &self.denied.auth,
            Reason::Command => &self.denied.cmd,
            Reason::Key => &self.denied.key,
            Reason::Channel => &self.denied.channel,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.log.lock().add(
            LogEntry {
                count: 1,
                reason,
                context,
                object: log::bounded(object),
                username: log::bounded(username.to_string()),
                last: Instant::now(),
                client_info,
            },
            max_len,
        );
    }

    /// Whether a connection from `peer` must be refused at accept time: protected mode is
    /// on, the default user needs no password and the peer is not on the loopback
    /// interface (Redis's check in `clientAcceptHandler`).
    pub fn deny_at_accept(&self, c: &Config, peer: IpAddr) -> bool {
        c.protected_mode && self.default.perms().nopass && !is_loopback(peer)
    }
}

fn merge_selector_args(rules: &[String]) -> Result<Vec<String>, String> {
    rules::merge_selector_args(rules)
        .ok_or_else(|| "Unmatched parenthesis in acl selector starting at '('.".to_string())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Redis's reply to ACL SAVE/LOAD without an aclfile (without `ERR `).
pub const NO_ACLFILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: &str, protected: bool, pass: Option<&str>) -> Config {
        Config {
            bind: vec![bind.into()],
            protected_mode: protected,
            requirepass: pass.map(String::from),
            ..Config::default()
        }
    }

    #[test]
    fn requirepass_is_the_default_password() {
        let acl = Acl::from_config(&config("127.0.0.1", true, Some("pw"))).unwrap();
        assert!(acl.open_default().is_none());
        assert!(acl.authenticate(b"default", b"pw").is_some());
        assert!(acl.authenticate(b"default", b"nope").is_none());
        assert!(acl.authenticate(b"nobody", b"pw").is_none());
        let open = Acl::from_config(&config("127.0.0.1", true, None)).unwrap();
        assert!(open.open_default().is_some());
        assert!(open.authenticate(b"default", b"anything").is_some());
    }

    #[test]
    fn protected_mode_refuses_opening_changes() {
        let old = config("0.0.0.0", true, Some("pw"));
        let acl = Acl::from_config(&old).unwrap();
        assert!(acl.check_start(&old).is_ok());
        let current = RwLock::new(old.clone());
        let mut next = old.clone();
        next.requirepass = None;
        let e = acl.config_changing(&current, &next).unwrap_err();
        assert!(
            e.contains("'requirepass'") && e.contains("protected mode"),
            "{e}"
        );
        assert!(
            acl.open_default().is_none(),
            "refused change must not apply"
        );
        let e = acl
            .set_user(&current, "default", &["nopass".to_string()])
            .unwrap_err();
        assert!(e.contains("protected mode"), "{e}");
        next.protected_mode = false;
        assert!(acl.config_changing(&current, &next).is_ok());
        assert!(acl.open_default().is_some());
        assert!(Acl::from_config(&config("0.0.0.0", true, None))
            .unwrap()
            .check_start(&config("0.0.0.0", true, None))
            .is_err());
    }

    #[test]
    fn accept_time_denial() {
        let c = config("127.0.0.1", true, None);
        let acl = Acl::from_config(&c).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(acl.deny_at_accept(&c, ip("192.0.2.7")));
        assert!(acl.deny_at_accept(&c, ip("2001:db8::1")));
        assert!(!acl.deny_at_accept(&c, ip("127.0.0.1")));
        assert!(!acl.deny_at_accept(&c, ip("::1")));
        assert!(!acl.deny_at_accept(&c, ip("::ffff:127.0.0.1")));
        let c = config("127.0.0.1", false, None);
        assert!(!acl.deny_at_accept(&c, ip("192.0.2.7")));
        let c = config("127.0.0.1", true, Some("pw"));
        let acl = Acl::from_config(&c).unwrap();
        assert!(!acl.deny_at_accept(&c, ip("192.0.2.7")));
    }

    #[test]
    fn config_users_and_aclfile_are_exclusive() {
        let mut c = config("127.0.0.1", true, None);
        c.users = vec![vec!["alice".into(), "on".into(), ">pw".into()]];
        let acl = Acl::from_config(&c).unwrap();
        assert!(acl.authenticate(b"alice", b"pw").is_some());
        c.aclfile = Some("/nonexistent".into());
        assert_eq!(Acl::from_config(&c).err().as_deref(), Some(BOTH_SOURCES));
    }
}
