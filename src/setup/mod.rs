//! First-time setup, without the terminal: a new Ed25519 key, the exact lines for the
//! bastion, and the new entry written into epoch.toml (every comment, key order and blank line
//! kept; atomic; the previous file kept as `.bak`). It works from nothing: a missing
//! `~/.config/epoch` or `~/.ssh` is created 0700. The checks of each answer are here too, so
//! `warren setup` and the TUI's form refuse the same things with the same words, and a
//! [`summary`] says what will be written before anything is.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::{Algorithm, LineEnding, PrivateKey};
use toml_edit::{DocumentMut, Item, Table, value};

use crate::config::destination::Destination;

mod checks;

pub use checks::{PlanError, Question, check_hop, check_name, check_target, summary};

/// What the new entry says.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub engine: String,
    /// The database as the bastion sees it.
    pub target: Destination,
    pub bastion: Destination,
    pub jump: Option<Destination>,
    /// A jump host given as an ssh_config alias (written as `jump_host = "alias"`).
    pub jump_alias: Option<String>,
    pub key: KeyChoice,
}

#[derive(Clone, Debug)]
pub enum KeyChoice {
    Agent,
    Existing(PathBuf),
    Generate(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{0} already exists: warren never overwrites a key; choose another path or use it with --key"
    )]
    KeyExists(PathBuf),
    #[error("cannot write {path}: {source}; it is unchanged, nothing was saved")]
    NotSaved {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not valid TOML ({message}): fix it first, warren will not rewrite a file it cannot read"
    )]
    Invalid { path: PathBuf, message: String },
    #[error(
        "an entry [storage.{engine}.{name}] already exists in {path}: pass --yes to replace it"
    )]
    EntryExists {
        engine: String,
        name: String,
        path: PathBuf,
    },
    #[error("key generation failed: {0}")]
    Key(String),
    #[error("{0} does not exist: generate a new key there, or give the path of an existing one")]
    NoKey(PathBuf),
}

/// Writes a new Ed25519 key (private 0600, OpenSSH format) and its `.pub`; returns the public
/// line. An existing file is never overwritten.
pub fn generate_key(
    path: &Path,
    passphrase: Option<&str>,
    comment: &str,
) -> Result<String, SetupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    for p in [path, pub_path.as_path()] {
        if p.exists() {
            return Err(SetupError::KeyExists(p.to_path_buf()));
        }
    }
    let mut key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| SetupError::Key(e.to_string()))?;
    key.set_comment(comment);
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| SetupError::Key(e.to_string()))?;
    let key = match passphrase.filter(|p| !p.is_empty()) {
        Some(p) => key
            .encrypt(&mut rand::rng(), p)
            .map_err(|e| SetupError::Key(e.to_string()))?,
        None => key,
    };
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| SetupError::Key(e.to_string()))?;
    create_private_dirs(path)?;
    let write = |p: &Path, data: &[u8], mode: u32| -> Result<(), SetupError> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)
            .map_err(|source| SetupError::Write {
                path: p.to_path_buf(),
                source,
            })?;
        f.write_all(data)
            .and_then(|_| f.sync_all())
            .map_err(|source| SetupError::Write {
                path: p.to_path_buf(),
                source,
            })
    };
    write(path, text.as_bytes(), 0o600)?;
    write(&pub_path, format!("{public}\n").as_bytes(), 0o644)?;
    Ok(public)
}

/// Creates the missing directories above `path`, each 0700 (`~/.config/epoch`, `~/.ssh`):
/// they hold keys and connection details. Directories that exist are left as they are.
pub fn create_private_dirs(path: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SetupError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// The bastion's authorized_keys line for the key: it may forward to the target and nothing
/// else.
pub fn authorized_keys_line(public_line: &str, plan: &Plan) -> String {
    format!(
        "restrict,port-forwarding,permitopen=\"{}\" {public_line}",
        target_of(plan)
    )
}

fn target_of(plan: &Plan) -> String {
    format!("{}:{}", plan.target.host, plan.target.port.unwrap_or(0))
}

/// What [`apply`] leaves the user to do on the bastion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instructions {
    /// The whole text: the commands, the sshd_config fragment, the notes.
    pub text: String,
    /// The one line for the bastion's authorized_keys (also in `text`).
    pub authorized_keys: String,
}

