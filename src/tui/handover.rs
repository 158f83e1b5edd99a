//! `q`, `l`: the TUI's open tunnels handed to the per-user daemon. They close here first (the
//! daemon binds the same ports), the daemon opens them from the same config, and the TUI
//! waits, bounded by the tunnels' connect timeouts, for the daemon to report each one up.
//! All or nothing: if any is not up (the daemon cannot ask about a host key accepted here
//! "once", a port is taken...), the daemon closes every one of them and the TUI opens them
//! here again, so nothing is left half in each place and the user learns why.

use std::sync::Arc;
use std::time::Duration;

use super::commands::NotHandedOver;
use crate::config::{Connection, Context, Paths};
use crate::daemon::client::{DaemonClient, QUICK, ensure_daemon};
use crate::daemon::protocol::Request;
use crate::engine::{Engine, TunnelState};

/// Added to the tunnels' own connect timeouts: the daemon reads the config and binds first.
const MARGIN: Duration = Duration::from_secs(10);

/// How long the daemon may take to have them all up: the slowest chain's connect timeouts
/// (each hop's connect is bounded by its own), and a margin.
pub fn wait_for(conns: &[Connection]) -> Duration {
    conns
        .iter()
        .map(|c| {
            c.hops
                .iter()
                .map(|h| h.connect_timeout.value.0)
                .sum::<Duration>()
        })
        .max()
        .unwrap_or_default()
        + MARGIN
}

/// Hands `conns` (open in `local`) to the daemon; `Ok` once it reports every one up.
pub async fn hand_over(
    ctx: &Arc<Context>,
    paths: &Paths,
    local: &Engine,
    conns: &[Connection],
) -> Result<(), NotHandedOver> {
    let names: Vec<String> = conns.iter().map(|c| c.display_name.clone()).collect();
    let all = |why: String| NotHandedOver {
        names: names.clone(),
        failed: names.iter().map(|n| (n.clone(), why.clone())).collect(),
    };
    ensure_daemon(ctx, paths)
        .await
        .map_err(|e| all(format!("the daemon did not start: {e}")))?;
    let client = DaemonClient::connect(ctx)
        .await
        .map_err(|e| all(format!("the daemon does not answer: {e}")))?;
    tracing::info!("handing {} tunnel(s) to the daemon", names.len());
    local.close(names.clone()).await;
    let wait = wait_for(conns);
    let open = Request::Open {
        names: names.clone(),
        for_secs: None,
        port_fallback: false,
        no_exec: !ctx.run_commands(),
        on_demand: false,
    };
    let failed: Vec<(String, String)> = match client.request(open, wait).await {
        Err(e) => names
            .iter()
            .map(|n| {
                let why = format!("not up within {}s ({e})", wait.as_secs());
                (n.clone(), why)
            })
            .collect(),
        Ok(r) => match r.error {
            Some(e) => names.iter().map(|n| (n.clone(), e.clone())).collect(),
            None => names
                .iter()
                .filter_map(|n| {
                    let why = match r.tunnels.iter().find(|t| &t.name == n).map(|t| &t.state) {
                        Some(s) if s.serves() => return None,
                        Some(TunnelState::Failed { error }) => error.clone(),
                        Some(other) => format!("it is {other}"),
                        None => "the daemon did not open it".into(),
                    };
                    Some((n.clone(), why))
                })
                .collect(),
        },
    };
    if failed.is_empty() {
        tracing::info!("the daemon has them up");
        return Ok(());
    }
    for (n, why) in &failed {
        tracing::warn!(tunnel = %n, "the daemon could not take it over: {why}");
    }
    // Every one comes back here: the daemon lets go of those it did open too.
    let _ = client
        .request(
            Request::Close {
                names: names.clone(),
            },
            QUICK,
        )
        .await;
    Err(NotHandedOver { names, failed })
}
