//! `warren up NAME|@TAG... [--json] [--for DURATION]`: opens the connections' tunnels in the
//! foreground, like `ssh -N`; Ctrl-C or SIGTERM closes them and exits 0. It ends by itself
//! when every tunnel has ended: exit 1 if one failed, 0 if they reached their time limits.

use std::collections::HashSet;
use std::io::Write;

use tokio::sync::broadcast::error::RecvError;

use super::ask::{self, TerminalAsker};
use super::exit;
use crate::config::model::Seconds;
use crate::config::{Catalog, Connection, Origin, Sourced};
use crate::engine::{Command, Engine, Event, TunnelState};
use crate::prompt::Notice;
use crate::text::{escape, escape_lines};

/// How `warren up` was asked to open them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// One JSON event a line.
    pub json: bool,
    /// A time limit for each (`--for`).
    pub for_secs: Option<u64>,
    /// A local port in use is replaced by the next free one.
    pub port_fallback: bool,
    /// Each opens its session when a client connects (`--on-demand`).
    pub on_demand: bool,
}

/// Takes the catalog: once the chosen connections are copied out it is let go, so a long
/// `warren up` holds none of the entries it does not run (and the engine keeps of those it
/// runs only what their sessions need).
pub async fn run(
    catalog: Catalog,
    names: &[String],
    opts: Options,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let Options {
        json,
        for_secs,
        port_fallback,
        on_demand,
    } = opts;
    let mut conns: Vec<Connection> = match catalog.select(names) {
        Ok(list) => list.into_iter().cloned().collect(),
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    drop(catalog);
    for c in &mut conns {
        c.policy.port_fallback = port_fallback;
        if on_demand {
            c.policy.on_demand = Some(Sourced::new(true, Origin::Flag("--on-demand")));
        }
    }
    if let Some(secs) = for_secs {
        for c in &mut conns {
            c.policy.max_duration = Some(Sourced::new(
                Seconds::from_secs(secs),
                Origin::Flag("--for"),
            ));
        }
    }
    // Both signal streams exist before any tunnel opens, so a signal is never lost between
    // two turns of the loop.
    use tokio::signal::unix::{SignalKind, signal};
    let (mut sigint, mut sigterm) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(err, "error: cannot watch SIGINT/SIGTERM: {e}");
            return exit::FAILED;
        }
    };
    // On a terminal a person answers questions, as with ssh; otherwise nobody is asked.
    let interactive = !json && ask::available();
    let engine = Engine::start_with(interactive);
    let asker = if interactive {
        let e = engine.clone();
        TerminalAsker::start(move |id, answer| {
            e.answer(id, answer);
        })
    } else {
        None
    };
    let mut events = engine.subscribe();
    let all: HashSet<String> = conns.iter().map(|c| c.display_name.clone()).collect();
    // Each connection goes to the engine: this command keeps no copy.
    for c in conns {
        let by = crate::audit::By::Cli {
            command: crate::audit::CliCommand::Up,
        };
        crate::audit::record(&c.display_name, crate::audit::Kind::OpenRequested { by });
        engine
            .send(Command::Open {
                conn: Box::new(c),
                reply: None,
            })
            .await;
    }
    let mut failed: HashSet<String> = HashSet::new();
    let mut ended: HashSet<String> = HashSet::new();
    let mut health_ok = std::collections::HashMap::new();
    loop {
        let ev = tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            ev = events.recv() => ev,
        };
        let ev = match ev {
            Ok(ev) => std::sync::Arc::unwrap_or_clone(ev),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        };
        if let Some(a) = &asker {
            match &ev {
                Event::Prompt {
                    id,
                    name,
                    prompt,
                    timeout_secs,
                } => a.notice(Notice::Ask {
                    id: *id,
                    connection: name.clone(),
                    prompt: prompt.clone(),
                    timeout: std::time::Duration::from_secs(*timeout_secs),
                }),
                Event::PromptWithdrawn { id, name } => a.notice(Notice::Withdrawn {
                    id: *id,
                    connection: name.clone(),
                }),
                _ => {}
            }
        }
        if json {
            if !matches!(ev, Event::Stats { .. }) {
                let _ = serde_json::to_writer(&mut *out, &ev);
                let _ = writeln!(out);
                let _ = out.flush();
            }
        } else if let Event::Health { name, health } = &ev {
            // Only a change between ok and failing is news.
            if health_ok.insert(name.clone(), health.ok) != Some(health.ok) {
                let _ = writeln!(out, "{}  {}", escape(name), escape(&health.short()));
            }
        } else {
            human(&ev, out, err);
        }
        // A tunnel that failed, or reached its time limit, has ended: when all have, so does up.
        if let Event::State { name, state } = &ev {
            match state {
                TunnelState::Failed { .. } => {
                    failed.insert(name.clone());
                    ended.insert(name.clone());
                }
                TunnelState::Expired { .. } => {
                    ended.insert(name.clone());
                }
                _ => {}
            }
            if ended.len() == all.len() {
                if let Some(a) = asker {
                    a.stop().await;
                }
                engine.shutdown().await;
                return if failed.is_empty() {
                    exit::OK
                } else {
                    exit::FAILED
                };
            }
        }
    }
    if let Some(a) = asker {
        a.stop().await;
    }
    // Ctrl-C or SIGTERM: this command asks for what is still open to close.
    for name in all.difference(&ended) {
        let by = crate::audit::By::Cli {
            command: crate::audit::CliCommand::Up,
        };
        crate::audit::record(name, crate::audit::Kind::CloseRequested { by });
    }
    engine.shutdown().await;
    exit::OK
}

fn human(ev: &Event, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) {
    match ev {
        Event::Listening {
            name,
            local,
            target,
            via,
        } => {
            let _ = writeln!(
                out,
                "{}  {} -> {} via {}",
                escape(name),
                escape(local),
                escape(target),
                escape(via)
            );
        }
        Event::State { name, state } => {
            let _ = writeln!(out, "{}  {}", escape(name), escape(&state.to_string()));
        }
        Event::Warning { name, message } => {
            let _ = writeln!(err, "warning: {}: {}", escape(name), escape_lines(message));
        }
        Event::Error { name, message } => {
            let _ = writeln!(err, "error: {}: {}", escape(name), escape_lines(message));
        }
        Event::Stats { .. } => {}
        // warren up runs headless: the engine never asks, and runs no diagnostics.
        Event::Prompt { .. }
        | Event::PromptWithdrawn { .. }
        | Event::Step { .. }
        | Event::Diagnosed { .. }
        | Event::Health { .. } => {}
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_in_events_reaches_the_terminal_escaped() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        human(
            &Event::Error {
                name: "db".into(),
                message: "server said: \x1b]0;pwned\x07\x1b[2J\n  hint: ask the admin".into(),
            },
            &mut out,
            &mut err,
        );
        human(
            &Event::Listening {
                name: "db".into(),
                local: "127.0.0.1:5432".into(),
                target: "db\u{202e}lanretni".into(),
                via: "ops@bastion".into(),
            },
            &mut out,
            &mut err,
        );
        let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
        assert!(
            !err.contains('\x1b') && !out.contains('\u{202e}'),
            "{err:?} {out:?}"
        );
        assert!(err.contains("\\x1b]0;pwned\\x07"), "{err:?}");
        assert_eq!(
            err.lines().count(),
            2,
            "the hint stays on its own line: {err:?}"
        );
        assert!(out.contains("db\\u{202e}lanretni"), "{out:?}");
    }
}
