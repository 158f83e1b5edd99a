//! `warren up --detach`, `warren status`, `warren down`, `warren reconnect`: clients of the
//! per-user daemon. `up --detach` on a terminal answers the daemon's questions about its own
//! tunnels there (a host key, a passphrase, a second factor), as `warren up` would.

use std::io::Write;
use std::sync::Arc;

use super::ask::{self, TerminalAsker};
use super::exit;
use crate::config::{Catalog, Context, Paths};
use crate::daemon::client::{DaemonClient, OPEN, QUICK, Unreachable, ensure_daemon, recover};
use crate::daemon::protocol::Request;
use crate::engine::{Event, TunnelStatus};
use crate::prompt::Notice;

/// One tunnel as a line: its parts escaped (they quote config files and peers), the state
/// coloured by what it means (where the stream shows colour).
fn line(t: &TunnelStatus) -> String {
    use crate::engine::TunnelState;
    use crate::text::escape;
    let local = if t.local.is_empty() {
        "-".to_string()
    } else {
        t.local.join(", ")
    };
    let state = escape(&t.state.to_string()).into_owned();
    let style = match t.state {
        TunnelState::Up => super::style::OK,
        TunnelState::Failed { .. } => super::style::FAIL,
        TunnelState::Down | TunnelState::Expired { .. } => super::style::DIM,
        TunnelState::OnDemand { error: None } => super::style::OK,
        TunnelState::OnDemand { error: Some(_) } => super::style::WARN,
        TunnelState::Connecting | TunnelState::Reconnecting { .. } => super::style::WARN,
        TunnelState::NeedsYou { .. } => super::style::WARN,
    };
    let mut s = format!(
        "{}  {} -> {} via {}  {}",
        escape(&t.name),
        escape(&local),
        escape(&t.target),
        escape(&t.via),
        super::style::paint(style, &state)
    );
    // On its way back up: why it went down (a failure says why itself).
    if let (Some(e), true) = (
        &t.stats.last_error,
        t.state.is_open() && t.state != TunnelState::Up,
    ) {
        s.push_str(&format!(" ({})", escape(e)));
    }
    if let Some(h) = &t.health {
        s.push_str(&format!(" · {}", escape(&h.short())));
    }
    s
}

/// What `warren up --detach` was asked.
pub struct Detach<'a> {
    pub names: &'a [String],
    pub json: bool,
    pub for_secs: Option<u64>,
    pub port_fallback: bool,
    pub on_demand: bool,
}

pub async fn up(
    catalog: &Catalog,
    ctx: &Arc<Context>,
    paths: &Paths,
    ask_for: Detach<'_>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let Detach {
        names,
        json,
        for_secs,
        port_fallback,
        on_demand,
    } = ask_for;
    // @TAG is expanded here, from the same files the daemon reads.
    let names: Vec<String> = match catalog.select(names) {
        Ok(list) => list.iter().map(|c| c.display_name.clone()).collect(),
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    let names = &names[..];
    // On a terminal, this client answers the daemon's questions about these tunnels.
    let answers = !json && ask::available();
    // A daemon that was stopping as this client came (it answered, then went): a new one
    // is started and asked again, once.
    let opts = OpenOptions {
        for_secs,
        port_fallback,
        on_demand,
        answers,
    };
    let mut reply = open_detached(ctx, paths, names, opts).await;
    if reply.is_err() {
        reply = open_detached(ctx, paths, names, opts).await;
    }
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::FAILED;
        }
    };
    if let Some(e) = &reply.error {
        let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
        return exit::BAD_CONFIG;
    }
    if json {
        let _ = serde_json::to_writer(&mut *out, &reply.tunnels);
        let _ = writeln!(out);
    } else {
        for t in &reply.tunnels {
            let _ = writeln!(out, "{}", line(t));
        }
    }
    // Up, or listening for its first client: the tunnel works.
    if reply.tunnels.iter().any(|t| t.state.serves()) {
        exit::OK
    } else {
        exit::FAILED
    }
}

#[derive(Clone, Copy)]
struct OpenOptions {
    for_secs: Option<u64>,
    port_fallback: bool,
    on_demand: bool,
    answers: bool,
}

/// Hands `names` to the daemon (starting it if needed) and waits until each is up or has
/// failed, answering its questions on this terminal when `answers`.
async fn open_detached(
    ctx: &Context,
    paths: &Paths,
    names: &[String],
    opts: OpenOptions,
) -> Result<crate::daemon::protocol::Reply, String> {
    let OpenOptions {
        for_secs,
        port_fallback,
        on_demand,
        answers,
    } = opts;
    ensure_daemon(ctx, paths).await?;
    let client = DaemonClient::connect(ctx)
        .await
        .map_err(|e| format!("the daemon: {e}"))?;
    let asker = if answers {
        let c = client.clone();
        TerminalAsker::start(move |id, a| {
            let c = c.clone();
            tokio::spawn(async move {
                let _ = c.answer(id, a).await;
            });
        })
    } else {
        None
    };
    let (_, mut events) = client
        .subscribe(asker.is_some())
        .await
        .map_err(|e| format!("the daemon: {e}"))?;
    let opened = client.request(
        Request::Open {
            names: names.to_vec(),
            for_secs,
            port_fallback,
            no_exec: !ctx.run_commands(),
            on_demand,
        },
        OPEN,
    );
    tokio::pin!(opened);
    let reply = loop {
        tokio::select! {
            r = &mut opened => break r,
            ev = events.recv() => {
                let (Some(a), Ok(ev)) = (&asker, ev) else { continue };
                match Arc::unwrap_or_clone(ev) {
                    Event::Prompt { id, name, prompt, timeout_secs } if names.contains(&name) => {
                        a.notice(Notice::Ask {
                            id,
                            connection: name,
                            prompt,
                            timeout: std::time::Duration::from_secs(timeout_secs),
                        })
                    }
                    Event::PromptWithdrawn { id, name } => {
                        a.notice(Notice::Withdrawn { id, connection: name })
                    }
                    _ => {}
                }
            }
        }
    };
    if let Some(a) = asker {
        a.stop().await;
    }
    reply.map_err(|e| format!("the daemon: {e}"))
}

