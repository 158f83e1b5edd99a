//! The actor: the one task that owns every tunnel and session. Commands come from clients,
//! reports from the sessions' supervisors; both change state only here, so a tunnel's state,
//! its listeners and its session never disagree.
//!
//! Lifecycle of a tunnel (its state is the state of the session under it):
//! - open: bind every listener (a port in use fails this tunnel only, or all of it under
//!   ExitOnForwardFailure), join a session with an equal trust key or start one;
//! - up / reconnecting: reported by the session's supervisor;
//! - failed (final): listeners closed (unix socket files removed), the session dropped when
//!   no other tunnel uses it; the tunnel stays listed as failed until opened again, which
//!   starts it afresh;
//! - close: the same, then it is gone (down).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::health::{self, Checker};
use super::supervisor::{Kick, RemoteSpec, Report, Supervisor};
use super::{Command, Event, TunnelState, TunnelStatus};
use crate::config::forward::{Endpoint, ForwardKind};
use crate::config::model::{Connection, DbKind, Hop};
use crate::prompt::Prompter;
use crate::ssh::client;
use crate::tunnel::{self, Stats, Target};

pub(super) type Current = watch::Receiver<Option<Arc<russh::client::Handle<client::Client>>>>;

/// One SSH connection and the tunnels on it.
struct Session {
    id: u64,
    current: Current,
    members: Vec<String>,
    stop: CancellationToken,
    kicks: mpsc::UnboundedSender<Kick>,
    state: TunnelState,
    /// On demand: what its tunnels' listeners share with its supervisor.
    demand: Option<Arc<tunnel::Demand>>,
}

struct Tunnel {
    /// The session key while it has one (none once failed).
    session: Option<Arc<str>>,
    /// Stops its listeners and its stats reports.
    stop: CancellationToken,
    tasks: TaskTracker,
    stats: Arc<Stats>,
    state: TunnelState,
    local: Vec<String>,
    target: String,
    via: String,
    /// The connection's tags (for the daemon's metrics).
    tags: Vec<String>,
    /// Open requests waiting for it to be up or failed.
    waiters: Vec<oneshot::Sender<TunnelStatus>>,
    /// When its max_duration closes it (pushed back by Extend).
    deadline: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    max_duration: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// Its session opens for a client and closes when idle (`idle_timeout`).
    on_demand: bool,
    /// When it last started connecting (on demand: what `open_secs` is timed from).
    connecting_since: Option<std::time::Instant>,
    /// Since when no client connection has been open (for idle_timeout).
    idle_since: Option<tokio::time::Instant>,
    /// The checks of the database behind it.
    health: health::History,
    /// The certificate files its hops' certificate_commands keep fresh.
    certificates: Vec<std::path::PathBuf>,
}

struct Actor {
    events: broadcast::Sender<Arc<Event>>,
    prompter: Arc<Prompter>,
    /// By trust key: a long string (every hop's trust settings), held once and shared by
    /// its tunnels.
    sessions: HashMap<Arc<str>, Session>,
    tunnels: HashMap<String, Tunnel>,
    reports: mpsc::UnboundedSender<Report>,
    next_session: u64,
}

/// How long an on-demand session stays with no client connection when the entry sets no
/// `idle_timeout`.
pub const DEFAULT_DEMAND_IDLE: Duration = Duration::from_secs(600);

fn t_on_demand(tunnels: &HashMap<String, Tunnel>, name: &str) -> bool {
    tunnels.get(name).is_some_and(|t| t.on_demand)
}

/// Tunnels with equal keys share a connection: every hop must agree on everything that
/// decides trust and identity (see [`Hop::trust_key`]), not only on user, host and port.
fn chain_key(hops: &[Hop]) -> String {
    hops.iter()
        .map(Hop::trust_key)
        .collect::<Vec<_>>()
        .join(" -> ")
}

