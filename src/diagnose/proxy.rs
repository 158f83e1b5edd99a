//! The `proxy` step, in place of `dns` and `tcp` for a hop reached through its ProxyCommand:
//! the command is started as a connection would start it, the server's banner is read through
//! it, and if that fails because the command ended, the step says how it ended, what it said
//! on stderr, and what usually causes that (not installed, a missing plugin, expired
//! credentials; for the AWS and Google Cloud CLIs, what their errors mean, see [`cloud`]).
//! Then the hop's usual steps run over the command's pipes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::Handle;

use super::{Status, StepId, Walk, cloud, hop};
use crate::config::model::{Connection, Hop};
use crate::prompt::Prompter;
use crate::ssh::client::Client;
use crate::ssh::proxy::{self, Proxy};

/// The `proxy` step (in place of dns and tcp): start the hop's ProxyCommand, read the
/// server's banner through it, and if that fails because the command ended, say how it ended,
/// what it said, and what usually causes that.
pub(super) async fn steps(
    w: &mut Walk<'_>,
    conn: &Connection,
    hop: &Hop,
    i: usize,
    prompter: &Arc<Prompter>,
) -> Option<(Handle<Client>, Option<Proxy>)> {
    let hops = conn.hops.len();
    let timeout = hop.connect_timeout.value.0;
    let origin = hop
        .proxy_command
        .as_ref()
        .map(|c| c.origin.to_string())
        .unwrap_or_default();
    let t = Instant::now();
    let (mut p, mut stream) = match Proxy::start(hop, i, &conn.display_name, None) {
        Ok(x) => x,
        Err(e) => {
            w.fail(
                StepId::Proxy,
                i,
                t,
                format!("the ProxyCommand (at {origin}) could not be started: {e}"),
                "warren runs it as ssh does, with $SHELL -c (or /bin/sh): check SHELL",
            );
            w.skip_rest(hops, i, StepId::Proxy);
            return None;
        }
    };
    let ran = format!(
        "ran `{}` (pid {})",
        crate::text::escape(&p.command),
        p.pid()
    );
    let read = hop::read_banner(&mut stream, timeout).await;
    let banner = match read {
        Ok(b) => b,
        Err((detail, hint)) => {
            // Did the command end? Then that is the failure, not the server.
            if let Some(status) = p.exited(Duration::from_secs(1)).await {
                let tail = p.stderr_tail();
                let mut detail = format!(
                    "{ran}; it {}{}",
                    proxy::describe(status),
                    proxy::said(&tail, 10)
                );
                let hint = match cloud::Cli::of(&p.command) {
                    Some(cli) => {
                        let (more, hint) = cloud::explain(&cli, &p.command, status, &tail).await;
                        detail.push_str(&more);
                        hint
                    }
                    None => proxy_hint(status, &tail, &p.command, &origin),
                };
                w.fail(StepId::Proxy, i, t, detail, hint);
                w.skip_rest(hops, i, StepId::Proxy);
                return None;
            }
            w.pass(
                StepId::Proxy,
                i,
                t,
                format!("{ran}; it is running{}", proxy::said(&p.stderr_tail(), 5)),
            );
            w.fail(
                StepId::Banner,
                i,
                t,
                detail,
                format!("{hint}; through the ProxyCommand: run it by hand (`{}`): it should print a line starting with SSH-2.0", p.command),
            );
            w.skip_rest(hops, i, StepId::Banner);
            return None;
        }
    };
    let answers = format!(
        "{ran}; the server answers through it{}",
        proxy::said(&p.stderr_tail(), 5)
    );
    match cloud::Cli::of(&p.command).filter(|_| w.deep) {
        // --deep: the session opens now; do the credentials hold (and whose are they)?
        Some(cli) => match cloud::credentials(&cli).await {
            Ok(whose) => w.pass(StepId::Proxy, i, t, format!("{answers}; {whose}")),
            Err((detail, hint)) => w.push(
                StepId::Proxy,
                i,
                Status::Warn,
                t,
                format!("{answers}; but {detail}"),
                Some(format!(
                    "the session opened, so the next one may not: {hint}"
                )),
            ),
        },
        None => w.pass(StepId::Proxy, i, t, answers),
    }
    w.pass(StepId::Banner, i, t, banner.0);
    let handle = hop::ssh_steps(w, conn, hop, i, stream, None, Some(banner.1), prompter).await?;
    Some((handle, Some(p)))
}

/// The usual cause of a ProxyCommand that ended before the server answered.
fn proxy_hint(
    status: std::process::ExitStatus,
    said: &[String],
    command: &str,
    origin: &str,
) -> String {
    let text = said.join("\n").to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["session-manager-plugin", "sessionmanagerplugin"]) {
        return "the AWS Session Manager plugin is missing: install session-manager-plugin (AWS's guide \"Install the Session Manager plugin for the AWS CLI\"), then run warren doctor again".into();
    }
    if status.code() == Some(127)
        || has(&[
            "command not found",
            ": not found",
            "no such file or directory",
        ])
    {
        return format!(
            "the command is not installed, or not on warren's PATH: install it, or write its full path in the ProxyCommand at {origin}"
        );
    }
    if status.code() == Some(126) {
        return format!(
            "the command is not executable: check its permissions, or the path in the ProxyCommand at {origin}"
        );
    }
    if has(&[
        "expiredtoken",
        "expired",
        "credentials",
        "login",
        "log in",
        "reauthentication",
        "not authenticated",
    ]) {
        return "the command's credentials are missing or expired: log in again (e.g. aws sso login, gcloud auth login, cloudflared access login), then run warren doctor again".into();
    }
    format!(
        "the command ended before the SSH server answered: run it by hand to see why (`{command}`); it should print a line starting with SSH-2.0 and keep running"
    )
}
