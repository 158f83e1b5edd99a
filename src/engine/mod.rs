//! The engine: owns SSH sessions and tunnels and their lifecycle; takes [`Command`]s,
//! publishes [`Event`]s. The TUI and the CLI are its clients, in process or through the
//! daemon (whose wire format is these same types); it imports nothing of either, nor of the
//! daemon.
//!
//! A tunnel goes down -> connecting -> up -> reconnecting -> up ... and ends down (closed) or
//! failed. Failed is final: its listeners are closed, its unix sockets removed, its session
//! dropped when no other tunnel uses it; opening it again starts it afresh. Sessions are
//! keyed by everything that decides trust and identity (see
//! [`crate::config::model::Hop::trust_key`]): only equal keys share one SSH connection.
//!
//! - `actor`: the one task that owns tunnels and sessions.
//! - `supervisor`: one per session: connect, watch, reconnect with backoff.
//! - [`health`]: checks the database behind each open tunnel, through its session.
//! - [`monitor`]: notices a resume from sleep or a network change and has every session
//!   re-checked at once.
//!
//! Events go out on a broadcast channel of [`EVENT_BUFFER`] entries: a client that falls that
//! far behind loses the oldest ones (it sees `Lagged`), and the engine never waits for it.
//! Each entry is an `Arc<Event>`: the ring is allocated whole when the engine starts, and at
//! 8 bytes an entry instead of an event's 144 it costs 0.1 MB instead of 0.7 MB (what a
//! `warren up` with 100 idle tunnels holds); subscribers share one event instead of each
//! getting a deep copy.

mod actor;
pub mod health;
pub mod monitor;
mod supervisor;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::model::Connection;
use crate::prompt::{Answer, Notice, Prompt, Prompter};

pub const EVENT_BUFFER: usize = 4096;

/// What a client asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Open every forward of a connection; `reply` gets the tunnel's status once it is up or
    /// has failed. A tunnel that failed or was closed starts afresh; one that is open or on
    /// its way is left as it is (and answered when it settles).
    Open {
        conn: Box<Connection>,
        reply: Option<oneshot::Sender<TunnelStatus>>,
    },
    /// Close tunnels (every one when `names` is empty); `reply` once they are closed.
    Close {
        names: Vec<String>,
        reply: Option<oneshot::Sender<()>>,
    },
    /// Re-establish the sessions of these tunnels now (every one when empty): a reconnect
    /// waiting out its backoff starts at once, a live session is dropped and made again.
    Reconnect { names: Vec<String> },
    /// Check every live session at once (a ping with a short timeout) and reconnect those
    /// that do not answer: after a resume from sleep or a network change.
    Recheck { why: String },
    /// The answer to a prompt.
    Answer { id: u64, answer: Answer },
    /// Close a tunnel because a limit of its own was reached; it stays listed as expired.
    Expire { name: String, reason: String },
    /// Push a tunnel's time limit back by `secs` (`None`: by its whole max_duration again).
    Extend { name: String, secs: Option<u64> },
    /// Run the diagnostics of a connection; steps arrive as [`Event::Step`], then
    /// [`Event::Diagnosed`].
    Diagnose(Box<Connection>),
    /// The state, counters and log of every tunnel.
    Status(oneshot::Sender<Vec<TunnelStatus>>),
    /// Close everything and stop; answered when done.
    Shutdown(oneshot::Sender<()>),
}

pub use crate::tunnel::TunnelStats;
pub use health::Health;

/// One tunnel, as `warren status` and a client show it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub name: String,
    #[serde(flatten)]
    pub state: TunnelState,
    /// Where it listens (a port picked for port 0 is shown as picked).
    pub local: Vec<String>,
    pub target: String,
    pub via: String,
    /// The connection's tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub stats: TunnelStats,
    /// It closes after this long with no client connection (on demand: its session does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<f64>,
    /// Its session opens when a client connects and closes when idle.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    /// The tunnel's recent log lines, oldest first.
    #[serde(default)]
    pub log: Vec<String>,
    /// The last check of the database behind it (none yet, or none to check).
    #[serde(default)]
    pub health: Option<Health>,
    /// The recent checks, oldest first (at most [`health::HISTORY`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_history: Vec<Health>,
}