pub(super) async fn run(
    events: broadcast::Sender<Arc<Event>>,
    prompter: Arc<Prompter>,
    mut commands: mpsc::Receiver<Command>,
) {
    let (rtx, mut rrx) = mpsc::unbounded_channel();
    let mut a = Actor {
        events,
        prompter,
        sessions: HashMap::new(),
        tunnels: HashMap::new(),
        reports: rtx,
        next_session: 1,
    };
    // One clock for every tunnel's counters and limits (not a task and a timer each).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => a.tick().await,
            c = commands.recv() => match c {
                Some(Command::Shutdown(done)) => {
                    let all: Vec<String> = a.tunnels.keys().cloned().collect();
                    a.close(&all).await;
                    let _ = done.send(());
                    return;
                }
                Some(c) => a.command(c).await,
                None => {
                    let all: Vec<String> = a.tunnels.keys().cloned().collect();
                    a.close(&all).await;
                    return;
                }
            },
            Some(r) = rrx.recv() => a.report(r),
        }
    }
}

/// How often each open tunnel's counters go out and its limits are checked.
const TICK: Duration = Duration::from_secs(1);

impl Actor {
    /// Once a second: every open tunnel's counters to the clients, and the tunnels whose
    /// time limit or idle_timeout was reached closed (listed as expired).
    async fn tick(&mut self) {
        let now = tokio::time::Instant::now();
        let mut expired = Vec::new();
        for (name, t) in self.tunnels.iter_mut() {
            if t.stop.is_cancelled() {
                continue;
            }
            let mut snap = t.stats.snapshot();
            snap.expires_in_secs = left(&t.deadline);
            snap.certificate_expires_in_secs = soonest(&t.certificates);
            if let Some(d) = t.deadline.lock().ok().and_then(|d| *d)
                && now >= d
            {
                expired.push((
                    name.clone(),
                    format!(
                        "its time limit ({}) was reached",
                        t.max_duration.map(span).unwrap_or_default()
                    ),
                ));
            }
            // On demand, idleness closes the session (its supervisor does), not the tunnel.
            if let Some(limit) = t.idle_timeout.filter(|_| !t.on_demand) {
                if snap.active > 0 {
                    t.idle_since = None;
                } else {
                    let since = *t.idle_since.get_or_insert(now);
                    if now.duration_since(since) >= limit {
                        expired.push((
                            name.clone(),
                            format!("no client connection for {} (idle_timeout)", span(limit)),
                        ));
                    }
                }
            }
            let _ = self.events.send(Arc::new(Event::Stats {
                name: name.clone(),
                stats: snap,
            }));
        }
        for (name, reason) in expired {
            self.command(Command::Expire { name, reason }).await;
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(Arc::new(e));
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::Open { conn, reply } => self.open(*conn, reply).await,
            Command::Close { names, reply } => {
                let names = if names.is_empty() {
                    self.tunnels.keys().cloned().collect()
                } else {
                    names
                };
                self.close(&names).await;
                if let Some(r) = reply {
                    let _ = r.send(());
                }
            }
            Command::Reconnect { names } => {
                tracing::info!(
                    "reconnect asked for {}",
                    if names.is_empty() {
                        "every tunnel".to_string()
                    } else {
                        names.join(", ")
                    }
                );
                self.kick(&names, Kick::Now)
            }
            Command::Recheck { why } => {
                tracing::info!("re-checking every session: {why}");
                for t in self.tunnels.values().filter(|t| t.session.is_some()) {
                    t.stats.log(format!("re-checking the session: {why}"));
                }
                self.kick(&[], Kick::Check);
            }
            Command::Expire { name, reason } => {
                if self.tunnels.get(&name).is_some_and(|t| t.state.is_open()) {
                    tracing::info!(tunnel = %name, "closing: {reason}");
                    self.prompter.withdraw_all(&name);
                    self.release(&name).await;
                    self.set_state(&name, TunnelState::Expired { reason });
                }
            }
            Command::Extend { name, secs } => {
                if let Some(t) = self.tunnels.get(&name) {
                    let by = secs.map(Duration::from_secs).or(t.max_duration);
                    if let (Some(by), Ok(mut d)) = (by, t.deadline.lock()) {
                        let base = d.unwrap_or_else(tokio::time::Instant::now);
                        *d = Some(base + by);
                        t.stats
                            .log(format!("time limit extended by {}s", by.as_secs()));
                        tracing::info!(tunnel = %name, "time limit extended by {}s", by.as_secs());
                    }
                }
            }
            Command::Answer { id, answer } => {
                self.prompter.answer(id, answer);
            }
            Command::Diagnose(conn) => self.diagnose(*conn),
            Command::Status(reply) => {
                let mut list: Vec<TunnelStatus> =
                    self.tunnels.keys().map(|n| self.status(n)).collect();
                list.sort_by(|a, b| a.name.cmp(&b.name));
                let _ = reply.send(list);
            }
            Command::Shutdown(_) => {}
        }
    }