/// The exact lines for the bastion: the restricted authorized_keys line, the commands to make
/// a tunnel-only user, and the sshd_config fragment.
pub fn bastion_instructions(public_line: &str, plan: &Plan) -> String {
    let user = plan.bastion.user.clone().unwrap_or_else(|| "tunnel".into());
    let target = target_of(plan);
    let line = authorized_keys_line(public_line, plan);
    format!(
        r#"# 1. On the bastion ({bastion}), a user that can only forward to {target}:
sudo useradd --create-home --shell /usr/sbin/nologin {user}
sudo install -d -m 0700 -o {user} -g {user} ~{user}/.ssh
echo '{line}' | sudo tee -a ~{user}/.ssh/authorized_keys
sudo chown {user}:{user} ~{user}/.ssh/authorized_keys && sudo chmod 0600 ~{user}/.ssh/authorized_keys

# 2. In /etc/ssh/sshd_config (then: sudo sshd -t && sudo systemctl reload ssh):
Match User {user}
    AllowTcpForwarding local
    PermitOpen {target}
    X11Forwarding no
    AllowAgentForwarding no
    PermitTTY no
    ForceCommand /bin/false

# Notes: ClientAliveInterval 30 on the bastion drops dead tunnels on its side too; a burst of
# tunnels may hit MaxStartups (default 10:30:100): raise it if connections are refused.
"#,
        bastion = plan.bastion,
    )
}

/// The entry's tables, as toml_edit items.
fn entry_tables(plan: &Plan) -> (Table, Table) {
    let mut db = Table::new();
    db["host"] = value(plan.target.host.clone());
    if let Some(p) = plan.target.port {
        db["port"] = value(i64::from(p));
    }
    let mut tunnel = Table::new();
    tunnel["host"] = value(plan.bastion.host.clone());
    if let Some(p) = plan.bastion.port {
        tunnel["port"] = value(i64::from(p));
    }
    if let Some(u) = &plan.bastion.user {
        tunnel["user"] = value(u.clone());
    }
    match &plan.key {
        KeyChoice::Agent => tunnel["use_agent"] = value(true),
        KeyChoice::Existing(p) | KeyChoice::Generate(p) => {
            tunnel["key_file"] = value(p.display().to_string())
        }
    }
    if let Some(j) = &plan.jump {
        let mut jt = toml_edit::InlineTable::new();
        jt.insert("host", j.host.clone().into());
        if let Some(p) = j.port {
            jt.insert("port", i64::from(p).into());
        }
        if let Some(u) = &j.user {
            jt.insert("user", u.clone().into());
        }
        tunnel["jump_host"] = value(jt);
    } else if let Some(alias) = &plan.jump_alias {
        tunnel["jump_host"] = value(alias.clone());
    }
    (db, tunnel)
}