/// The state of a tunnel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TunnelState {
    Down,
    Connecting,
    Up,
    Reconnecting {
        in_secs: f64,
        attempt: u32,
    },
    Failed {
        error: String,
    },
    /// Closed by its own limit (max_duration, idle_timeout): listed until opened again.
    Expired {
        reason: String,
    },
    /// On demand: listening with no SSH session; the first client connection opens one.
    /// `error`: why the last attempt to open it failed (the next client tries again).
    OnDemand {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The session was lost and only a person's answer gets it back (a second factor, a
    /// password). `asking`: the question is asked now, where the person can answer it (the
    /// TUI's dialog, `warren up` on a terminal). Otherwise it went unanswered or its answer
    /// was refused, and the tunnel waits, its listener kept, without asking again by itself
    /// (a loop of attempts would only lock the account): reconnecting it (the TUI's `R` on
    /// it, `warren reconnect NAME`, `warren up NAME`) asks once more.
    NeedsYou {
        what: String,
        asking: bool,
    },
}

impl TunnelState {
    /// Up or on its way there: closing it means something.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            TunnelState::Up
                | TunnelState::Connecting
                | TunnelState::Reconnecting { .. }
                | TunnelState::OnDemand { .. }
                | TunnelState::NeedsYou { .. }
        )
    }

    /// Waiting for a person who was asked and did not answer: reconnecting asks again.
    pub fn waits_for_person(&self) -> bool {
        matches!(self, TunnelState::NeedsYou { asking: false, .. })
    }

    /// A client that connects now is served: up, or listening on demand (which opens the
    /// session for it).
    pub fn serves(&self) -> bool {
        matches!(self, TunnelState::Up | TunnelState::OnDemand { .. })
    }

    /// The audit log's record of reaching this state, for the states it records (up, and
    /// each way of ending).
    pub fn audit(&self) -> Option<crate::audit::Kind> {
        use crate::audit::{Closed, Kind};
        let why = match self {
            TunnelState::Up => return Some(Kind::Up),
            // On demand, the session's comings and goings are recorded by the actor.
            TunnelState::Connecting
            | TunnelState::Reconnecting { .. }
            | TunnelState::OnDemand { .. }
            | TunnelState::NeedsYou { .. } => return None,
            TunnelState::Down => Closed::Asked,
            TunnelState::Failed { error } => Closed::Failed {
                error: error.clone(),
            },
            TunnelState::Expired { reason } => Closed::Limit {
                reason: reason.clone(),
            },
        };
        Some(Kind::Closed { why })
    }

    /// Up, listening on demand, failed, or waiting for a person: an open request is answered.
    pub fn settled(&self) -> bool {
        matches!(
            self,
            TunnelState::Up
                | TunnelState::Failed { .. }
                | TunnelState::OnDemand { .. }
                | TunnelState::NeedsYou { asking: false, .. }
        )
    }
}

impl std::fmt::Display for TunnelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelState::Up => f.write_str("up"),
            TunnelState::Down => f.write_str("down"),
            TunnelState::Connecting => f.write_str("connecting"),
            TunnelState::Reconnecting { in_secs, attempt } => {
                write!(f, "reconnecting in {in_secs:.1}s (attempt {attempt})")
            }
            TunnelState::Failed { error } => write!(f, "failed: {error}"),
            TunnelState::Expired { reason } => write!(f, "closed: {reason}"),
            TunnelState::OnDemand { error: None } => {
                f.write_str("on demand (the first client connection opens the session)")
            }
            TunnelState::OnDemand { error: Some(e) } => {
                write!(f, "on demand (the last attempt to open it failed: {e})")
            }
            TunnelState::NeedsYou { what, asking: true } => {
                write!(f, "needs you: answer {what} to reconnect")
            }
            TunnelState::NeedsYou {
                what,
                asking: false,
            } => write!(
                f,
                "needs you: reconnecting needs {what}; it waits: R in the TUI or warren reconnect asks again"
            ),
        }
    }
}

