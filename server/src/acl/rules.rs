//! A user's permissions and the ACL rule language that changes them (Redis 7.0's
//! `ACLSetUser` / `ACLSetSelector`): `on off >pass <pass #hash !hash nopass resetpass
//! ~pattern %R~ %W~ %RW~ allkeys resetkeys &pattern allchannels resetchannels +cmd -cmd
//! +cmd|sub +@cat -@cat allcommands nocommands (selector) clearselectors reset`.
//! Rules apply to a copy, so a bad rule in a list changes nothing.

use super::categories::{category_bit, index};
use super::password::{self, PassHash};
use std::collections::BTreeMap;

/// Why a rule was refused; `message` is Redis's text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL.
    Syntax,
    /// ENOENT.
    UnknownCommand,
    /// EEXIST.
    KeyAfterAllKeys,
    /// EISDIR.
    ChannelAfterAllChannels,
    /// ENODEV.
    NoSuchPassword,
    /// EBADMSG.
    BadHash,
    /// ECHILD.
    FirstArgOfSubcommand,
}

impl RuleError {
    /// Redis 7.0's wording (`ACLSetUserStringError`).
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::KeyAfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// A key pattern with the access it grants (`~p` = read and write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// Glob pattern.
    pub pattern: String,
    /// `%R~`.
    pub read: bool,
    /// `%W~`.
    pub write: bool,
}

impl KeyPattern {
    fn describe(&self) -> String {
        match (self.read, self.write) {
            (true, false) => format!("%R~{}", self.pattern),
            (false, true) => format!("%W~{}", self.pattern),
            _ => format!("~{}", self.pattern),
        }
    }
}

/// Commands, keys and channels: the root permissions of a user, or one `(...)` selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// One bit per command id (categories::index).
    commands: Vec<u64>,
    /// `+cmd|firstarg` rules of commands otherwise denied: id -> allowed first args.
    pub first_args: BTreeMap<usize, Vec<String>>,
    /// Started from `+@all` (else `-@all`); the rules after it, as typed (normalized).
    all_base: bool,
    rules: Vec<String>,
    /// `allkeys` / `~*`.
    pub all_keys: bool,
    /// Key patterns.
    pub keys: Vec<KeyPattern>,
    /// `allchannels` / `&*`.
    pub all_channels: bool,
    /// Channel patterns.
    pub channels: Vec<String>,
}

impl Selector {
    /// True if command `id` is allowed outright.
    pub fn allows(&self, id: usize) -> bool {
        self.commands
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set(&mut self, id: usize, on: bool) {
        let words = index().all.len().div_ceil(64);
        self.commands.resize(words, 0);
        if on {
            self.commands[id / 64] |= 1 << (id % 64);
        } else {
            self.commands[id / 64] &= !(1 << (id % 64));
        }
        self.first_args.remove(&id);
    }

    /// Allows or denies a command and, for a container, all its subcommands.
    fn change_command(&mut self, id: usize, on: bool) {
        for i in index().with_subcommands(id) {
            self.set(i, on);
        }
    }

    fn all_commands(&mut self, on: bool) {
        for id in 0..index().all.len() {
            self.set(id, on);
        }
        self.all_base = on;
        self.rules.clear();
    }

    /// Records a command rule for ACL GETUSER/LIST, replacing an earlier rule on the
    /// same command or category so the text stays short and means the same.
    fn note(&mut self, rule: &str) {
        let rule = rule.to_ascii_lowercase();
        self.rules.retain(|r| r[1..] != rule[1..]);
        self.rules.push(rule);
    }

    /// The command rules as ACL GETUSER shows them (`+@all -flushall`).
    pub fn command_rules(&self) -> String {
        let mut s = String::from(if self.all_base { "+@all" } else { "-@all" });
        for r in &self.rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// Key patterns as ACL GETUSER shows them (`~*`, `%R~a:* ~b`).
    pub fn keys_text(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let v: Vec<String> = self.keys.iter().map(KeyPattern::describe).collect();
        v.join(" ")
    }

    /// Channel patterns as ACL GETUSER shows them.
    pub fn channels_text(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let v: Vec<String> = self.channels.iter().map(|c| format!("&{c}")).collect();
        v.join(" ")
    }

    /// The selector as ACL LIST writes it (`~* &* +@all`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.all_keys {
            parts.push("~*".to_string());
        } else {
            parts.extend(self.keys.iter().map(KeyPattern::describe));
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            parts.extend(self.channels.iter().map(|c| format!("&{c}")));
        }
        parts.push(self.command_rules());
        parts.join(" ")
    }