/// Adds (or, with `replace`, replaces) the entry in epoch.toml at `path`: comments, key order
/// and blank lines of the rest are kept; the write is atomic, under a lock, and re-applied when
/// the file changed while it was being made ([`crate::fsutil::edit_locked`]: two setups at
/// once, or a person editing, lose nothing); the old file is kept as `.bak`. Returns the new
/// text.
pub fn write_entry(path: &Path, plan: &Plan, replace: bool) -> Result<String, SetupError> {
    create_private_dirs(path)?;
    let bak = PathBuf::from(format!("{}.bak", path.display()));
    let edited = crate::fsutil::edit_locked(path, 0o600, Some(&bak), |old| {
        let old = old
            .map(|b| {
                String::from_utf8(b.to_vec()).map_err(|_| SetupError::Invalid {
                    path: path.to_path_buf(),
                    message: "the file is not UTF-8".into(),
                })
            })
            .transpose()?;
        edited_text(path, old.as_deref(), plan, replace).map(String::into_bytes)
    });
    match edited {
        Ok((_, new)) => Ok(String::from_utf8_lossy(&new).into_owned()),
        Err(crate::fsutil::EditError::Edit(e)) => Err(e),
        // edit_locked replaces the file by a rename or not at all.
        Err(crate::fsutil::EditError::Io(source)) => Err(SetupError::NotSaved {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// epoch.toml's text with the entry added (or replaced).
fn edited_text(
    path: &Path,
    old: Option<&str>,
    plan: &Plan,
    replace: bool,
) -> Result<String, SetupError> {
    let mut doc: DocumentMut = match old {
        Some(t) => t
            .parse()
            .map_err(|e: toml_edit::TomlError| SetupError::Invalid {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?,
        None => DocumentMut::new(),
    };
    let exists = doc
        .get("storage")
        .and_then(|s| s.get(&plan.engine))
        .and_then(|e| e.get(&plan.name))
        .is_some();
    if exists && !replace {
        return Err(SetupError::EntryExists {
            engine: plan.engine.clone(),
            name: plan.name.clone(),
            path: path.to_path_buf(),
        });
    }
    let storage = doc.entry("storage").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let Some(storage) = storage.as_table_mut() else {
        return Err(SetupError::Invalid {
            path: path.to_path_buf(),
            message: "storage is not a table".into(),
        });
    };
    let engine = storage.entry(&plan.engine).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let Some(engine) = engine.as_table_mut() else {
        return Err(SetupError::Invalid {
            path: path.to_path_buf(),
            message: format!("storage.{} is not a table", plan.engine),
        });
    };
    let (mut db, tunnel) = entry_tables(plan);
    db.decor_mut().set_prefix("\n# added by warren setup\n");
    db["ssh_tunnel"] = Item::Table(tunnel);
    engine.insert(&plan.name, Item::Table(db));
    Ok(doc.to_string())
}

/// Checks the answers (the same for the CLI and the TUI's form): `target` is host[:port] (the
/// engine's port by default), `bastion` and `jump` host, user@host:port or ssh://user@host:port
/// (or a cloud bastion, `ssm:...` / `iap:...`, which has no jump host).
pub fn plan(
    name: &str,
    engine: &str,
    target: &str,
    bastion: &str,
    jump: Option<&str>,
    key: KeyChoice,
) -> Result<Plan, PlanError> {
    let at = |question| move |message| PlanError { question, message };
    check_name(name).map_err(at(Question::Name))?;
    let target = check_target(engine, target).map_err(at(Question::Target))?;
    let bastion = check_hop(bastion)
        .map_err(|e| format!("bastion: {e}"))
        .map_err(at(Question::Bastion))?;
    let jump = match jump.filter(|j| !j.is_empty()) {
        Some(j) => Some(
            check_hop(j)
                .map_err(|e| format!("jump: {e}"))
                .map_err(at(Question::Jump))?,
        ),
        None => None,
    };
    if jump.is_some() && crate::config::cloud::is_preset(&bastion.host) {
        return Err(PlanError {
            question: Question::Jump,
            message: format!(
                "jump: the cloud bastion {} is reached from here, through its cloud CLI, not through a jump host; leave the jump empty (or make the instance the jump and the host behind it the bastion)",
                bastion.host
            ),
        });
    }
    // Key paths go into epoch.toml: make them absolute, or they would depend on the directory
    // warren runs in.
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let key = match key {
        KeyChoice::Generate(p) => KeyChoice::Generate(abs(&p)),
        KeyChoice::Existing(p) => KeyChoice::Existing(abs(&p)),
        KeyChoice::Agent => KeyChoice::Agent,
    };
    Ok(Plan {
        name: name.to_string(),
        engine: engine.to_string(),
        target,
        bastion,
        jump,
        jump_alias: None,
        key,
    })
}

/// A bastion named by a concrete ~/.ssh/config alias: its HostName, Port and User, its
/// ProxyJump (written as an alias the loader resolves again) and its explicit IdentityFile.
pub struct FromAlias {
    pub bastion: Destination,
    pub jump_alias: Option<String>,
    pub key: Option<PathBuf>,
}

pub fn from_ssh_alias(
    ssh: &crate::config::ssh_config::SshConfig,
    alias: &str,
) -> Option<FromAlias> {
    if !ssh.aliases.iter().any(|a| a.name == alias) {
        return None;
    }
    let h = ssh.resolve(alias);
    let key = h
        .identity_files
        .iter()
        .filter(|f| f.origin != crate::config::Origin::Default)
        .find_map(|f| h.expand_path(&f.value).ok().map(PathBuf::from));
    Some(FromAlias {
        bastion: Destination {
            user: Some(h.user.value.clone()),
            host: h.hostname.value.clone(),
            port: Some(h.port.value),
        },
        // The last jump, as an alias: the loader resolves it (and its own ProxyJump) again.
        // Exact for the usual single jump host.
        jump_alias: h
            .proxy_jump
            .as_ref()
            .and_then(|j| j.value.last())
            .map(|d| d.to_string()),
        key,
    })
}

/// Steps 3 to 5 for a checked plan: the key (generated if asked), the bastion's lines, the
/// entry saved in `epoch`. Returns what is left to do on the bastion.
pub fn apply(
    plan: &Plan,
    passphrase: Option<&str>,
    epoch: &Path,
    replace: bool,
    ctx: &crate::config::Context,
) -> Result<Instructions, SetupError> {
    // Everything that can be checked first is, so a refused entry leaves no new key behind.
    summary(plan, epoch, replace, false, Path::new("/"))?;
    let public = match &plan.key {
        KeyChoice::Generate(p) => Some(generate_key(
            p,
            passphrase,
            &format!("warren-{}", plan.name),
        )?),
        KeyChoice::Existing(p) => std::fs::read_to_string(format!("{}.pub", p.display()))
            .ok()
            .map(|t| t.trim().to_string()),
        KeyChoice::Agent => None,
    };
    let line = public.unwrap_or_else(|| "<your public key line, e.g. from ssh-add -L>".into());
    let done = Instructions {
        text: bastion_instructions(&line, plan),
        authorized_keys: authorized_keys_line(&line, plan),
    };
    // A file setup creates, or one the user trusted, stays trusted with the entry added: the
    // user wrote it through warren. An untrusted file stays untrusted (its other entries
    // are still unread).
    let before = std::fs::read(epoch).ok();
    let keep = before
        .as_deref()
        .is_none_or(|b| crate::config::trust::is_trusted(ctx, epoch, b));
    let written = write_entry(epoch, plan, replace)?;
    if keep && let Err(e) = crate::config::trust::trust_bytes(ctx, epoch, written.as_bytes()) {
        tracing::warn!("the new entry was saved, but its trust was not recorded: {e}");
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            name: "orders".into(),
            engine: "postgres".into(),
            target: Destination {
                user: None,
                host: "db.internal".into(),
                port: Some(5432),
            },
            bastion: Destination {
                user: Some("tunnel".into()),
                host: "bastion.example.com".into(),
                port: None,
            },
            jump: None,
            jump_alias: None,
            key: KeyChoice::Agent,
        }
    }

    #[test]
    fn comments_order_and_blank_lines_survive() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("epoch.toml");
        let before = "# team config\nmetadata_url = \"postgresql://meta\"   # keep me\n\n[storage.mysql.billing]\nhost = \"b\"\nport = 3306\n";
        std::fs::write(&p, before).expect("write");
        let text = write_entry(&p, &plan(), false).expect("written");
        assert!(
            text.starts_with(before.trim_end()),
            "the old text is kept as it was:\n{text}"
        );
        assert!(
            text.contains("[storage.postgres.orders]")
                && text.contains("[storage.postgres.orders.ssh_tunnel]"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("epoch.toml.bak")).expect("bak"),
            before
        );
        let again = write_entry(&p, &plan(), false);
        assert!(matches!(again, Err(SetupError::EntryExists { .. })));
        assert!(write_entry(&p, &plan(), true).is_ok());
    }

    #[test]
    fn instructions_restrict_the_key_to_the_target() {
        let text = bastion_instructions("ssh-ed25519 AAAA me", &plan());
        assert!(text.contains(
            "restrict,port-forwarding,permitopen=\"db.internal:5432\" ssh-ed25519 AAAA me"
        ));
        assert!(
            text.contains("PermitOpen db.internal:5432")
                && text.contains("ForceCommand /bin/false")
                && text.contains("install -d -m 0700")
        );
    }
}
