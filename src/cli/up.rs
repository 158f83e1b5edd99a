//! `warren up NAME... [--json]`: opens the connections' tunnels in the foreground, like
//! `ssh -N`; Ctrl-C or SIGTERM closes them and exits 0; exit 1 if no tunnel could be opened.

use std::collections::HashSet;
use std::io::Write;

use tokio::sync::broadcast::error::RecvError;

use super::ask::{self, TerminalAsker};
use super::exit;
use crate::config::{Catalog, Connection};
use crate::engine::{Command, Engine, Event, TunnelState};
use crate::prompt::Notice;

pub async fn run(
    catalog: &Catalog,
    names: &[String],
    json: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let mut conns: Vec<Connection> = Vec::new();
    for n in names {
        match catalog.find(n) {
            Ok(c) => conns.push(c.clone()),
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return exit::BAD_CONFIG;
            }
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
    for c in &conns {
        engine
            .send(Command::Open {
                conn: Box::new(c.clone()),
                reply: None,
            })
            .await;
    }
    let all: HashSet<String> = conns.iter().map(|c| c.display_name.clone()).collect();
    let mut failed: HashSet<String> = HashSet::new();
    loop {
        let ev = tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            ev = events.recv() => ev,
        };
        let ev = match ev {
            Ok(ev) => ev,
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
        } else {
            human(&ev, out, err);
        }
        if let Event::State {
            name,
            state: TunnelState::Failed { .. },
        } = &ev
        {
            failed.insert(name.clone());
            if failed.len() == all.len() {
                if let Some(a) = asker {
                    a.stop().await;
                }
                engine.shutdown().await;
                return exit::FAILED;
            }
        }
    }
    if let Some(a) = asker {
        a.stop().await;
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
            let _ = writeln!(out, "{name}  {local} -> {target} via {via}");
        }
        Event::State { name, state } => {
            let _ = writeln!(out, "{name}  {state}");
        }
        Event::Warning { name, message } => {
            let _ = writeln!(err, "warning: {name}: {message}");
        }
        Event::Error { name, message } => {
            let _ = writeln!(err, "error: {name}: {message}");
        }
        Event::Stats { .. } => {}
        // warren up runs headless: the engine never asks, and runs no diagnostics.
        Event::Prompt { .. }
        | Event::PromptWithdrawn { .. }
        | Event::Step { .. }
        | Event::Diagnosed { .. } => {}
    }
    let _ = out.flush();
}
