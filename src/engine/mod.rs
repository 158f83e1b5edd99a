//! The engine: owns SSH sessions and tunnels; takes commands, publishes events. The TUI and the
//! CLI are its two clients; it imports nothing of either.
//!
//! Sessions are keyed by their hop chain: tunnels with the same chain share one SSH connection,
//! and the last tunnel to close closes it. A session that drops is re-established with
//! exponential backoff (jittered, capped) while the tunnels' listeners stay bound, so clients
//! reconnect to the same local port.
//!
//! Events go out on a broadcast channel of [`EVENT_BUFFER`] entries: a client that falls that
//! far behind loses the oldest ones (it sees `Lagged`), and the engine never waits for it.

mod supervisor;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::forward::{Endpoint, ForwardKind};
use crate::config::model::{Connection, Hop};
use crate::prompt::{Answer, Notice, Prompt, Prompter};
use crate::ssh::client::{self};
use crate::tunnel::{self, Stats, Target};
use supervisor::{RemoteSpec, Supervisor};

pub const EVENT_BUFFER: usize = 4096;

/// What a client asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Open every forward of a connection.
    Open(Box<Connection>),
    /// Close a connection's tunnels.
    Close(String),
    /// Close everything and stop; answered when done.
    Shutdown(oneshot::Sender<()>),
    /// The answer to a prompt.
    Answer { id: u64, answer: Answer },
    /// Run the diagnostics of a connection; steps arrive as [`Event::Step`], then
    /// [`Event::Diagnosed`].
    Diagnose(Box<Connection>),
    /// The state, counters and log of every open tunnel.
    Snapshot(oneshot::Sender<Vec<TunnelSnapshot>>),
}

/// One open tunnel, as a client shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TunnelSnapshot {
    pub name: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub active: u64,
    pub total: u64,
    pub reconnects: u64,
    pub uptime_secs: Option<f64>,
    pub last_error: Option<String>,
    pub log: Vec<String>,
}

/// The state of a tunnel.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TunnelState {
    Down,
    Connecting,
    Up,
    Reconnecting { in_secs: f64, attempt: u32 },
    Failed { error: String },
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
        }
    }
}

/// What the engine tells its clients.
#[derive(Clone, Debug, Serialize)]
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
        bytes_in: u64,
        bytes_out: u64,
        active: u64,
        total: u64,
        reconnects: u64,
        uptime_secs: Option<f64>,
        last_error: Option<String>,
    },
    /// A question for the client; answer with [`Command::Answer`] and the same id within
    /// `timeout_secs`.
    Prompt {
        id: u64,
        name: String,
        prompt: Prompt,
        timeout_secs: u64,
    },
    /// The question is no longer asked (timed out, or its tunnel failed or closed).
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
}

/// A handle on a running engine.
#[derive(Clone)]
pub struct Engine {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
}

impl Engine {
    /// Starts a headless engine: every prompt is answered "no" (an unknown host key under
    /// strict checking is refused).
    pub fn start() -> Engine {
        Engine::start_with(false)
    }

