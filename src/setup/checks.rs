//! The checks of each answer of setup, shared by `warren setup` and the TUI's form (so both
//! refuse the same things in the same words, and the form can say which field is wrong), and
//! the summary of what setup will write, made before anything is.

use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use super::{KeyChoice, Plan, SetupError};
use crate::config::destination::Destination;

/// Which answer a problem is about: the TUI's form puts the cursor there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    Engine,
    Target,
    Name,
    Bastion,
    Jump,
    Key,
    Passphrase,
}

/// An answer that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    pub question: Question,
    pub message: String,
}

impl SetupError {
    /// The answer to change to get past this error, if one would.
    pub fn question(&self) -> Option<Question> {
        match self {
            SetupError::KeyExists(_) | SetupError::NoKey(_) => Some(Question::Key),
            SetupError::Key(_) => Some(Question::Passphrase),
            SetupError::EntryExists { .. } => Some(Question::Name),
            SetupError::Write { .. } | SetupError::NotSaved { .. } | SetupError::Invalid { .. } => {
                None
            }
        }
    }
}

/// The entry's name: letters, digits, `-` and `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("name '{name}': use letters, digits, - and _"));
    }
    Ok(())
}

/// The database as the bastion sees it: host[:port], the engine's port by default.
pub fn check_target(engine: &str, target: &str) -> Result<Destination, String> {
    let mut d = match Destination::parse(target) {
        Ok(d) if d.user.is_none() && !d.host.is_empty() => d,
        Err(e) => {
            return Err(format!(
                "target {e}; write host[:port], e.g. db.internal:5432"
            ));
        }
        _ => {
            return Err(format!(
                "target '{target}' is not host[:port]; e.g. db.internal:5432"
            ));
        }
    };
    if d.port.is_none() {
        d.port = crate::config::epoch::default_port(engine);
        if d.port.is_none() {
            return Err(format!(
                "engine '{engine}' has no default port: write the target as host:port"
            ));
        }
    }
    Ok(d)
}

/// A bastion or jump host: host, user@host:port or ssh://user@host:port, or a cloud bastion
/// (`[user@]ssm:i-0abc123[@profile/region]`, `[user@]iap:instance[@project/zone]`), whose
/// host is then kept as written: epoch.toml's `host` takes it so.
pub fn check_hop(hop: &str) -> Result<Destination, String> {
    if let Some(d) = cloud_hop(hop.trim()) {
        return d;
    }
    Destination::parse(hop).map_err(|e| {
        format!("{e}; write host, user@host:port, ssh://user@host:port or ssm:i-0abc123")
    })
}

/// `[user@]ssm:...` or `[user@]iap:...`; `None` for any other hop.
fn cloud_hop(hop: &str) -> Option<Result<Destination, String>> {
    use crate::config::cloud::{CloudBastion, is_preset};
    let (user, rest) = if is_preset(hop) {
        (None, hop)
    } else {
        let i = hop
            .match_indices('@')
            .map(|(i, _)| i)
            .find(|&i| is_preset(&hop[i + 1..]))?;
        (Some(&hop[..i]), &hop[i + 1..])
    };
    if user == Some("") {
        return Some(Err(format!("'{hop}': empty user name before '@'")));
    }
    Some(match CloudBastion::parse(rest)? {
        Ok(_) => Ok(Destination {
            user: user.map(str::to_string),
            host: rest.to_string(),
            port: None,
        }),
        Err(e) => Err(format!(
            "'{}': {}; {}",
            crate::text::escape(rest),
            e.message,
            e.fix.replace("write host = ", "write ")
        )),
    })
}