    /// Applies one selector rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &str) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => self.all_commands(true),
            "nocommands" | "-@all" => self.all_commands(false),
            _ => match op.as_bytes().first() {
                Some(b'~' | b'%') => self.add_key_pattern(op)?,
                Some(b'&') => {
                    if self.all_channels {
                        return Err(RuleError::ChannelAfterAllChannels);
                    }
                    let c = op[1..].to_string();
                    if !self.channels.contains(&c) {
                        self.channels.push(c);
                    }
                }
                Some(b'+' | b'-') if op[1..].starts_with('@') => {
                    let bit = category_bit(&op[2..]).ok_or(RuleError::UnknownCommand)?;
                    let on = op.starts_with('+');
                    for (id, e) in index().all.iter().enumerate() {
                        if e.categories & bit != 0 {
                            self.change_command(id, on);
                        }
                    }
                    self.note(op);
                }
                Some(b'+') => self.allow_command(&op[1..])?,
                Some(b'-') => {
                    let id = index().by_name(&op[1..]).ok_or(RuleError::UnknownCommand)?;
                    self.change_command(id, false);
                    self.note(op);
                }
                _ => return Err(RuleError::Syntax),
            },
        }
        Ok(())
    }

    fn allow_command(&mut self, name: &str) -> Result<(), RuleError> {
        let ix = index();
        // Split at the last `|`, as Redis does: `+config|get|x` names a first argument of
        // the subcommand `config|get`, which is refused as such.
        let Some((cmd, sub)) = name.rsplit_once('|') else {
            let id = ix.by_name(name).ok_or(RuleError::UnknownCommand)?;
            self.change_command(id, true);
            self.note(&format!("+{name}"));
            return Ok(());
        };
        let id = ix.by_name(cmd).ok_or(RuleError::UnknownCommand)?;
        if ix.all[id].parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if ix.all[id].spec.subcommands.is_empty() {
            // Redis 7.0's deprecated first-arg rule (`+select|0`); moot if allowed already.
            if self.allows(id) {
                return Ok(());
            }
            let list = self.first_args.entry(id).or_default();
            let sub = sub.to_ascii_lowercase();
            if !list.contains(&sub) {
                list.push(sub);
            }
        } else {
            let sid = ix.by_name(name).ok_or(RuleError::UnknownCommand)?;
            self.change_command(sid, true);
        }
        self.note(&format!("+{name}"));
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &str) -> Result<(), RuleError> {
        let (read, write, pattern) = if let Some(p) = op.strip_prefix('~') {
            (true, true, p)
        } else {
            let (flags, p) = op[1..].split_once('~').ok_or(RuleError::Syntax)?;
            let (mut r, mut w) = (false, false);
            for c in flags.chars() {
                match c.to_ascii_uppercase() {
                    'R' if !r => r = true,
                    'W' if !w => w = true,
                    _ => return Err(RuleError::Syntax),
                }
            }
            if !(r || w) {
                return Err(RuleError::Syntax);
            }
            (r, w, p)
        };
        if self.all_keys {
            return Err(RuleError::KeyAfterAllKeys);
        }
        if pattern == "*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_string(),
                read,
                write,
            }),
        }
        Ok(())
    }
}

