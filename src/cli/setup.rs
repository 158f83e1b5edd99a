//! `warren setup`: guided first-time setup. Every answer can be a flag (so scripts run it with
//! no prompt); what is missing is asked on the terminal. Then: the key, the exact lines for the
//! bastion, the entry written into epoch.toml, and the diagnostics of the new entry. It works
//! from nothing: missing directories (`~/.config/epoch`, `~/.ssh`) are created 0700.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::exit;
use crate::config::{Catalog, Context, Paths};
use crate::setup::{self, KeyChoice};

/// The answers, as flags (`warren setup --help`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Answers {
    /// The entry's name.
    #[arg(long)]
    pub name: Option<String>,
    /// postgres, mysql, redis, mongodb, mssql.
    #[arg(long)]
    pub engine: Option<String>,
    /// The database's host:port as the bastion sees it.
    #[arg(long)]
    pub target: Option<String>,
    /// host, user@host:port or ssh://user@host:port; or a cloud bastion:
    /// [user@]ssm:i-0abc123[@profile/region], [user@]iap:instance[@project/zone].
    #[arg(long)]
    pub bastion: Option<String>,
    /// A jump host in front of the bastion.
    #[arg(long)]
    pub jump: Option<String>,
    /// Use this existing key.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Generate a new Ed25519 key here (never overwrites).
    #[arg(long, value_name = "PATH")]
    pub generate_key: Option<PathBuf>,
    /// Authenticate with the agent's keys.
    #[arg(long)]
    pub agent: bool,
    /// Encrypt the generated key with the passphrase in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// Also write the bastion instructions to this file.
    #[arg(long, value_name = "PATH")]
    pub instructions: Option<PathBuf>,
    /// Replace an entry that already exists.
    #[arg(long)]
    pub yes: bool,
}

fn ask(question: &str, out: &mut dyn Write) -> Option<String> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return None;
    }
    let _ = write!(out, "{question}: ");
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim().to_string()).filter(|l| !l.is_empty())
}