/// What [`apply`] will do, one line each, after checking what it can without writing: a key
/// to generate must not exist, an existing key must, the entry must be new unless `replace`,
/// and epoch.toml must be valid TOML. `home` shortens paths to `~/...`.
pub fn summary(
    plan: &Plan,
    epoch: &Path,
    replace: bool,
    encrypted: bool,
    home: &Path,
) -> Result<Vec<String>, SetupError> {
    let short = |p: &Path| match p.strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => p.display().to_string(),
    };
    let mut out = Vec::new();
    let mut dirs = Vec::new();
    match &plan.key {
        KeyChoice::Generate(p) => {
            for f in [p.clone(), PathBuf::from(format!("{}.pub", p.display()))] {
                if f.exists() {
                    return Err(SetupError::KeyExists(f));
                }
            }
            dirs.extend(missing_dirs(p));
            out.push(format!(
                "a new Ed25519 key {} (0600{}) and {}.pub",
                short(p),
                if encrypted {
                    ", with the passphrase"
                } else {
                    ""
                },
                short(p)
            ));
        }
        KeyChoice::Existing(p) => {
            if !p.is_file() {
                return Err(SetupError::NoKey(p.clone()));
            }
            out.push(format!("the key {} (kept as it is)", short(p)));
        }
        KeyChoice::Agent => out.push("the agent's keys (ssh-add -l)".into()),
    }
    let exists = match std::fs::read_to_string(epoch) {
        Ok(text) => {
            let doc: DocumentMut =
                text.parse()
                    .map_err(|e: toml_edit::TomlError| SetupError::Invalid {
                        path: epoch.to_path_buf(),
                        message: e.message().to_string(),
                    })?;
            let there = doc
                .get("storage")
                .and_then(|s| s.get(&plan.engine))
                .and_then(|e| e.get(&plan.name))
                .is_some();
            if there && !replace {
                return Err(SetupError::EntryExists {
                    engine: plan.engine.clone(),
                    name: plan.name.clone(),
                    path: epoch.to_path_buf(),
                });
            }
            Some(there)
        }
        Err(_) => None,
    };
    for d in missing_dirs(epoch) {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    let via = match (&plan.jump, &plan.jump_alias) {
        (Some(j), _) => format!(" via {j}"),
        (None, Some(a)) => format!(" via {a}"),
        _ => String::new(),
    };
    out.push(format!(
        "[storage.{}.{}]: {} through {}{via}, {} in {}",
        plan.engine,
        plan.name,
        format_args!(
            "{}:{}",
            plan.target.host,
            plan.target.port.unwrap_or_default()
        ),
        plan.bastion,
        match exists {
            Some(true) => "replacing the entry",
            Some(false) => "added",
            None => "a new file",
        },
        short(epoch)
    ));
    if exists.is_some() {
        out.push(format!(
            "the old file kept as {}.bak; comments and order kept",
            short(epoch)
        ));
    }
    if !dirs.is_empty() {
        let names: Vec<String> = dirs.iter().map(|d| short(d)).collect();
        out.insert(0, format!("create {} (0700)", names.join(", ")));
    }
    out.push("then: the lines for the bastion, and the diagnostics of the new entry".into());
    Ok(out)
}

/// The directories above `path` that do not exist yet (outermost first).
fn missing_dirs(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_says_what_is_wrong_with_it() {
        let e = check_target("postgres", "db.internal:99999").expect_err("99999");
        assert!(e.contains("port 99999 is out of range (1-65535)"), "{e}");
        let e = check_target("postgres", "ops@db.internal").expect_err("a user");
        assert!(e.contains("is not host[:port]"), "{e}");
        let d = check_target("postgres", "db.internal").expect("the default port");
        assert_eq!(d.port, Some(5432));
    }

    #[test]
    fn a_cloud_bastion_is_kept_as_written() {
        let d = check_hop("ssm:i-0abc123@prod/eu-west-1").expect("ssm");
        assert_eq!(
            (d.user, d.host.as_str()),
            (None, "ssm:i-0abc123@prod/eu-west-1")
        );
        let d = check_hop("ec2-user@ssm:i-0abc123").expect("with a user");
        assert_eq!(d.user.as_deref(), Some("ec2-user"));
        assert_eq!(d.host, "ssm:i-0abc123");
        assert_eq!(d.to_string(), "ec2-user@ssm:i-0abc123");
        let d = check_hop("iap:vm@proj/europe-west1-b").expect("iap");
        assert_eq!(d.host, "iap:vm@proj/europe-west1-b");
        let e = check_hop("ssm:").expect_err("no instance");
        assert!(
            e.contains("names no instance") && e.contains("ssm:i-0abc123"),
            "{e}"
        );
        let e = check_hop("ssm:i-0abc;id").expect_err("a metacharacter");
        assert!(e.contains("holds ';'"), "{e}");
        let e = super::super::plan(
            "orders",
            "postgres",
            "db.internal",
            "ssm:i-0abc123",
            Some("jump.example.com"),
            KeyChoice::Agent,
        )
        .expect_err("a jump in front of a cloud bastion");
        assert_eq!(e.question, Question::Jump);
    }
}