/// The daemon for a request that needs one running: when none runs, "nothing to `verb`"
/// and `none`'s exit code; when one cannot be reached, why, and exit 1.
async fn reach(
    ctx: &Context,
    verb: &str,
    none: i32,
    err: &mut (dyn Write + Send),
) -> Result<DaemonClient, i32> {
    match DaemonClient::reach(ctx).await {
        Ok(c) => Ok(c),
        Err(Unreachable::None) => {
            let _ = writeln!(err, "no daemon is running: nothing to {verb}");
            Err(none)
        }
        Err(Unreachable::Refused(why)) => {
            let _ = writeln!(
                err,
                "error: cannot reach the daemon: {}",
                crate::text::escape(&why)
            );
            Err(exit::FAILED)
        }
    }
}

pub async fn status(ctx: &Context, paths: &Paths, json: bool, out: &mut (dyn Write + Send)) -> i32 {
    // A daemon that died while running tunnels is replaced (and opens them again).
    let _ = recover(ctx, paths).await;
    let tunnels = match DaemonClient::reach(ctx).await {
        Ok(c) => c
            .request(Request::Status, QUICK)
            .await
            .map(|r| r.tunnels)
            .unwrap_or_default(),
        // No daemon: nothing runs.
        Err(Unreachable::None) => Vec::new(),
        Err(Unreachable::Refused(why)) => {
            eprintln!(
                "error: cannot reach the daemon: {}",
                crate::text::escape(&why)
            );
            return exit::FAILED;
        }
    };
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &tunnels);
        let _ = writeln!(out);
    } else if tunnels.is_empty() {
        let _ = writeln!(
            out,
            "no tunnels are running in the background (warren up --detach NAME starts one)"
        );
    } else {
        for t in &tunnels {
            let up = t
                .stats
                .uptime_secs
                .map(|s| format!("{s:.0}s"))
                .unwrap_or("-".into());
            let _ = writeln!(
                out,
                "{}  up {up}  in {} B  out {} B  reconnects {}",
                line(t),
                t.stats.bytes_in,
                t.stats.bytes_out,
                t.stats.reconnects
            );
        }
    }
    exit::OK
}

/// NAME and @TAG, as names (a name the config no longer has is kept: the daemon may run it).
fn expand(catalog: &Catalog, names: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for n in names {
        if n.starts_with('@') {
            let tagged = catalog
                .select(std::slice::from_ref(n))
                .map_err(|e| e.to_string())?;
            out.extend(tagged.iter().map(|c| c.display_name.clone()));
        } else {
            out.push(n.clone());
        }
    }
    Ok(out)
}

pub async fn down(
    catalog: &Catalog,
    ctx: &Context,
    names: &[String],
    all: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let names = match expand(catalog, names) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    let req = if all {
        Request::CloseAll
    } else {
        Request::Close { names }
    };
    let client = match reach(ctx, "close", exit::OK, err).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match client.request(req, QUICK).await {
        Ok(r) => {
            let open = r.tunnels.iter().filter(|t| t.state.is_open()).count();
            let _ = writeln!(out, "{open} tunnel(s) still running");
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: the daemon: {e}");
            exit::FAILED
        }
    }
}

/// `warren extend NAME|@TAG... [--by DURATION]`: pushes back time limits in the daemon.
pub async fn extend(
    catalog: &Catalog,
    ctx: &Context,
    names: &[String],
    by: Option<u64>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let names = match expand(catalog, names) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    };
    let client = match reach(ctx, "extend", exit::FAILED, err).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match client
        .request(
            Request::Extend {
                names: names.clone(),
                secs: by,
            },
            QUICK,
        )
        .await
    {
        Ok(r) => {
            for t in r.tunnels.iter().filter(|t| names.contains(&t.name)) {
                match t.stats.expires_in_secs {
                    Some(s) => {
                        let _ = writeln!(out, "{}  closes in {:.0}s", t.name, s);
                    }
                    None => {
                        let _ = writeln!(out, "{}  has no time limit", t.name);
                    }
                }
            }
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: the daemon: {e}");
            exit::FAILED
        }
    }
}

/// `warren reconnect [NAME...]`: the daemon's sessions (those of NAME) are made again now.
pub async fn reconnect(
    ctx: &Context,
    names: &[String],
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let client = match reach(ctx, "reconnect", exit::FAILED, err).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match client
        .request(
            Request::Reconnect {
                names: names.to_vec(),
            },
            QUICK,
        )
        .await
    {
        Ok(r) if r.error.is_none() => {
            let which = if names.is_empty() {
                "every tunnel".to_string()
            } else {
                names.join(", ")
            };
            let _ = writeln!(out, "reconnecting {which}");
            exit::OK
        }
        Ok(r) => {
            let _ = writeln!(err, "error: {}", r.error.unwrap_or_default());
            exit::FAILED
        }
        Err(e) => {
            let _ = writeln!(err, "error: the daemon: {e}");
            exit::FAILED
        }
    }
}
