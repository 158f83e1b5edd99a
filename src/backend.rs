//! Where a client's tunnels live: an engine in this process, or the per-user daemon. The
//! TUI and the CLI use both the same way, with the engine's own types.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::config::Connection;
use crate::daemon::client::{DaemonClient, OPEN, QUICK};
use crate::daemon::protocol::Request;
use crate::engine::{Command, Engine, Event, TunnelStatus};
use crate::prompt::Answer;

#[derive(Clone)]
pub enum Backend {
    Local(Engine),
    Remote(DaemonClient),
}

impl Backend {
    /// The tunnels' events (for a daemon: once subscribed).
    pub fn events(&self) -> broadcast::Receiver<std::sync::Arc<Event>> {
        match self {
            Backend::Local(e) => e.subscribe(),
            Backend::Remote(d) => d.events(),
        }
    }

    /// Opens a connection's tunnel; answered once it is up or has failed.
    pub async fn open(&self, conn: &Connection) -> Result<TunnelStatus, String> {
        match self {
            Backend::Local(e) => e
                .open(conn.clone())
                .await
                .ok_or_else(|| "the engine stopped".to_string()),
            Backend::Remote(d) => {
                let r = d
                    .request(
                        Request::Open {
                            names: vec![conn.display_name.clone()],
                            for_secs: None,
                            port_fallback: conn.policy.port_fallback,
                            no_exec: conn.hops.iter().any(|h| !h.run_commands.value),
                            on_demand: false,
                        },
                        OPEN,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                match (r.error, r.tunnels.into_iter().next()) {
                    (Some(e), _) => Err(e),
                    (None, Some(t)) => Ok(t),
                    (None, None) => Err("the daemon opened nothing".into()),
                }
            }
        }
    }

    /// Closes tunnels (every one when `names` is empty).
    pub async fn close(&self, names: Vec<String>) -> Result<(), String> {
        match self {
            Backend::Local(e) => {
                e.close(names).await;
                Ok(())
            }
            Backend::Remote(d) => {
                let req = if names.is_empty() {
                    Request::CloseAll
                } else {
                    Request::Close { names }
                };
                reply(d.request(req, QUICK).await).map(|_| ())
            }
        }
    }

    pub async fn status(&self) -> Result<Vec<TunnelStatus>, String> {
        match self {
            Backend::Local(e) => Ok(e.status().await),
            Backend::Remote(d) => reply(d.request(Request::Status, QUICK).await),
        }
    }

    pub async fn answer(&self, id: u64, answer: Answer) {
        match self {
            Backend::Local(e) => {
                e.answer(id, answer);
            }
            Backend::Remote(d) => {
                let _ = d.answer(id, answer).await;
            }
        }
    }

    /// Pushes back a tunnel's time limit (by its max_duration again, or `secs`).
    pub async fn extend(&self, name: String, secs: Option<u64>) -> Result<(), String> {
        match self {
            Backend::Local(e) => {
                e.send(Command::Extend { name, secs }).await;
                Ok(())
            }
            Backend::Remote(d) => reply(
                d.request(
                    Request::Extend {
                        names: vec![name],
                        secs,
                    },
                    QUICK,
                )
                .await,
            )
            .map(|_| ()),
        }
    }

    /// Re-establishes the sessions of these tunnels now (every one when empty).
    pub async fn reconnect(&self, names: Vec<String>) -> Result<(), String> {
        match self {
            Backend::Local(e) => {
                e.send(Command::Reconnect { names }).await;
                Ok(())
            }
            Backend::Remote(d) => {
                reply(d.request(Request::Reconnect { names }, QUICK).await).map(|_| ())
            }
        }
    }
}

fn reply(r: std::io::Result<crate::daemon::protocol::Reply>) -> Result<Vec<TunnelStatus>, String> {
    let r = r.map_err(|e| format!("the daemon: {e}"))?;
    match r.error {
        Some(e) => Err(e),
        None => Ok(r.tunnels),
    }
}

/// How long a client waits for a daemon to accept a connection.
pub const CONNECT: Duration = Duration::from_secs(5);