    /// Starts the engine on the current tokio runtime; `interactive` when the client answers
    /// prompts.
    pub fn start_with(interactive: bool) -> Engine {
        let (ctx, crx) = mpsc::channel(256);
        let (etx, _) = broadcast::channel(EVENT_BUFFER);
        let pe = etx.clone();
        let prompter = Arc::new(Prompter::new(interactive, move |notice| {
            let _ = pe.send(match notice {
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
            });
        }));
        let actor = Actor {
            events: etx.clone(),
            sessions: HashMap::new(),
            tunnels: HashMap::new(),
            prompter,
        };
        tokio::spawn(actor.run(crx));
        Engine {
            commands: ctx,
            events: etx,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub async fn send(&self, c: Command) {
        let _ = self.commands.send(c).await;
    }

    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// One shared SSH connection and the tunnels on it.
struct Session {
    current: watch::Receiver<Option<Arc<russh::client::Handle<client::Client>>>>,
    members: Members,
    stop: CancellationToken,
}

/// The tunnels riding one session: its events are theirs.
type Members = Arc<std::sync::Mutex<Vec<(String, Arc<Stats>)>>>;

struct Tunnel {
    chain: String,
    stop: CancellationToken,
    stats: Arc<Stats>,
}

struct Actor {
    events: broadcast::Sender<Event>,
    sessions: HashMap<String, Session>,
    tunnels: HashMap<String, Tunnel>,
    prompter: Arc<Prompter>,
}

/// Tunnels with equal keys share a connection: every hop must agree on everything that
/// decides trust and identity (see [`Hop::trust_key`]), not only on user, host and port.
fn chain_key(hops: &[Hop]) -> String {
    hops.iter()
        .map(Hop::trust_key)
        .collect::<Vec<_>>()
        .join(" -> ")
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(c) = commands.recv().await {
            match c {
                Command::Open(conn) => self.open(*conn).await,
                Command::Close(name) => self.close(&name),
                Command::Answer { id, answer } => {
                    self.prompter.answer(id, answer);
                }
                Command::Diagnose(conn) => {
                    // A walk runs on its own: it never holds up the engine.
                    let events = self.events.clone();
                    let open = self.tunnels.contains_key(&conn.display_name);
                    // A walk in a client's pane asks nobody: it reports what a question
                    // would be about (warren doctor on a terminal asks).
                    let prompter = Arc::new(Prompter::headless());
                    tokio::spawn(async move {
                        let name = conn.display_name.clone();
                        let mut send = |s: &crate::diagnose::Step| {
                            let _ = events.send(Event::Step {
                                name: name.clone(),
                                step: s.clone(),
                            });
                        };
                        let report = crate::diagnose::run(&conn, open, &prompter, &mut send).await;
                        let _ = events.send(Event::Diagnosed {
                            name: conn.display_name.clone(),
                            ok: report.ok,
                        });
                    });
                }
                Command::Snapshot(reply) => {
                    let mut list: Vec<TunnelSnapshot> = self
                        .tunnels
                        .iter()
                        .map(|(n, t)| snapshot(n, &t.stats))
                        .collect();
                    list.sort_by(|a, b| a.name.cmp(&b.name));
                    let _ = reply.send(list);
                }
                Command::Shutdown(done) => {
                    let names: Vec<String> = self.tunnels.keys().cloned().collect();
                    for n in names {
                        self.close(&n);
                    }
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    async fn open(&mut self, conn: Connection) {
        let name = conn.display_name.clone();
        if self.tunnels.contains_key(&name) {
            return;
        }
        let via = conn
            .hops
            .iter()
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
            .join(" -> ");
        // Bind every listener first: a port in use is an error for this tunnel only.
        let mut listeners = Vec::new();
        let mut remote: Vec<RemoteSpec> = Vec::new();
        for f in &conn.forwards {
            let f = &f.value;
            let (target, shown) = match (f.kind, &f.connect) {
                (
                    ForwardKind::Local,
                    Some(Endpoint::Tcp {
                        host: Some(th),
                        port: tp,
                    }),
                ) => (
                    Target::Fixed {
                        host: th.clone(),
                        port: *tp,
                    },
                    Endpoint::tcp(th.clone(), *tp).to_string(),
                ),
                (ForwardKind::Dynamic, _) => (
                    Target::Socks,
                    "SOCKS (any host the client asks for)".to_string(),
                ),
                (ForwardKind::Local, _) => {
                    self.emit(Event::Error {
                        name: name.clone(),
                        message: "forwards to unix sockets are not supported yet; skipped".into(),
                    });
                    continue;
                }
                (
                    ForwardKind::Remote,
                    Some(Endpoint::Tcp {
                        host: Some(th),
                        port: tp,
                    }),
                ) => {
                    let (bind, port) = match &f.listen {
                        Endpoint::Tcp { host, port } => (
                            host.clone()
                                .filter(|h| !h.is_empty())
                                .unwrap_or_else(|| "localhost".into()),
                            *port,
                        ),
                        Endpoint::Unix(_) => {
                            self.emit(Event::Error {
                                name: name.clone(),
                                message:
                                    "remote forwards on unix sockets are not supported yet; skipped"
                                        .into(),
                            });
                            continue;
                        }
                    };
                    remote.push(RemoteSpec {
                        bind,
                        port,
                        target: (th.clone(), *tp),
                    });
                    continue;
                }
                (ForwardKind::Remote, _) => {
                    self.emit(Event::Error { name: name.clone(), message: "remote forwards to unix sockets or SOCKS are not supported yet; skipped".into() });
                    continue;
                }
            };
            match tunnel::bind(&f.listen).await {
                Ok((l, local)) => {
                    self.emit(Event::Listening {
                        name: name.clone(),
                        local,
                        target: shown,
                        via: via.clone(),
                    });
                    listeners.push((l, target));
                }
                Err(e) => self.emit(Event::Error {
                    name: name.clone(),
                    message: format!("cannot listen on {}: {e}", f.listen.local_text()),
                }),
            }
        }
        if listeners.is_empty() && remote.is_empty() {
            self.emit(Event::State {
                name: name.clone(),
                state: TunnelState::Failed {
                    error: "no forward could be opened".into(),
                },
            });
            return;
        }
        // A tunnel with remote forwards keeps its own session: its requests follow it.
        let key = if remote.is_empty() {
            chain_key(&conn.hops)
        } else {
            format!("{}#{name}", chain_key(&conn.hops))
        };
        let stop = CancellationToken::new();
        let stats = Arc::new(Stats::default());
        let session = match self.sessions.get_mut(&key) {
            Some(s) => {
                if let Ok(mut m) = s.members.lock() {
                    m.push((name.clone(), Arc::clone(&stats)));
                }
                if s.current.borrow().is_some()
                    && let Ok(mut u) = stats.up_since.lock()
                {
                    *u = Some(std::time::Instant::now());
                }
                s.current.clone()
            }
            None => {
                let (tx, rx) = watch::channel(None);
                let sstop = CancellationToken::new();
                let members: Members = Arc::new(std::sync::Mutex::new(vec![(
                    name.clone(),
                    Arc::clone(&stats),
                )]));
                let sup = Supervisor {
                    hops: conn.hops.clone(),
                    policy: conn.policy.clone(),
                    label: name.clone(),
                    current: tx,
                    events: self.events.clone(),
                    members: Arc::clone(&members),
                    prompter: Arc::clone(&self.prompter),
                    reverse: (!remote.is_empty())
                        .then(|| Arc::new(tunnel::Reverse::new(Arc::clone(&stats), stop.clone()))),
                    remote: remote.clone(),
                };
                tokio::spawn(sup.run(sstop.clone()));
                self.sessions.insert(
                    key.clone(),
                    Session {
                        current: rx.clone(),
                        members,
                        stop: sstop,
                    },
                );
                rx
            }
        };
        if session.borrow().is_some() {
            self.emit(Event::State {
                name: name.clone(),
                state: TunnelState::Up,
            });
        }
        let timeout = conn
            .hops
            .last()
            .map(|h| h.connect_timeout.value.0)
            .unwrap_or(Duration::from_secs(15));
        for (l, target) in listeners {
            let (s, st, sd) = (session.clone(), Arc::clone(&stats), stop.clone());
            tokio::spawn(tunnel::serve(l, s, target, st, timeout, sd));
        }
        tokio::spawn(report_stats(
            name.clone(),
            Arc::clone(&stats),
            self.events.clone(),
            stop.clone(),
        ));
        self.tunnels.insert(
            name,
            Tunnel {
                chain: key,
                stop,
                stats,
            },
        );
    }

    fn close(&mut self, name: &str) {
        // Its questions go with it: a late answer must not record a host key.
        self.prompter.withdraw_all(name);
        let Some(t) = self.tunnels.remove(name) else {
            return;
        };
        t.stop.cancel();
        if let Some(s) = self.sessions.get_mut(&t.chain) {
            let left = s
                .members
                .lock()
                .map(|mut m| {
                    m.retain(|(n, _)| n != name);
                    m.len()
                })
                .unwrap_or(0);
            if left == 0 {
                s.stop.cancel();
                self.sessions.remove(&t.chain);
            }
        }
        self.emit(Event::State {
            name: name.to_string(),
            state: TunnelState::Down,
        });
    }
}

async fn report_stats(
    name: String,
    stats: Arc<Stats>,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let _ = events.send(Event::Stats {
            name: name.clone(),
            bytes_in: stats.bytes_in.load(Ordering::Relaxed),
            bytes_out: stats.bytes_out.load(Ordering::Relaxed),
            active: stats.active.load(Ordering::Relaxed),
            total: stats.total.load(Ordering::Relaxed),
            reconnects: stats.reconnects.load(Ordering::Relaxed),
            uptime_secs: stats.uptime().map(|d| d.as_secs_f64()),
            last_error: stats.last_error.lock().ok().and_then(|e| e.clone()),
        });
    }
}

fn snapshot(name: &str, s: &Stats) -> TunnelSnapshot {
    TunnelSnapshot {
        name: name.to_string(),
        bytes_in: s.bytes_in.load(Ordering::Relaxed),
        bytes_out: s.bytes_out.load(Ordering::Relaxed),
        active: s.active.load(Ordering::Relaxed),
        total: s.total.load(Ordering::Relaxed),
        reconnects: s.reconnects.load(Ordering::Relaxed),
        uptime_secs: s.uptime().map(|d| d.as_secs_f64()),
        last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
        log: s
            .log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default(),
    }
}
