//! Finds the config files, loads both sources into one [`Catalog`], and answers "which
//! connection is NAME?".
//!
//! ssh_config: `--ssh-config PATH` alone (like `ssh -F`), else `~/.ssh/config` then
//! `/etc/ssh/ssh_config`. epoch.toml: `--config`, else `$EPOCH_CONFIG`, else `./epoch.toml`,
//! else `<config dir>/epoch/epoch.toml`. A file named explicitly must exist; a default one
//! may be absent.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::context::Context;
use super::epoch;
use super::from_ssh;
use super::model::{Connection, SourceKind};
use super::origin::{Origin, Problem, Sourced};
use super::ssh_config::{FileKind, SshConfig};
use super::trust;

/// The paths the user gave on the command line.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    pub ssh_config: Option<PathBuf>,
    pub epoch: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// `epoch` is a directory's epoch.toml that a client found in its working directory and
    /// handed to the daemon: it needs the user's trust as `./epoch.toml` does.
    pub epoch_is_project: bool,
}

/// What happened to a file warren looked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum FileStatus {
    Loaded,
    /// A default location with no file: not an error.
    Absent,
    /// Named explicitly but missing, or not readable.
    Unreadable {
        error: String,
    },
    /// Read, but not valid as a whole (TOML syntax, or a keyword ssh does not know, for which
    /// ssh refuses the file); the valid sections or lines were loaded.
    Invalid,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    pub source: SourceKind,
    pub path: PathBuf,
    #[serde(flatten)]
    pub status: FileStatus,
}

impl FileEntry {
    /// What became of the file, in a few words (`warren list` and the TUI when no connection
    /// was found); `read` is the word for a file read well.
    pub fn state(&self, read: &str) -> String {
        match &self.status {
            FileStatus::Loaded => read.to_string(),
            FileStatus::Absent => "not there".to_string(),
            FileStatus::Unreadable { error } => error.clone(),
            FileStatus::Invalid => self.invalid().to_string(),
        }
    }

    /// Why an [`FileStatus::Invalid`] file is.
    pub fn invalid(&self) -> &'static str {
        match self.source {
            SourceKind::Ssh => "bad configuration options: ssh refuses it",
            SourceKind::Epoch => "not valid TOML",
        }
    }
}

/// Every connection from every source, and what went wrong on the way.
pub struct Catalog {
    pub connections: Vec<Connection>,
    /// Entries that did not load, with their error (which is in `problems` too).
    pub broken: Vec<epoch::Broken>,
    pub problems: Vec<Problem>,
    pub files: Vec<FileEntry>,
    pub ssh: SshConfig,
    /// The epoch.toml, when it needs the user's trust and does not have it.
    pub untrusted: Option<super::trust::Untrusted>,
}

/// Why a name did not pick one connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("no connection named '{name}'{hint}")]
    Unknown { name: String, hint: String },
    #[error("'{name}' is in both ~/.ssh/config and epoch.toml: say ssh:{name} or epoch:{name}")]
    Ambiguous { name: String },
    #[error("no connection is tagged '{tag}'{hint}")]
    NoTag { tag: String, hint: String },
    /// The config has the entry, but it did not load: its error, file:line and fix.
    #[error("'{name}' did not load: {error}")]
    Broken { name: String, error: String },
}