fn need(
    v: Option<String>,
    flag: &str,
    question: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Option<String> {
    if let Some(v) = v.or_else(|| ask(question, out)) {
        return Some(v);
    }
    let _ = writeln!(
        err,
        "error: {flag} is missing (no terminal to ask on)\n  fix: pass {flag}"
    );
    None
}

pub async fn run(
    ctx: &Arc<Context>,
    paths: &Paths,
    a: Answers,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    // Step 1: what to reach.
    let Some(engine) = need(
        a.engine,
        "--engine",
        "1. engine (postgres, mysql, redis, mongodb, mssql)",
        out,
        err,
    ) else {
        return exit::BAD_CONFIG;
    };
    let Some(target) = need(
        a.target,
        "--target",
        "1. database host:port as the bastion sees it",
        out,
        err,
    ) else {
        return exit::BAD_CONFIG;
    };
    let Some(name) = need(a.name, "--name", "1. a name for the entry", out, err) else {
        return exit::BAD_CONFIG;
    };
    // Step 2: how.
    let Some(bastion) = need(
        a.bastion,
        "--bastion",
        "2. bastion (host, user@host:port, ssh://user@host:port or ssm:i-0abc123)",
        out,
        err,
    ) else {
        return exit::BAD_CONFIG;
    };
    // Step 2 again: a bastion named by a ~/.ssh/config alias reuses its settings.
    let catalog = Catalog::load(paths, Arc::clone(ctx));
    let from_alias = setup::from_ssh_alias(&catalog.ssh, &bastion);
    let bastion = match &from_alias {
        Some(fa) => {
            let _ = writeln!(
                out,
                "2. '{bastion}' is a ~/.ssh/config host: {}{}",
                fa.bastion,
                fa.jump_alias
                    .as_ref()
                    .map(|j| format!(" via {j}"))
                    .unwrap_or_default()
            );
            fa.bastion.to_string()
        }
        None => bastion,
    };
    let alias_key = from_alias.as_ref().and_then(|fa| fa.key.clone());
    // Step 3: the key.
    // A path given in quotes keeps its `~`: expand it as the shell would have.
    let tilde = |p: PathBuf| {
        PathBuf::from(crate::config::expand::tilde(
            &p.to_string_lossy(),
            &ctx.home,
        ))
    };
    let key = match (a.generate_key.map(tilde), a.key.map(tilde), a.agent) {
        (Some(p), None, false) => KeyChoice::Generate(p),
        (None, Some(p), false) => KeyChoice::Existing(p),
        (None, None, true) => KeyChoice::Agent,
        (None, None, false) if alias_key.is_some() => {
            KeyChoice::Existing(alias_key.clone().unwrap_or_default())
        }
        (None, None, false) => match ask(
            "3. key: a path to generate a new Ed25519 key at, or 'agent'",
            out,
        ) {
            Some(a) if a == "agent" => KeyChoice::Agent,
            Some(p) => {
                KeyChoice::Generate(PathBuf::from(crate::config::expand::tilde(&p, &ctx.home)))
            }
            None => {
                let _ = writeln!(
                    err,
                    "error: no key chosen\n  fix: pass --generate-key PATH, --key PATH or --agent"
                );
                return exit::BAD_CONFIG;
            }
        },
        _ => {
            let _ = writeln!(
                err,
                "error: choose one of --generate-key, --key and --agent"
            );
            return exit::BAD_CONFIG;
        }
    };
    let plan = match setup::plan(
        &name,
        &engine,
        &target,
        &bastion,
        a.jump.as_deref(),
        key.clone(),
    ) {
        Ok(mut p) => {
            // A bastion alias's ProxyJump comes along, unless --jump says otherwise.
            if p.jump.is_none() {
                p.jump_alias = from_alias.and_then(|fa| fa.jump_alias);
            }
            p
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    let passphrase = a
        .passphrase_env
        .as_deref()
        .and_then(|v| ctx.var(v))
        .map(str::to_string);
    let (path, _) = crate::config::load::epoch_path(paths, ctx);
    let had_file = path.exists();
    // What will be written, checked first: nothing is written if a check fails.
    match setup::summary(&plan, &path, a.yes, passphrase.is_some(), &ctx.home) {
        Ok(lines) => {
            let _ = writeln!(out, "setup will write:");
            for l in lines {
                let _ = writeln!(out, "  - {l}");
            }
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return exit::FAILED;
        }
    }
    let text = match setup::apply(&plan, passphrase.as_deref(), &path, a.yes, ctx) {
        Ok(done) => done.text,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::FAILED;
        }
    };
    if let KeyChoice::Generate(p) = &key {
        let _ = writeln!(
            out,
            "3. new key: {} (0600) and {}.pub",
            p.display(),
            p.display()
        );
    }
    let _ = writeln!(out, "\n4. on the bastion:\n{text}");
    if let Some(file) = &a.instructions {
        if let Err(e) = crate::fsutil::write_atomic(file, text.as_bytes(), 0o644) {
            let _ = writeln!(err, "error: cannot write {}: {e}", file.display());
            return exit::FAILED;
        }
        let _ = writeln!(out, "   (also written to {})", file.display());
    }
    let bak = if had_file {
        format!(" (the previous file is {}.bak)", path.display())
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "5. saved [storage.{engine}.{name}] in {}{bak}",
        path.display()
    );
    // Step 6: test it.
    let mut paths = paths.clone();
    paths.epoch = Some(path);
    let catalog = Catalog::load(&paths, Arc::clone(ctx));
    let conn = catalog
        .find(&name)
        .or_else(|_| catalog.find(&format!("epoch:{name}")));
    let Ok(conn) = conn.cloned() else {
        let _ = writeln!(
            err,
            "error: the new entry did not load: {:?}",
            catalog.problems
        );
        return exit::FAILED;
    };
    let _ = writeln!(out, "\n6. the diagnostics of {name}:");
    let mut print = |s: &crate::diagnose::Step| {
        let _ = writeln!(out, "{}", super::doctor::step_text(s));
    };
    let prompter = std::sync::Arc::new(crate::prompt::Prompter::headless());
    let report = crate::diagnose::run(&conn, false, &prompter, &mut print).await;
    let failed = report
        .steps
        .iter()
        .find(|s| s.status == crate::diagnose::Status::Fail);
    match failed.map(|s| s.id) {
        None => {
            let _ = writeln!(
                out,
                "\nall set: warren up {name}  (or Enter on it in warren)"
            );
        }
        Some(id) => {
            use crate::diagnose::StepId;
            let back = match id {
                StepId::Config => "step 3 (the key)",
                StepId::Dns | StepId::Tcp | StepId::Banner | StepId::Kex => {
                    "step 2 (the bastion's address)"
                }
                StepId::Proxy if conn.hops.iter().any(|h| h.preset.is_some()) => {
                    "step 2 (the cloud bastion: the hint above says what its CLI needs)"
                }
                StepId::Proxy => {
                    "step 2 (the bastion: its ProxyCommand in ~/.ssh/config is what failed)"
                }
                StepId::Certificate => {
                    "step 3: the key's certificate_command (run it by hand to see why it fails)"
                }
                StepId::HostKey => {
                    "step 2: check the bastion's host key fingerprint with its owner, then add it to known_hosts"
                }
                StepId::Auth => {
                    "step 4: put the authorized_keys line on the bastion (and the user's ~/.ssh 0700)"
                }
                StepId::Forward => {
                    "step 4 (sshd_config: AllowTcpForwarding, PermitOpen) or step 1 (the target as the bastion sees it)"
                }
                StepId::Probe => "step 1 (the engine and the database's port)",
            };
            let _ = writeln!(
                out,
                "\nthe walk stopped at '{id}': revisit {back}; then run warren doctor {name}"
            );
        }
    }
    exit::OK
}
