//! `warren trust NAME [--fingerprint SHA256:...]`: records the host keys of a connection's
//! hops in the user's known_hosts, after a person confirms them: on the terminal (as ssh's
//! yes/no/fingerprint question), or with `--fingerprint` for each key (a script, a service, a
//! machine with no terminal). This is the command warren's refusals point to.
//!
//! The chain is walked as `warren up` walks it (each hop through the one before), with every
//! hop's policy set to `ask`: a key already known passes, a changed or revoked one is still
//! refused. Nothing else is changed; the connection is closed once the last hop's key is
//! settled (its authentication does not matter here).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::ask::{self, TerminalAsker};
use super::exit;
use crate::config::Catalog;
use crate::config::model::HostKeyPolicy;
use crate::prompt::{Answer, HostKeyAnswer, Notice, Prompt, Prompter};
use crate::ssh::client::{self, ConnectError};
use crate::ssh::known_hosts;

/// `warren trust --repair [NAME]`: removes the hashed lines an earlier warren wrote
/// corrupted (see [`known_hosts::is_corrupted_hash`]) from the user known_hosts files of
/// NAME's hops, or of every connection and `~/.ssh/known_hosts{,2}`. Says what it removed,
/// file and line; the keys they held are asked for again on the next connection.
pub fn repair(
    catalog: &Catalog,
    name: Option<&str>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let mut files: Vec<PathBuf> = Vec::new();
    let hops: Vec<&crate::config::model::Hop> = match name {
        Some(n) => match catalog.find(n) {
            Ok(c) => c.hops.iter().collect(),
            Err(e) => {
                let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
                return exit::BAD_CONFIG;
            }
        },
        None => {
            let home = &catalog.ssh.context().user_home;
            files.push(home.join(".ssh/known_hosts"));
            files.push(home.join(".ssh/known_hosts2"));
            catalog.connections.iter().flat_map(|c| &c.hops).collect()
        }
    };
    for hop in hops {
        files.extend(hop.known_hosts_files.value.iter().cloned());
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| {
        f.exists() && seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
    });
    if files.is_empty() {
        let _ = writeln!(out, "no known_hosts file to repair");
        return exit::OK;
    }
    let mut code = exit::OK;
    let mut any = false;
    for f in &files {
        let shown = crate::text::escape(&f.display().to_string()).into_owned();
        match known_hosts::repair(f) {
            Ok(removed) => {
                for (n, key) in removed {
                    any = true;
                    let _ = writeln!(out, "{shown}:{n}: removed a corrupted hashed line ({key})");
                }
            }
            Err(e) => {
                let _ = writeln!(err, "error: {shown}: not repaired, left as it was: {e}");
                code = exit::FAILED;
            }
        }
    }
    if !any && code == exit::OK {
        let shown: Vec<String> = files
            .iter()
            .map(|f| crate::text::escape(&f.display().to_string()).into_owned())
            .collect();
        let _ = writeln!(out, "no corrupted line in {}", shown.join(", "));
    }
    code
}