/// Everything ACL knows about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    /// `on` / `off`.
    pub enabled: bool,
    /// `nopass`: any password is accepted.
    pub nopass: bool,
    /// `sanitize-payload` (true) / `skip-sanitize-payload` (false); accepted for
    /// compatibility (kvd has no RESTORE).
    pub sanitize: Option<bool>,
    /// SHA-256 digests, in the order added.
    pub passwords: Vec<PassHash>,
    /// The root selector.
    pub root: Selector,
    /// `(...)` selectors: a command runs if the root or any of these allows it.
    pub selectors: Vec<Selector>,
}

impl Perms {
    /// A new user: `off`, no passwords, no commands, keys or channels (Redis 7.0 with
    /// `acl-pubsub-default resetchannels`).
    pub fn new_user() -> Perms {
        Perms::default()
    }

    /// The default user with no password: `on nopass ~* &* +@all`.
    pub fn default_user() -> Perms {
        let mut p = Perms::new_user();
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            // These rules are constants that cannot fail.
            let _ = p.apply(rule);
        }
        p
    }

    /// Applies rules in order; on error nothing is changed and the failing rule is
    /// returned with its error.
    pub fn apply_all<'a>(
        &mut self,
        rules: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), (&'a str, RuleError)> {
        let mut next = self.clone();
        for r in rules {
            next.apply(r).map_err(|e| (r, e))?;
        }
        *self = next;
        Ok(())
    }

    /// Applies one user rule (Redis's `ACLSetUser`).
    pub fn apply(&mut self, op: &str) -> Result<(), RuleError> {
        match op.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "sanitize-payload" => self.sanitize = Some(true),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.clear(),
            "reset" => {
                *self = Perms::new_user();
                self.sanitize = Some(true);
            }
            _ => return self.apply_other(op),
        }
        Ok(())
    }

    fn apply_other(&mut self, op: &str) -> Result<(), RuleError> {
        match op.as_bytes().first() {
            Some(b'>') => self.add_password(password::hash(&op.as_bytes()[1..])),
            Some(b'#') => {
                self.add_password(password::from_hex(&op[1..]).ok_or(RuleError::BadHash)?)
            }
            Some(b'<') => self.remove_password(password::hash(&op.as_bytes()[1..]))?,
            Some(b'!') => {
                self.remove_password(password::from_hex(&op[1..]).ok_or(RuleError::BadHash)?)?
            }
            Some(b'(') if op.ends_with(')') && op.len() >= 2 => {
                let mut s = Selector::default();
                for rule in op[1..op.len() - 1].split_ascii_whitespace() {
                    s.apply(rule)?;
                }
                self.selectors.push(s);
            }
            _ => self.root.apply(op)?,
        }
        Ok(())
    }

    fn add_password(&mut self, h: PassHash) {
        self.nopass = false;
        if !self.passwords.contains(&h) {
            self.passwords.push(h);
        }
    }

    fn remove_password(&mut self, h: PassHash) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| *p != h);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        self.nopass = false;
        Ok(())
    }

    /// Flag names as ACL GETUSER lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The rules after `user <name>` in ACL LIST and the aclfile.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().iter().map(|s| s.to_string()).collect();
        parts.extend(
            self.passwords
                .iter()
                .map(|h| format!("#{}", password::to_hex(h))),
        );
        parts.push(self.root.describe());
        parts.extend(self.selectors.iter().map(|s| format!("({})", s.describe())));
        parts.join(" ")
    }
}