    /// The sessions of these tunnels (all when empty) act at once.
    fn kick(&self, names: &[String], kick: Kick) {
        let keys: Vec<&Arc<str>> = if names.is_empty() {
            self.sessions.keys().collect()
        } else {
            names
                .iter()
                .filter_map(|n| self.tunnels.get(n).and_then(|t| t.session.as_ref()))
                .collect()
        };
        for k in keys {
            if let Some(s) = self.sessions.get(k) {
                let _ = s.kicks.send(kick);
            }
        }
    }

    fn diagnose(&self, conn: Connection) {
        // A walk runs on its own and asks nobody: it reports what a question would be about
        // (warren doctor on a terminal asks).
        let events = self.events.clone();
        let open = self.tunnels.contains_key(&conn.display_name);
        let prompter = Arc::new(Prompter::for_walk());
        tokio::spawn(async move {
            let name = conn.display_name.clone();
            let mut send = |s: &crate::diagnose::Step| {
                let _ = events.send(Arc::new(Event::Step {
                    name: name.clone(),
                    step: s.clone(),
                }));
            };
            let report = crate::diagnose::run(&conn, open, &prompter, &mut send).await;
            let _ = events.send(Arc::new(Event::Diagnosed {
                name: conn.display_name.clone(),
                ok: report.ok,
            }));
        });
    }