impl Catalog {
    pub fn load(paths: &Paths, ctx: Arc<Context>) -> Catalog {
        let mut files = Vec::new();
        let mut problems = Vec::new();

        let ssh_files: Vec<(PathBuf, FileKind, bool)> = match &paths.ssh_config {
            Some(p) => vec![(p.clone(), FileKind::User, true)],
            None => vec![
                (ctx.home.join(".ssh/config"), FileKind::User, false),
                (
                    PathBuf::from("/etc/ssh/ssh_config"),
                    FileKind::System,
                    false,
                ),
            ],
        };
        let mut texts = Vec::new();
        for (path, kind, explicit) in ssh_files {
            // As ssh checks ~/.ssh/config (not a file given with -F): another user's, or one
            // others may write to, stops it ("Bad owner or permissions").
            if kind == FileKind::User
                && !explicit
                && let Some(why) = bad_owner_or_permissions(&path, ctx.uid)
            {
                problems.push(
                    Problem::error(
                        Origin::file(&Arc::from(path.as_path()), 1),
                        format!(
                            "Bad owner or permissions on {}: {why}; ssh refuses to run with it, and warren reads none of it",
                            path.display()
                        ),
                    )
                    .with_fix(format!("chmod go-w {}", path.display())),
                );
                files.push(FileEntry {
                    source: SourceKind::Ssh,
                    path: path.clone(),
                    status: FileStatus::Unreadable {
                        error: format!("bad owner or permissions ({why})"),
                    },
                });
                continue;
            }
            if let Some(text) = read(&path, SourceKind::Ssh, explicit, &mut files, &mut problems) {
                texts.push((path, text, kind));
            }
        }
        let refs: Vec<(&Path, &str, FileKind)> = texts
            .iter()
            .map(|(p, t, k)| (p.as_path(), t.as_str(), *k))
            .collect();
        let mut ssh = SshConfig::from_texts(Arc::clone(&ctx), &refs);
        problems.extend(ssh.problems.iter().cloned());
        for f in &mut files {
            if f.source == SourceKind::Ssh && ssh.bad_option_files.contains(&f.path) {
                f.status = FileStatus::Invalid;
            }
        }
        let mut connections: Vec<Connection> = ssh
            .aliases
            .iter()
            .map(|a| from_ssh::connection(&ssh, &a.name, a.origin.clone()))
            .collect();

        let (epoch_path, explicit) = epoch_path(paths, &ctx);
        let local = paths.epoch_is_project || (!explicit && epoch_path == Path::new("epoch.toml"));
        let mut untrusted = None;
        let mut broken = Vec::new();
        if let Some(text) = read(
            &epoch_path,
            SourceKind::Epoch,
            explicit,
            &mut files,
            &mut problems,
        ) {
            untrusted = trust::needs_trust(&ctx, &epoch_path, local)
                .filter(|_| !trust::is_trusted(&ctx, &epoch_path, text.as_bytes()))
                .map(|why| trust::Untrusted {
                    path: epoch_path.clone(),
                    why,
                });
            // The names an untrusted file gives run none of the user's own commands either
            // (a `Match exec` of ~/.ssh/config that a jump_host alias reaches).
            let saved = untrusted.as_ref().map(|_| {
                let mut quiet = (*ctx).clone();
                quiet.env.insert(
                    super::context::NO_EXEC_VAR.to_string(),
                    super::context::UNTRUSTED_NAMES.to_string(),
                );
                std::mem::replace(&mut ssh.ctx, Arc::new(quiet))
            });
            let mut loaded = epoch::load(&epoch_path, &text, &ctx, &ssh);
            if let Some(c) = saved {
                ssh.ctx = c;
            }
            if let Some(u) = &untrusted {
                let mut refused = 0;
                for c in &mut loaded.connections {
                    c.untrusted = trust::refusals(c, u);
                    refused += usize::from(c.untrusted.is_some());
                }
                if refused > 0 {
                    problems.push(
                        Problem::warning(
                            Origin::file(&Arc::from(epoch_path.as_path()), 1),
                            format!(
                                "{} is not trusted ({}): {refused} of its entries ask for what warren does only for files you trust (a command, a file outside its directory, host-key settings), and are not opened",
                                epoch_path.display(),
                                u.why
                            ),
                        )
                        .with_fix(format!(
                            "read it, then run `warren trust-config {}`",
                            epoch_path.display()
                        )),
                    );
                }
            }
            if loaded.syntax_error
                && let Some(f) = files.last_mut()
            {
                f.status = FileStatus::Invalid;
            }
            problems.extend(loaded.problems);
            connections.extend(loaded.connections);
            broken = loaded.broken;
        }

        for c in &connections {
            problems.extend(c.problems.iter().cloned());
        }
        let mut seen = HashSet::new();
        problems.retain(|p| seen.insert((p.origin.to_string(), p.message.clone())));

        if let Some(kh) = &paths.known_hosts {
            for hop in connections.iter_mut().flat_map(|c| c.hops.iter_mut()) {
                hop.known_hosts_files =
                    Sourced::new(vec![kh.clone()], Origin::Flag("--known-hosts"));
                // "this file only": the system's files are not read either.
                hop.global_known_hosts_files =
                    Sourced::new(Vec::new(), Origin::Flag("--known-hosts"));
            }
        }
        qualify(&mut connections);
        for b in &mut broken {
            if connections
                .iter()
                .any(|c| c.source == SourceKind::Ssh && c.name == b.name)
            {
                b.display_name = format!("{}:{}", SourceKind::Epoch.prefix(), b.name);
            }
        }
        Catalog {
            connections,
            broken,
            problems,
            files,
            ssh,
            untrusted,
        }
    }

    /// A whole file could not be read (or is not valid TOML, or has an option ssh does not
    /// know): `warren list` exits 2.
    pub fn file_failed(&self) -> bool {
        self.files.iter().any(|f| {
            matches!(
                f.status,
                FileStatus::Unreadable { .. } | FileStatus::Invalid
            )
        })
    }

    /// The connection NAME names: its display name, `ssh:NAME` / `epoch:NAME`, or a plain
    /// name that only one source has.
    pub fn find(&self, name: &str) -> Result<&Connection, LookupError> {
        if let Some(c) = self.connections.iter().find(|c| c.display_name == name) {
            return Ok(c);
        }
        for source in [SourceKind::Ssh, SourceKind::Epoch] {
            if let Some(rest) = name
                .strip_prefix(source.prefix())
                .and_then(|r| r.strip_prefix(':'))
                && let Some(c) = self
                    .connections
                    .iter()
                    .find(|c| c.source == source && c.name == rest)
            {
                return Ok(c);
            }
        }
        let matches = self.connections.iter().filter(|c| c.name == name).count();
        if matches > 1 {
            return Err(LookupError::Ambiguous {
                name: name.to_string(),
            });
        }
        if let Some(b) = self.broken(name) {
            return Err(LookupError::Broken {
                name: b.display_name.clone(),
                error: b.summary(),
            });
        }
        let names: Vec<&str> = self
            .connections
            .iter()
            .map(|c| c.display_name.as_str())
            .collect();
        let hint = match epoch::closest(name, &names) {
            Some(n) => format!("; did you mean '{n}'?"),
            None => "; `warren list` shows the names".to_string(),
        };
        Err(LookupError::Unknown {
            name: name.to_string(),
            hint,
        })
    }
}