pub async fn run(
    catalog: &Catalog,
    name: &str,
    fingerprints: &[String],
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let mut conn = match catalog.find(name) {
        Ok(c) => c.clone(),
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    for hop in &mut conn.hops {
        if matches!(
            hop.host_key_policy.value,
            HostKeyPolicy::Strict | HostKeyPolicy::AcceptNew | HostKeyPolicy::Off
        ) {
            hop.host_key_policy.value = HostKeyPolicy::Ask;
        }
        hop.batch_mode.value = false;
    }
    let terminal = fingerprints.is_empty() && ask::available();
    let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<Notice>();
    let prompter = Arc::new(Prompter::new(true, move |n| {
        let _ = ntx.send(n);
    }));
    let (atx, mut arx) = tokio::sync::mpsc::unbounded_channel::<(u64, Answer)>();
    let asker = if terminal {
        let atx = atx.clone();
        TerminalAsker::start(move |id, a| {
            let _ = atx.send((id, a));
        })
    } else {
        None
    };
    let p = Arc::clone(&prompter);
    let answers = tokio::spawn(async move {
        while let Some((id, a)) = arx.recv().await {
            p.answer(id, a);
        }
    });
    let mut shown: Vec<String> = Vec::new();
    let mut unconfirmed: Vec<String> = Vec::new();
    let walk = client::connect(&conn.hops, &prompter, &conn.display_name, None);
    tokio::pin!(walk);
    let result = loop {
        tokio::select! {
            r = &mut walk => break r,
            Some(n) = nrx.recv() => {
                let Notice::Ask { id, prompt, .. } = &n else {
                    if let Some(a) = &asker { a.notice(n); }
                    continue;
                };
                match prompt {
                    Prompt::HostKey { host, key_type, fingerprint, .. } => {
                        shown.push(format!("{host}: {key_type} {fingerprint}"));
                        if let Some(a) = &asker {
                            a.notice(n);
                        } else if fingerprints.iter().any(|f| f == fingerprint) {
                            let _ = atx.send((*id, Answer::HostKey(HostKeyAnswer::AcceptAndSave)));
                        } else {
                            unconfirmed.push(format!("{host} ({key_type} {fingerprint})"));
                            let _ = atx.send((*id, Answer::HostKey(HostKeyAnswer::Reject)));
                        }
                    }
                    // Passphrases and passwords (to reach a later hop): on the terminal only.
                    _ => match &asker {
                        Some(a) => a.notice(n),
                        None => {
                            let _ = atx.send((*id, Answer::Cancel));
                        }
                    },
                }
            }
        }
    };
    if let Some(a) = asker {
        a.stop().await;
    }
    answers.abort();
    for s in &shown {
        let _ = writeln!(out, "{s}");
    }
    // A key confirmed but not written is not known: say so, and fail.
    let unwritten = |not_recorded: &[String], err: &mut (dyn Write + Send)| {
        for why in not_recorded {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(why));
        }
        let _ = writeln!(
            err,
            "the host keys of {} were confirmed but not all recorded: fix the cause and run this again",
            conn.display_name
        );
        exit::FAILED
    };
    match result {
        Ok(chain) => {
            for h in chain.handles.iter().rev() {
                let _ = h
                    .disconnect(russh::Disconnect::ByApplication, "", "en")
                    .await;
            }
            if !chain.not_recorded.is_empty() {
                return unwritten(&chain.not_recorded, err);
            }
            let _ = writeln!(out, "every host key of {} is known", conn.display_name);
            exit::OK
        }
        Err(ConnectError::Auth { not_recorded, .. }) if !not_recorded.is_empty() => {
            unwritten(&not_recorded, err)
        }
        // Authentication of the last hop is not what this command is about.
        Err(ConnectError::Auth { hop, .. }) if hop + 1 == conn.hops.len() => {
            let _ = writeln!(
                out,
                "every host key of {} is known (authentication is another matter: warren doctor {} walks it)",
                conn.display_name, conn.display_name
            );
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            if !unconfirmed.is_empty() {
                let _ = writeln!(
                    err,
                    "not confirmed: {}; check each fingerprint with the host's owner, then run: warren trust {} --fingerprint SHA256:...",
                    unconfirmed.join(", "),
                    conn.display_name
                );
            }
            exit::FAILED
        }
    }
}

/// `warren trust-config [PATH] [--revoke]`: records (or forgets) a project epoch.toml's bytes
/// as trusted, after saying what its entries will then be let do.
pub fn trust_config(
    catalog: &Catalog,
    ctx: &crate::config::Context,
    path: Option<&std::path::Path>,
    revoke: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    use crate::config::trust;
    let path = path.unwrap_or(std::path::Path::new("epoch.toml"));
    let shown = crate::text::escape(&path.display().to_string()).into_owned();
    if !path.is_file() {
        let _ = writeln!(
            err,
            "error: {shown}: no such file; name the epoch.toml to trust (warren trust-config PATH)"
        );
        return exit::BAD_CONFIG;
    }
    if revoke {
        return match trust::revoke(ctx, path) {
            Ok(true) => {
                let _ = writeln!(
                    out,
                    "{shown} is no longer trusted: its entries run no command and read no file outside its directory"
                );
                exit::OK
            }
            Ok(false) => {
                let _ = writeln!(out, "{shown} was not trusted");
                exit::OK
            }
            Err(e) => {
                let _ = writeln!(err, "error: {}", crate::text::escape(&e));
                exit::FAILED
            }
        };
    }
    // What the file's entries will be let do: the settings the catalog held back.
    let same = catalog
        .untrusted
        .as_ref()
        .is_some_and(|u| trust::absolute(&u.path) == trust::absolute(path));
    let held: Vec<&(String, crate::config::Origin)> = if same {
        catalog
            .connections
            .iter()
            .filter_map(|c| c.untrusted.as_ref())
            .flat_map(|h| h.uses.iter())
            .collect()
    } else {
        Vec::new()
    };
    match trust::trust(ctx, path) {
        Ok(hash) => {
            let _ = writeln!(
                out,
                "trusted {shown} ({}, sha256 {}…)",
                crate::text::escape(&trust::absolute(path).display().to_string()),
                &hash[..16]
            );
            if !held.is_empty() {
                let _ = writeln!(out, "its entries may now:");
                for (what, at) in held {
                    let _ = writeln!(
                        out,
                        "  {} ({})",
                        crate::text::escape(what),
                        crate::text::escape(&at.to_string())
                    );
                }
            }
            let _ = writeln!(
                out,
                "a change to the file needs `warren trust-config` again; `--revoke` forgets it"
            );
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape(&e));
            exit::FAILED
        }
    }
}