    fn status(&self, name: &str) -> TunnelStatus {
        let t = &self.tunnels[name];
        let mut stats = t.stats.snapshot();
        stats.expires_in_secs = left(&t.deadline).filter(|_| t.state.is_open());
        stats.certificate_expires_in_secs = soonest(&t.certificates);
        TunnelStatus {
            name: name.to_string(),
            state: t.state.clone(),
            local: t.local.clone(),
            target: t.target.clone(),
            via: t.via.clone(),
            tags: t.tags.clone(),
            stats,
            idle_timeout_secs: t.idle_timeout.map(|d| d.as_secs_f64()),
            on_demand: t.on_demand,
            log: t.stats.log_lines(),
            health: t
                .health
                .lock()
                .ok()
                .and_then(|h| h.back().cloned())
                .filter(|_| t.state.is_open()),
            health_history: t
                .health
                .lock()
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Sets a tunnel's state, tells the clients, answers its waiters once settled.
    fn set_state(&mut self, name: &str, state: TunnelState) {
        let Some(t) = self.tunnels.get_mut(name) else {
            return;
        };
        t.stats.log(state.to_string());
        match &state {
            TunnelState::Failed { .. } => tracing::warn!(tunnel = %name, "{state}"),
            _ => tracing::info!(tunnel = %name, "{state}"),
        }
        if let Ok(mut u) = t.stats.up_since.lock() {
            *u = (state == TunnelState::Up).then(std::time::Instant::now);
        }
        if state == TunnelState::Connecting {
            t.connecting_since = Some(std::time::Instant::now());
        }
        if state == TunnelState::Up
            && let Ok(mut o) = t.stats.open_secs.lock()
        {
            // On demand, each opening of the session is timed (from its first client).
            match t.connecting_since.take().filter(|_| t.on_demand) {
                Some(since) => *o = Some(since.elapsed().as_secs_f64()),
                None => {
                    o.get_or_insert_with(|| t.stats.opened.0.elapsed().as_secs_f64());
                }
            }
        }
        // On demand: the session closed, or could not be opened; the listeners stay.
        let closed = match (&t.state, &state) {
            (TunnelState::Up, TunnelState::OnDemand { error: None }) => Some(
                "the session closed (idle, or lost); the next client connection opens it again"
                    .to_string(),
            ),
            (TunnelState::Connecting, TunnelState::OnDemand { error: Some(e) }) => {
                Some(format!("the session could not be opened: {e}"))
            }
            _ => None,
        };
        if t.on_demand
            && let Some(reason) = closed
        {
            crate::audit::record(name, crate::audit::Kind::SessionClosed { reason });
        }
        // A tunnel that had already ended (failed, expired) and is now removed is no news.
        if t.state.is_open()
            && let Some(k) = state.audit()
        {
            crate::audit::record(name, k);
        }
        t.state = state.clone();
        let settled = state.settled();
        self.emit(Event::State {
            name: name.to_string(),
            state,
        });
        if settled {
            let waiters = self
                .tunnels
                .get_mut(name)
                .map(|t| std::mem::take(&mut t.waiters))
                .unwrap_or_default();
            if !waiters.is_empty() {
                let status = self.status(name);
                for w in waiters {
                    let _ = w.send(status.clone());
                }
            }
        }
    }

    /// Fails a tunnel for good: its listeners and session go, it stays listed as failed.
    async fn fail(&mut self, name: &str, error: String) {
        self.prompter.withdraw_all(name);
        self.release(name).await;
        if let Some(t) = self.tunnels.get_mut(name)
            && let Ok(mut e) = t.stats.last_error.lock()
        {
            *e = Some(error.clone());
        }
        self.set_state(name, TunnelState::Failed { error });
    }

    /// Stops a tunnel's listeners (waiting for them, so its ports and socket files are free
    /// again) and leaves its session (which stops when nobody is left on it).
    async fn release(&mut self, name: &str) {
        let Some(t) = self.tunnels.get_mut(name) else {
            return;
        };
        t.stop.cancel();
        t.tasks.close();
        let tasks = t.tasks.clone();
        let key = t.session.take();
        t.local.clear();
        let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
        if let Some(key) = key
            && let Some(s) = self.sessions.get_mut(&key)
        {
            s.members.retain(|m| m != name);
            if s.members.is_empty() {
                s.stop.cancel();
                self.sessions.remove(&key);
            }
        }
    }

    async fn close(&mut self, names: &[String]) {
        for name in names {
            // Its questions go with it: a late answer must not record a host key.
            self.prompter.withdraw_all(name);
            if !self.tunnels.contains_key(name) {
                continue;
            }
            self.release(name).await;
            self.set_state(name, TunnelState::Down);
            if let Some(t) = self.tunnels.remove(name) {
                // Open requests still waiting learn that it was closed.
                for w in t.waiters {
                    let _ = w.send(TunnelStatus {
                        name: name.clone(),
                        state: TunnelState::Down,
                        local: Vec::new(),
                        target: t.target.clone(),
                        via: t.via.clone(),
                        tags: t.tags.clone(),
                        stats: t.stats.snapshot(),
                        idle_timeout_secs: None,
                        on_demand: t.on_demand,
                        log: t.stats.log_lines(),
                        health: None,
                        health_history: Vec::new(),
                    });
                }
            }
        }
    }

    fn report(&mut self, r: Report) {
        let session = match &r {
            Report::State { session, .. }
            | Report::Error { session, .. }
            | Report::Warning { session, .. }
            | Report::Listening { session, .. } => *session,
        };
        // A report from a session already gone (replaced, stopped) is dropped.
        let Some((key, s)) = self.sessions.iter_mut().find(|(_, s)| s.id == session) else {
            return;
        };
        let key = key.clone();
        let members = s.members.clone();
        match r {
            Report::State {
                state, reconnected, ..
            } => {
                s.state = state.clone();
                for m in &members {
                    if reconnected && let Some(t) = self.tunnels.get(m) {
                        t.stats
                            .reconnects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                if let TunnelState::Failed { error } = state {
                    // Final: every tunnel on the session fails with it, and lets go of
                    // everything it holds. Done in a task that reports back, as the actor
                    // must not wait here for listeners to stop.
                    if let Some(s) = self.sessions.remove(&key) {
                        s.stop.cancel();
                    }
                    for m in &members {
                        if let Some(t) = self.tunnels.get_mut(m) {
                            t.session = None;
                            t.stop.cancel();
                            t.tasks.close();
                            t.local.clear();
                            if let Ok(mut e) = t.stats.last_error.lock() {
                                *e = Some(error.clone());
                            }
                        }
                        self.prompter.withdraw_all(m);
                        self.set_state(
                            m,
                            TunnelState::Failed {
                                error: error.clone(),
                            },
                        );
                    }
                } else {
                    for m in &members {
                        self.set_state(m, state.clone());
                    }
                }
            }
            Report::Error { message, .. } => {
                for m in &members {
                    tracing::warn!(tunnel = %m, "error: {message}");
                    if let Some(t) = self.tunnels.get(m) {
                        t.stats.log(format!("error: {message}"));
                        if let Ok(mut e) = t.stats.last_error.lock() {
                            *e = Some(message.clone());
                        }
                    }
                    self.emit(Event::Error {
                        name: m.clone(),
                        message: message.clone(),
                    });
                }
            }
            Report::Warning { message, .. } => {
                for m in &members {
                    tracing::warn!(tunnel = %m, "{message}");
                    if let Some(t) = self.tunnels.get(m) {
                        t.stats.log(format!("warning: {message}"));
                    }
                    self.emit(Event::Warning {
                        name: m.clone(),
                        message: message.clone(),
                    });
                }
            }
            Report::Listening { local, target, .. } => {
                for m in &members {
                    let Some(t) = self.tunnels.get_mut(m) else {
                        continue;
                    };
                    if !t.local.contains(&local) {
                        t.local.push(local.clone());
                    }
                    let via = t.via.clone();
                    self.emit(Event::Listening {
                        name: m.clone(),
                        local: local.clone(),
                        target: target.clone(),
                        via,
                    });
                }
            }
        }
    }

    async fn open(&mut self, conn: Connection, reply: Option<oneshot::Sender<TunnelStatus>>) {
        let name = conn.display_name.clone();
        if let Some(t) = self.tunnels.get_mut(&name) {
            if t.state.waits_for_person() {
                // Waiting for the answer nobody gave: asking to open it is asking again.
                t.waiters.extend(reply);
                self.kick(std::slice::from_ref(&name), Kick::Now);
                return;
            }
            if t.state.is_open() {
                // Already open, or on its way: answered when it settles.
                if let Some(r) = reply {
                    if t.state.settled() {
                        let status = self.status(&name);
                        let _ = r.send(status);
                    } else {
                        t.waiters.push(r);
                    }
                }
                return;
            }
            // Failed (or down): start afresh.
            self.release(&name).await;
            self.tunnels.remove(&name);
        }
        let via = conn
            .hops
            .iter()
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
            .join(" -> ");
        let stats = Arc::new(Stats::named(&name));
        let stop = CancellationToken::new();
        let mut t = Tunnel {
            session: None,
            stop: stop.clone(),
            tasks: TaskTracker::new(),
            stats: Arc::clone(&stats),
            state: TunnelState::Connecting,
            local: Vec::new(),
            target: conn.target().unwrap_or_default(),
            via: via.clone(),
            tags: conn.tags.iter().map(|t| t.value.clone()).collect(),
            waiters: reply.into_iter().collect(),
            deadline: Arc::new(std::sync::Mutex::new(
                conn.policy
                    .max_duration
                    .as_ref()
                    .map(|d| tokio::time::Instant::now() + d.value.0),
            )),
            max_duration: conn.policy.max_duration.as_ref().map(|d| d.value.0),
            idle_timeout: conn.policy.idle_timeout.as_ref().map(|d| d.value.0),
            on_demand: conn.policy.on_demand(),
            connecting_since: None,
            idle_since: None,
            health: health::History::default(),
            certificates: conn
                .hops
                .iter()
                .filter_map(crate::ssh::certificate::cert_path)
                .collect(),
        };
        if let Some(why) = conn.refusal() {
            // An untrusted file's entry: nothing of it runs, nothing is bound.
            self.tunnels.insert(name.clone(), t);
            self.fail(&name, why).await;
            return;
        }
        let (listeners, remote, failure) = self.bind(&conn, &mut t).await;
        self.tunnels.insert(name.clone(), t);
        if let Some(error) = failure {
            drop(listeners);
            self.fail(&name, error).await;
            return;
        }
        if t_on_demand(&self.tunnels, &name) && !remote.is_empty() {
            // The bastion listens for a remote forward only while a session holds it.
            let message =
                "on_demand does not apply to remote forwards: the session stays open".to_string();
            if let Some(t) = self.tunnels.get_mut(&name) {
                t.on_demand = false;
                t.stats.log(format!("warning: {message}"));
            }
            self.emit(Event::Warning {
                name: name.clone(),
                message,
            });
        }
        let on_demand = t_on_demand(&self.tunnels, &name);
        let idle = self
            .tunnels
            .get(&name)
            .and_then(|t| t.idle_timeout)
            .unwrap_or(DEFAULT_DEMAND_IDLE);
        // A tunnel with remote forwards keeps its own session: its requests follow it. An
        // on-demand session is shared only by on-demand tunnels that agree on its idle time.
        let key = if !remote.is_empty() {
            format!("{}#{name}", chain_key(&conn.hops))
        } else if on_demand {
            format!("{}#on-demand {}", chain_key(&conn.hops), idle.as_secs_f64())
        } else {
            chain_key(&conn.hops)
        };
        let key: Arc<str> = match self.sessions.get_key_value(key.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(key),
        };
        let (current, demand) = match self.sessions.get_mut(&key) {
            Some(s) => {
                s.members.push(name.clone());
                let state = s.state.clone();
                let current = s.current.clone();
                let demand = s.demand.clone();
                if let Some(t) = self.tunnels.get_mut(&name) {
                    t.session = Some(key.clone());
                }
                self.set_state(&name, state);
                (current, demand)
            }
            None => {
                let demand = on_demand.then(|| tunnel::Demand::new(idle));
                let (tx, rx) = watch::channel(None);
                let (ktx, krx) = mpsc::unbounded_channel();
                let id = self.next_session;
                self.next_session += 1;
                let sstop = CancellationToken::new();
                let sup = Supervisor {
                    id,
                    hops: conn.hops.clone(),
                    policy: conn.policy.clone(),
                    label: name.clone(),
                    current: tx,
                    reports: self.reports.clone(),
                    kicks: krx,
                    prompter: Arc::clone(&self.prompter),
                    reverse: (!remote.is_empty())
                        .then(|| Arc::new(tunnel::Reverse::new(Arc::clone(&stats), stop.clone()))),
                    remote,
                    demand: demand.clone(),
                };
                tokio::spawn(sup.run(sstop.clone()));
                self.sessions.insert(
                    key.clone(),
                    Session {
                        id,
                        current: rx.clone(),
                        members: vec![name.clone()],
                        stop: sstop,
                        kicks: ktx,
                        state: TunnelState::Connecting,
                        demand: demand.clone(),
                    },
                );
                if let Some(t) = self.tunnels.get_mut(&name) {
                    t.session = Some(key.clone());
                }
                (rx, demand)
            }
        };
        let on_demand = demand.map(|demand| tunnel::OnDemand {
            demand,
            refusal: match conn.database.as_ref().map(|d| d.kind()) {
                Some(DbKind::Postgres) => tunnel::Refusal::Postgres,
                Some(DbKind::Mysql) => tunnel::Refusal::Mysql,
                _ => tunnel::Refusal::Close,
            },
        });
        let timeout = conn
            .hops
            .last()
            .map(|h| h.connect_timeout.value.0)
            .unwrap_or(Duration::from_secs(15));
        let Some(t) = self.tunnels.get(&name) else {
            return;
        };
        for (l, target) in listeners {
            let (s, st, sd) = (current.clone(), Arc::clone(&stats), stop.clone());
            let od = on_demand.clone();
            t.tasks
                .spawn(tunnel::serve(l, s, target, st, timeout, sd, od));
        }
        if let Some(interval) = health::interval(&conn) {
            t.tasks.spawn(health::run(Checker {
                name: name.clone(),
                conn: Arc::new(conn),
                interval,
                current: current.clone(),
                events: self.events.clone(),
                stats: Arc::clone(&stats),
                history: Arc::clone(&t.health),
                stop: stop.clone(),
            }));
        }
    }

    /// Who holds a local port: a tunnel of this engine, another warren, or a program.
    fn holder(&self, port: u16) -> String {
        use tunnel::owner::Owner;
        match tunnel::owner::of_port(port) {
            Some(Owner::Process { pid, .. }) if pid == std::process::id() => self
                .tunnels
                .iter()
                .find(|(_, t)| t.local.iter().any(|l| l.ends_with(&format!(":{port}"))))
                .map(|(n, _)| format!("this warren's tunnel {n}"))
                .unwrap_or_else(|| "this warren".into()),
            Some(Owner::Process { pid, program }) if program == "warren" => {
                format!("another warren (pid {pid}; `warren status` lists the daemon's tunnels)")
            }
            Some(o @ Owner::OtherUser { .. }) => format!(
                "{} (`{}` shows which)",
                o.describe(),
                tunnel::owner::find_command(port)
            ),
            Some(o) => o.describe(),
            None => format!(
                "a process warren cannot see (`{}` shows it)",
                tunnel::owner::find_command(port)
            ),
        }
    }

    /// Binds every local listener of a connection and collects its remote forwards; a
    /// failure that ends the tunnel (ExitOnForwardFailure, or nothing left) is returned.
    async fn bind(
        &self,
        conn: &Connection,
        t: &mut Tunnel,
    ) -> (
        Vec<(tunnel::Listener, Target)>,
        Vec<RemoteSpec>,
        Option<String>,
    ) {
        let name = &conn.display_name;
        let strict = conn.policy.exit_on_forward_failure.value;
        let mut listeners = Vec::new();
        let mut remote: Vec<RemoteSpec> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for sourced in &conn.forwards {
            let f = &sourced.value;
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
                    problems.push("forwards to unix sockets are not supported yet".into());
                    continue;
                }
                (
                    ForwardKind::Remote,
                    Some(Endpoint::Tcp {
                        host: Some(th),
                        port: tp,
                    }),
                ) => {
                    match &f.listen {
                        Endpoint::Tcp { host, port } => remote.push(RemoteSpec {
                            bind: host
                                .clone()
                                .filter(|h| !h.is_empty())
                                .unwrap_or_else(|| "localhost".into()),
                            port: *port,
                            target: (th.clone(), *tp),
                        }),
                        Endpoint::Unix(_) => problems
                            .push("remote forwards on unix sockets are not supported yet".into()),
                    }
                    continue;
                }
                (ForwardKind::Remote, _) => {
                    problems.push(
                        "remote forwards to unix sockets or SOCKS are not supported yet".into(),
                    );
                    continue;
                }
            };
            let mut bound = tunnel::bind(&f.listen).await;
            if let (Err(e), Endpoint::Tcp { host, port }) = (&bound, &f.listen)
                && e.kind() == std::io::ErrorKind::AddrInUse
            {
                let who = self.holder(*port);
                let host = tunnel::bind_host(host.as_deref());
                let free = tunnel::owner::next_free(host, *port);
                match free.filter(|_| conn.policy.port_fallback) {
                    Some(p) => {
                        let message = format!(
                            "{} is in use by {who}: using {p} instead (--port-fallback)",
                            f.listen.local_text()
                        );
                        t.stats.log(format!("warning: {message}"));
                        self.emit(Event::Warning {
                            name: name.clone(),
                            message,
                        });
                        bound = tunnel::bind(&Endpoint::tcp(host, p)).await;
                    }
                    None => {
                        bound = Err(std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            tunnel::owner::busy_message(&who, free),
                        ));
                    }
                }
            }
            match bound {
                Ok((l, local)) => {
                    if let Ok(addr) = local.parse::<std::net::SocketAddr>()
                        && !addr.ip().is_loopback()
                    {
                        // The config asked for it (warren binds loopback otherwise); say once
                        // who can reach it.
                        let message = format!(
                            "{local} is not a loopback address: any host that can reach this machine on port {} can use the tunnel ({})",
                            addr.port(),
                            sourced.origin
                        );
                        t.stats.log(format!("warning: {message}"));
                        tracing::warn!(tunnel = %name, "{message}");
                        self.emit(Event::Warning {
                            name: name.clone(),
                            message,
                        });
                    }
                    self.emit(Event::Listening {
                        name: name.clone(),
                        local: local.clone(),
                        target: shown,
                        via: t.via.clone(),
                    });
                    t.local.push(local);
                    listeners.push((l, target));
                }
                Err(e) => problems.push(format!("cannot listen on {}: {e}", f.listen.local_text())),
            }
        }
        for p in &problems {
            t.stats.log(format!("error: {p}"));
            self.emit(Event::Error {
                name: name.clone(),
                message: p.clone(),
            });
        }
        let failure = if strict && !problems.is_empty() {
            Some(format!(
                "a forward could not be set up and ExitOnForwardFailure is on: {}",
                problems.join("; ")
            ))
        } else if listeners.is_empty() && remote.is_empty() {
            Some(match problems.is_empty() {
                true => "no forward to open".to_string(),
                false => format!("no forward could be opened: {}", problems.join("; ")),
            })
        } else {
            None
        };
        (listeners, remote, failure)
    }
}

/// Seconds before the soonest to expire of a tunnel's certificates (read from their files: a
/// few hundred bytes each, only for hops with a certificate_command).
fn soonest(certificates: &[std::path::PathBuf]) -> Option<i64> {
    certificates
        .iter()
        .filter_map(|p| crate::ssh::certificate::expires_in(p))
        .min()
}

/// Seconds left before a deadline.
fn left(deadline: &std::sync::Mutex<Option<tokio::time::Instant>>) -> Option<f64> {
    deadline.lock().ok().and_then(|d| *d).map(|d| {
        d.saturating_duration_since(tokio::time::Instant::now())
            .as_secs_f64()
    })
}

/// A span as people say it: `90s`, `30m`, `8h`, `1h30m`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) if h > 0 => format!("{h}h{m}m"),
        (_, m, s) => format!("{m}m{s}s"),
    }
}