/// What the engine tells its clients.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// A forward's listener is bound (port 0 is reported as the port picked).
    Listening {
        name: String,
        local: String,
        target: String,
        via: String,
    },
    State {
        name: String,
        #[serde(flatten)]
        state: TunnelState,
    },
    Warning {
        name: String,
        message: String,
    },
    Error {
        name: String,
        message: String,
    },
    Stats {
        name: String,
        #[serde(flatten)]
        stats: TunnelStats,
    },
    /// A question for a person; answer with [`Command::Answer`] and the same id within
    /// `timeout_secs`.
    Prompt {
        id: u64,
        name: String,
        prompt: Prompt,
        timeout_secs: u64,
    },
    /// The question is no longer asked (answered elsewhere, timed out, or its tunnel failed
    /// or closed).
    PromptWithdrawn {
        id: u64,
        name: String,
    },
    /// A diagnostic step finished.
    Step {
        name: String,
        step: crate::diagnose::Step,
    },
    /// The diagnostics of a connection finished.
    Diagnosed {
        name: String,
        ok: bool,
    },
    /// A check of the database behind an open tunnel ended.
    Health {
        name: String,
        health: Health,
    },
}

impl Event {
    /// The tunnel (or connection) the event is about.
    pub fn name(&self) -> &str {
        match self {
            Event::Listening { name, .. }
            | Event::State { name, .. }
            | Event::Warning { name, .. }
            | Event::Error { name, .. }
            | Event::Stats { name, .. }
            | Event::Prompt { name, .. }
            | Event::PromptWithdrawn { name, .. }
            | Event::Step { name, .. }
            | Event::Diagnosed { name, .. }
            | Event::Health { name, .. } => name,
        }
    }
}

/// Who answers the engine's questions.
#[derive(Clone, Debug, Copy, PartialEq, Eq)]
pub enum Answering {
    /// Nobody: every question is answered "no" at once.
    Nobody,
    /// A client always answers (a TUI, a terminal).
    Client,
}

/// A handle on a running engine.
#[derive(Clone)]
pub struct Engine {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Arc<Event>>,
    prompter: Arc<Prompter>,
}

impl Engine {
    /// Starts a headless engine: every question is answered "no" (an unknown host key under
    /// `ask` is refused).
    pub fn start() -> Engine {
        Engine::start_with(false)
    }

    /// Starts the engine on the current tokio runtime; `interactive` when a client answers
    /// questions.
    pub fn start_with(interactive: bool) -> Engine {
        Engine::start_answering(move |_| interactive)
    }

    /// Starts the engine; `can_answer(connection)` says at the moment a question is asked
    /// whether anyone will answer it (the daemon: whether a client that answers is attached).
    pub fn start_answering(can_answer: impl Fn(&str) -> bool + Send + Sync + 'static) -> Engine {
        let (ctx, crx) = mpsc::channel(256);
        let (etx, _) = broadcast::channel(EVENT_BUFFER);
        let pe = etx.clone();
        let prompter = Arc::new(Prompter::with_answerer(can_answer, move |notice| {
            let _ = pe.send(Arc::new(match notice {
                Notice::Ask {
                    id,
                    connection,
                    prompt,
                    timeout,
                } => Event::Prompt {
                    id,
                    name: connection,
                    prompt,
                    timeout_secs: timeout.as_secs(),
                },
                Notice::Withdrawn { id, connection } => Event::PromptWithdrawn {
                    id,
                    name: connection,
                },
            }));
        }));
        tokio::spawn(actor::run(etx.clone(), Arc::clone(&prompter), crx));
        tokio::spawn(monitor::run(ctx.clone()));
        Engine {
            commands: ctx,
            events: etx,
            prompter,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    pub async fn send(&self, c: Command) {
        let _ = self.commands.send(c).await;
    }

    /// Opens a connection's tunnel and waits until it is up or has failed.
    pub async fn open(&self, conn: Connection) -> Option<TunnelStatus> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Open {
            conn: Box::new(conn),
            reply: Some(tx),
        })
        .await;
        rx.await.ok()
    }

    /// Closes tunnels (all when `names` is empty) and waits until they are.
    pub async fn close(&self, names: Vec<String>) {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Close {
            names,
            reply: Some(tx),
        })
        .await;
        let _ = rx.await;
    }

    pub async fn status(&self) -> Vec<TunnelStatus> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Delivers an answer; false if the question is no longer asked.
    pub fn answer(&self, id: u64, answer: Answer) -> bool {
        self.prompter.answer(id, answer)
    }

    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