/// Joins arguments that belong to one `(...)` selector, as Redis does for ACL SETUSER
/// (`"(~a" "+get)"` is one selector). `None` if a `(` is never closed.
pub fn merge_selector_args(args: &[String]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for a in args {
        match open.as_mut() {
            Some(acc) => {
                acc.push(' ');
                acc.push_str(a);
            }
            None if a.starts_with('(') => open = Some(a.clone()),
            None => out.push(a.clone()),
        }
        if open.as_ref().is_some_and(|acc| acc.ends_with(')')) {
            out.extend(open.take());
        }
    }
    open.is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> Perms {
        let mut p = Perms::new_user();
        p.apply_all(rules.iter().copied()).unwrap();
        p
    }

    #[test]
    fn describes_like_redis() {
        assert_eq!(Perms::new_user().describe(), "off resetchannels -@all");
        assert_eq!(Perms::default_user().describe(), "on nopass ~* &* +@all");
        let p = user(&[
            "on", ">pw", "~a:*", "%R~b", "&ch", "+get", "-@all", "+set", "+@read", "-get",
        ]);
        assert_eq!(
            p.describe(),
            format!(
                "on #{} ~a:* %R~b resetchannels &ch -@all +set +@read -get",
                password::to_hex(&password::hash(b"pw"))
            )
        );
        let p = user(&["on", "nopass", "(~x +get)"]);
        assert_eq!(
            p.describe(),
            "on nopass resetchannels -@all (~x resetchannels -@all +get)"
        );
        assert_eq!(user(&["reset"]).flags(), vec!["off", "sanitize-payload"]);
    }

    #[test]
    fn rule_errors() {
        let mut p = Perms::new_user();
        assert_eq!(p.apply("bogus"), Err(RuleError::Syntax));
        assert_eq!(p.apply("+nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(p.apply("+@nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(p.apply("<nope"), Err(RuleError::NoSuchPassword));
        assert_eq!(p.apply("#abc"), Err(RuleError::BadHash));
        assert_eq!(p.apply("%X~a"), Err(RuleError::Syntax));
        assert_eq!(p.apply("+config|"), Err(RuleError::Syntax));
        assert_eq!(
            p.apply("+config|get|x"),
            Err(RuleError::FirstArgOfSubcommand)
        );
        assert_eq!(p.apply("+nosuch|x"), Err(RuleError::UnknownCommand));
        p.apply("allkeys").unwrap();
        assert_eq!(p.apply("~a"), Err(RuleError::KeyAfterAllKeys));
        p.apply("allchannels").unwrap();
        assert_eq!(p.apply("&a"), Err(RuleError::ChannelAfterAllChannels));
        // A failing list changes nothing.
        let before = p.clone();
        assert_eq!(
            p.apply_all(["on", "+get", "bad"]),
            Err(("bad", RuleError::Syntax))
        );
        assert_eq!(p, before);
    }

    #[test]
    fn commands_and_subcommands() {
        let ix = index();
        let id = |n: &str| ix.by_name(n).unwrap();
        let p = user(&["+config|get"]);
        assert!(p.root.allows(id("config|get")) && !p.root.allows(id("config|set")));
        let p = user(&["+config", "-config|set"]);
        assert!(p.root.allows(id("config|get")) && !p.root.allows(id("config|set")));
        let p = user(&["+@all", "-@dangerous"]);
        assert!(p.root.allows(id("get")) && !p.root.allows(id("flushall")));
        let p = user(&["+select|0"]);
        assert!(!p.root.allows(id("select")));
        assert_eq!(
            p.root.first_args.get(&id("select")),
            Some(&vec!["0".to_string()])
        );
    }

    #[test]
    fn passwords_and_patterns() {
        let p = user(&[">a", ">b", "<a"]);
        assert_eq!(p.passwords, vec![password::hash(b"b")]);
        let p = user(&[">a", "nopass"]);
        assert!(p.nopass && p.passwords.is_empty());
        let p = user(&["%R~x", "%W~x", "%RW~*"]);
        assert!(p.root.all_keys && p.root.keys.is_empty());
        let p = user(&["%R~x", "%W~x"]);
        assert_eq!(p.root.keys_text(), "~x");
    }

    #[test]
    fn selector_arguments_merge() {
        let a: Vec<String> = ["on", "(~a", "+get)", "(+set)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            merge_selector_args(&a).unwrap(),
            vec!["on", "(~a +get)", "(+set)"]
        );
        assert!(merge_selector_args(&["(~a".to_string()]).is_none());
    }
}