impl Catalog {
    /// The entry NAME names (as [`Catalog::find`] reads names) if it is one that did not load.
    pub fn broken(&self, name: &str) -> Option<&epoch::Broken> {
        let epoch_name = name
            .strip_prefix(SourceKind::Epoch.prefix())
            .and_then(|r| r.strip_prefix(':'));
        self.broken.iter().find(|b| {
            b.display_name == name || b.name == name || Some(b.name.as_str()) == epoch_name
        })
    }

    /// Connections by name, or every connection with a tag for `@tag`, in order, each once.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Connection>, LookupError> {
        fn push<'c>(c: &'c Connection, out: &mut Vec<&'c Connection>) {
            if !out.iter().any(|o| std::ptr::eq(*o, c)) {
                out.push(c);
            }
        }
        let mut out: Vec<&Connection> = Vec::new();
        for n in names {
            match n.strip_prefix('@') {
                Some(tag) => {
                    let tagged: Vec<&Connection> =
                        self.connections.iter().filter(|c| c.has_tag(tag)).collect();
                    if tagged.is_empty() {
                        let mut all: Vec<&str> = self
                            .connections
                            .iter()
                            .flat_map(|c| c.tags.iter().map(|t| t.value.as_str()))
                            .collect();
                        all.sort();
                        all.dedup();
                        let hint = match epoch::closest(tag, &all) {
                            Some(t) => format!("; did you mean '@{t}'?"),
                            None if all.is_empty() => "; no connection has tags".to_string(),
                            None => format!("; the tags are {}", all.join(", ")),
                        };
                        return Err(LookupError::NoTag {
                            tag: tag.to_string(),
                            hint,
                        });
                    }
                    for c in tagged {
                        push(c, &mut out);
                    }
                }
                None => {
                    let c = self.find(n)?;
                    push(c, &mut out);
                }
            }
        }
        Ok(out)
    }
}

pub fn epoch_path(paths: &Paths, ctx: &Context) -> (PathBuf, bool) {
    if let Some(p) = &paths.epoch {
        return (p.clone(), true);
    }
    if let Some(p) = ctx.var("EPOCH_CONFIG").filter(|p| !p.is_empty()) {
        return (PathBuf::from(p), true);
    }
    let local = PathBuf::from("epoch.toml");
    if local.exists() {
        return (local, false);
    }
    let config_dir = ctx
        .var("XDG_CONFIG_HOME")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.home.join(".config"));
    (config_dir.join("epoch/epoch.toml"), false)
}

/// What OpenSSH's `readconf.c` holds against a user config file (SSHCONF_CHECKPERM): owned
/// by neither the user nor root, or writable by group or others.
fn bad_owner_or_permissions(path: &Path, uid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    if m.uid() != 0 && m.uid() != uid {
        Some(format!("it belongs to uid {}", m.uid()))
    } else if m.mode() & 0o022 != 0 {
        Some(format!(
            "others may write to it (mode {:04o})",
            m.mode() & 0o7777
        ))
    } else {
        None
    }
}

fn read(
    path: &Path,
    source: SourceKind,
    explicit: bool,
    files: &mut Vec<FileEntry>,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()) {
        Ok(text) => {
            files.push(FileEntry {
                source,
                path: path.to_path_buf(),
                status: FileStatus::Loaded,
            });
            Some(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            files.push(FileEntry {
                source,
                path: path.to_path_buf(),
                status: FileStatus::Absent,
            });
            None
        }
        Err(e) => {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "check the path given with --config / --ssh-config / EPOCH_CONFIG"
            } else {
                "make the file readable by your user (chmod u+r)"
            };
            problems.push(
                Problem::error(
                    Origin::file(&Arc::from(path), 1),
                    format!("cannot read the file: {e}"),
                )
                .with_fix(fix),
            );
            files.push(FileEntry {
                source,
                path: path.to_path_buf(),
                status: FileStatus::Unreadable {
                    error: e.to_string(),
                },
            });
            None
        }
    }
}

/// Names in both sources are shown as `ssh:NAME` and `epoch:NAME`.
fn qualify(connections: &mut [Connection]) {
    let ssh: HashSet<String> = connections
        .iter()
        .filter(|c| c.source == SourceKind::Ssh)
        .map(|c| c.name.clone())
        .collect();
    let epoch: HashSet<String> = connections
        .iter()
        .filter(|c| c.source == SourceKind::Epoch)
        .map(|c| c.name.clone())
        .collect();
    for c in connections.iter_mut() {
        if ssh.contains(&c.name) && epoch.contains(&c.name) {
            c.display_name = format!("{}:{}", c.source.prefix(), c.name);
        }
    }
}
