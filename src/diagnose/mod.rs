//! Diagnostics: a step-by-step walk of a connection, each hop of its chain included, that says
//! which step failed, why that usually happens, and what to do.
//!
//! Steps, per hop: `config`, `dns`, `tcp` (or `proxy` for a hop reached through its
//! ProxyCommand), `banner`, `kex`, `host_key`, `auth`; then `forward` (the `nc -z` from the
//! last hop) and `probe` (the database's own protocol). After a failure
//! the rest is skipped. Every step is bounded by the hop's connect_timeout, so a walk always
//! ends. Nothing is written: accept-new only says it would add the key.

pub(crate) mod banner;
pub(crate) mod chanbind;
pub mod checks;
mod cloud;
mod hop;
pub(crate) mod mongo;
pub(crate) mod mssql;
pub(crate) mod mysql;
pub(crate) mod pgauth;
pub(crate) mod pgwire;
mod postgres;
pub mod probe;
mod proxy;
pub(crate) mod redis;
mod tls;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::Handle;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Sourced;
use crate::config::forward::{Endpoint, ForwardKind};
use crate::config::model::{ChannelBindingMode, Connection, DbKind};
use crate::prompt::Prompter;
use crate::ssh::client::Client;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// Which step: serialized as `config`, `dns`, ... (the `warren doctor --json` ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    Config,
    Dns,
    Tcp,
    /// The hop's ProxyCommand, in place of dns and tcp.
    Proxy,
    /// The hop's certificate_command and the certificate it gave, after config.
    Certificate,
    Banner,
    Kex,
    HostKey,
    Auth,
    Forward,
    Probe,
}

impl StepId {
    pub fn as_str(self) -> &'static str {
        match self {
            StepId::Config => "config",
            StepId::Dns => "dns",
            StepId::Tcp => "tcp",
            StepId::Proxy => "proxy",
            StepId::Certificate => "certificate",
            StepId::Banner => "banner",
            StepId::Kex => "kex",
            StepId::HostKey => "host_key",
            StepId::Auth => "auth",
            StepId::Forward => "forward",
            StepId::Probe => "probe",
        }
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad: `{:<9}` lines steps up in columns.
        f.pad(self.as_str())
    }
}

/// One finished step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    pub hop: usize,
    pub status: Status,
    pub duration_ms: u64,
    pub detail: String,
    /// The likely cause and the fix, on warn or fail.
    pub hint: Option<String>,
}

/// The whole walk, as `warren doctor --json` prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub connection: String,
    pub ok: bool,
    pub steps: Vec<Step>,
}

const HOP_STEPS: [StepId; 7] = [
    StepId::Config,
    StepId::Dns,
    StepId::Tcp,
    StepId::Banner,
    StepId::Kex,
    StepId::HostKey,
    StepId::Auth,
];

/// The steps of a hop reached through its ProxyCommand.
const PROXY_HOP_STEPS: [StepId; 6] = [
    StepId::Config,
    StepId::Proxy,
    StepId::Banner,
    StepId::Kex,
    StepId::HostKey,
    StepId::Auth,
];

pub(crate) struct Walk<'a> {
    steps: Vec<Step>,
    on_step: &'a mut (dyn FnMut(&Step) + Send),
    failed: bool,
    /// Which hops run a ProxyCommand (their steps differ).
    proxied: Vec<bool>,
    /// Which hops have a certificate_command (a `certificate` step after `config`).
    certified: Vec<bool>,
    /// `doctor --deep`: also the checks that otherwise run only after a failure (a cloud
    /// CLI's credentials).
    pub(crate) deep: bool,
    /// For each hop whose `certificate` step passed: the fingerprint of the CA that signed
    /// the certificate (its validity and principals were checked), for the auth step's hint.
    pub(crate) certified_by: Vec<Option<String>>,
}

impl Walk<'_> {
    pub(crate) fn push(
        &mut self,
        id: StepId,
        hop: usize,
        status: Status,
        started: Instant,
        detail: String,
        hint: Option<String>,
    ) {
        let step = Step {
            id,
            hop,
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            detail,
            hint: if matches!(status, Status::Warn | Status::Fail) {
                hint
            } else {
                None
            },
        };
        if status == Status::Fail {
            self.failed = true;
        }
        (self.on_step)(&step);
        self.steps.push(step);
    }

    pub(crate) fn pass(&mut self, id: StepId, hop: usize, started: Instant, detail: String) {
        self.push(id, hop, Status::Pass, started, detail, None);
    }

    pub(crate) fn fail(
        &mut self,
        id: StepId,
        hop: usize,
        started: Instant,
        detail: String,
        hint: impl Into<String>,
    ) {
        self.push(id, hop, Status::Fail, started, detail, Some(hint.into()));
    }

    pub(crate) fn skip(&mut self, id: StepId, hop: usize, why: &str) {
        self.push(id, hop, Status::Skip, Instant::now(), why.to_string(), None);
    }

    /// The steps of hop `hop`.
    fn steps_of(&self, hop: usize) -> Vec<StepId> {
        let mut steps = if self.proxied.get(hop).copied().unwrap_or(false) {
            PROXY_HOP_STEPS.to_vec()
        } else {
            HOP_STEPS.to_vec()
        };
        if self.certified.get(hop).copied().unwrap_or(false) {
            steps.insert(1, StepId::Certificate);
        }
        steps
    }

    /// Skips the rest of hop `hop` after `done`, every later hop, and the forward and probe.
    pub(crate) fn skip_rest(&mut self, hops: usize, hop: usize, done: StepId) {
        let why = format!("skipped: an earlier step failed (hop {hop})");
        let after: Vec<StepId> = self
            .steps_of(hop)
            .into_iter()
            .skip_while(|s| *s != done)
            .skip(1)
            .collect();
        for id in after {
            self.skip(id, hop, &why);
        }
        for h in hop + 1..hops {
            for id in self.steps_of(h) {
                self.skip(id, h, &why);
            }
        }
        let last = hops.saturating_sub(1);
        self.skip(StepId::Forward, last, &why);
        self.skip(StepId::Probe, last, &why);
    }
}

/// Runs the diagnostics of a connection; `on_step` sees each step as it finishes. `open`: its
/// tunnel is open in the caller's engine (its local ports are then its own). Questions (an
/// unknown host key under `ask`, a passphrase) go to `prompter`; nothing is written unless
/// a person says yes.
pub async fn run(
    conn: &Connection,
    open: bool,
    prompter: &Arc<Prompter>,
    on_step: &mut (dyn FnMut(&Step) + Send),
) -> Report {
    run_deep(conn, open, false, prompter, on_step).await
}

/// [`run`], and with `deep` the checks that otherwise run only after a failure too (`warren
/// doctor --deep`): a cloud CLI's credentials, asked of the CLI even when the session opens.
pub async fn run_deep(
    conn: &Connection,
    open: bool,
    deep: bool,
    prompter: &Arc<Prompter>,
    on_step: &mut (dyn FnMut(&Step) + Send),
) -> Report {
    let mut w = Walk {
        deep,
        certified_by: vec![None; conn.hops.len()],
        steps: Vec::new(),
        on_step,
        failed: false,
        proxied: conn
            .hops
            .iter()
            .map(|h| h.proxy_command.is_some())
            .collect(),
        certified: conn
            .hops
            .iter()
            .map(|h| h.certificate_command.is_some())
            .collect(),
    };
    let prompter = Arc::clone(prompter);
    let hops = conn.hops.len();
    if let Some(why) = conn.refusal() {
        // An untrusted file's entry: doctor runs and reads nothing of it either.
        w.push(
            StepId::Config,
            0,
            Status::Fail,
            Instant::now(),
            why,
            conn.untrusted.as_ref().map(|h| h.fix()),
        );
        w.skip_rest(hops.max(1), 0, StepId::Config);
        return Report {
            connection: conn.display_name.clone(),
            ok: false,
            steps: w.steps,
        };
    }
    let mut handles: Vec<Arc<Handle<Client>>> = Vec::new();
    // The ProxyCommands under the handles: stopped once the walk is over.
    let mut proxies = Vec::new();
    for (i, hop) in conn.hops.iter().enumerate() {
        match hop::walk(&mut w, conn, hop, i, handles.last(), &prompter, open).await {
            Some((h, p)) => {
                handles.push(Arc::new(h));
                proxies.extend(p);
            }
            None => {
                break;
            }
        }
    }
    if !w.failed {
        match handles.last() {
            Some(last) => forward_and_probe(&mut w, conn, last, hops - 1).await,
            None => direct_probe(&mut w, conn).await,
        }
    }
    for h in handles.iter().rev() {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            h.disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
    drop(proxies);
    let ok = !w.steps.iter().any(|s| s.status == Status::Fail);
    Report {
        connection: conn.display_name.clone(),
        ok,
        steps: w.steps,
    }
}

/// The targets to check: the database, else every local forward's.
fn targets(conn: &Connection) -> Vec<(String, u16)> {
    if let Some(db) = &conn.database {
        return vec![(db.host.value.clone(), db.port.value)];
    }
    conn.forwards
        .iter()
        .filter(|f| f.value.kind == ForwardKind::Local)
        .filter_map(|f| match &f.value.connect {
            Some(Endpoint::Tcp {
                host: Some(h),
                port,
            }) => Some((h.clone(), *port)),
            _ => None,
        })
        .collect()
}

async fn forward_and_probe(
    w: &mut Walk<'_>,
    conn: &Connection,
    last: &Arc<Handle<Client>>,
    hop: usize,
) {
    let targets = targets(conn);
    let timeout = conn.hops[hop].connect_timeout.value.0;
    // Remote forwards: can the bastion listen where they ask? (The port is released again.)
    for f in conn
        .forwards
        .iter()
        .filter(|f| f.value.kind == ForwardKind::Remote)
    {
        let Endpoint::Tcp { host, port } = &f.value.listen else {
            continue;
        };
        let bind = host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let t = Instant::now();
        match tokio::time::timeout(timeout, last.tcpip_forward(bind.clone(), u32::from(*port))).await {
            Ok(Ok(bound)) => {
                let p = if *port == 0 { bound } else { u32::from(*port) };
                let _ = tokio::time::timeout(timeout, last.cancel_tcpip_forward(bind.clone(), p)).await;
                w.pass(StepId::Forward, hop, t, format!("the bastion can listen on {bind}:{p} for the remote forward"));
            }
            Ok(Err(e)) => w.fail(
                StepId::Forward,
                hop,
                t,
                format!("the bastion refused to listen on {bind}:{port}: {e}"),
                "the port is in use on the bastion, or its sshd forbids it: AllowTcpForwarding (must allow remote), GatewayPorts (for an address other than loopback), PermitListen",
            ),
            Err(_) => w.fail(StepId::Forward, hop, t, format!("the bastion did not answer the request to listen on {bind}:{port}"), "check the bastion's sshd log"),
        }
    }
    if targets.is_empty()
        && conn
            .forwards
            .iter()
            .any(|f| f.value.kind == ForwardKind::Remote)
    {
        w.skip(
            StepId::Probe,
            hop,
            "a remote forward: its target is here, not behind the bastion",
        );
        return;
    }
    if targets.is_empty() {
        w.skip(
            StepId::Forward,
            hop,
            "no forward to check: this connection has none",
        );
        w.skip(StepId::Probe, hop, "no target to probe");
        return;
    }
    let mut reachable = Vec::new();
    for (host, port) in &targets {
        let t = Instant::now();
        let target = Endpoint::tcp(host.clone(), *port).to_string();
        match tokio::time::timeout(timeout, last.channel_open_direct_tcpip(host.clone(), u32::from(*port), "127.0.0.1", 0)).await {
            Ok(Ok(ch)) => {
                let _ = ch.close().await;
                w.pass(StepId::Forward, hop, t, format!("the bastion connected to {target}"));
                reachable.push((host.clone(), *port));
            }
            Ok(Err(e)) => {
                let (detail, hint) = hop::channel_failure(&e, &target, hop);
                w.fail(StepId::Forward, hop, t, detail, hint);
            }
            Err(_) => w.fail(StepId::Forward, hop, t, format!("the bastion did not connect to {target} within {}s", timeout.as_secs()), "the target does not answer the bastion: a firewall drops the packets, or the host is down"),
        }
    }
    if w.failed || reachable.is_empty() {
        w.skip(StepId::Probe, hop, "skipped: the forward failed");
        return;
    }
    let (host, port) = reachable.swap_remove(0);
    let t = Instant::now();
    let open = || async {
        let opened = tokio::time::timeout(
            timeout,
            last.channel_open_direct_tcpip(host.clone(), u32::from(port), "127.0.0.1", 0),
        )
        .await;
        match opened {
            Ok(Ok(c)) => Some(c.into_stream()),
            _ => None,
        }
    };
    let finding = probe_target(conn, timeout, open).await;
    w.push(
        StepId::Probe,
        hop,
        finding.status(),
        t,
        finding.detail,
        finding.hint,
    );
}

/// The probe of `warren doctor`, through a live session: what the engine's health checks run
/// while a tunnel is up. The target is the connection's first forward target; every step is
/// bounded by `timeout` (and the probe's byte caps).
pub async fn probe_through(
    conn: &Connection,
    session: &Handle<Client>,
    timeout: Duration,
) -> probe::Finding {
    let Some((host, port)) = targets(conn).into_iter().next() else {
        return probe::Finding::fail("no target to check", "this connection forwards nothing");
    };
    let target = Endpoint::tcp(host.clone(), port).to_string();
    let refused = std::sync::Mutex::new(None);
    let open = || async {
        match tokio::time::timeout(
            timeout,
            session.channel_open_direct_tcpip(host.clone(), u32::from(port), "127.0.0.1", 0),
        )
        .await
        {
            Ok(Ok(c)) => Some(c.into_stream()),
            Ok(Err(e)) => {
                if let Ok(mut r) = refused.lock() {
                    *r = Some(hop::channel_failure(&e, &target, conn.hops.len()));
                }
                None
            }
            Err(_) => None,
        }
    };
    let finding = probe_target(conn, timeout, open).await;
    match refused.lock().ok().and_then(|mut r| r.take()) {
        Some((detail, hint)) if !finding.ok => probe::Finding::fail(
            format!("{target} refused or did not answer ({detail})"),
            hint,
        ),
        _ => finding,
    }
}

/// The database protocol probe over streams made by `open` (PostgreSQL may need a second one,
/// when sslmode = prefer falls back to no TLS). The step's time and bytes are one [`wire::Budget`].
async fn probe_target<S, F, Fut>(conn: &Connection, timeout: Duration, open: F) -> probe::Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<S>>,
{
    let engine = conn
        .database
        .as_ref()
        .map(|d| d.engine.to_ascii_lowercase())
        .unwrap_or_default();
    let mut budget = wire::Budget::new(timeout);
    let kind = DbKind::of(&engine);
    if matches!(
        kind,
        DbKind::Postgres | DbKind::Mysql | DbKind::Redis | DbKind::Mongodb | DbKind::Mssql
    ) {
        let Some(db) = conn.database.as_ref() else {
            return probe::Finding::fail("no database in the entry", "add host and port");
        };
        let password = match (&db.password_file, &db.password) {
            (Some(pf), _) => match crate::config::read_secret_file(&pf.value) {
                Ok(p) => Some(p),
                Err(e) => {
                    return probe::Finding::fail(
                        format!("cannot read password_file {}: {e}", pf.value.display()),
                        format!(
                            "fix the path or the permissions of password_file ({})",
                            pf.origin
                        ),
                    );
                }
            },
            (None, Some(p)) => Some(p.value.copied()),
            (None, None) => None,
        };
        let named = db.username.as_ref().map(|u| u.value.clone());
        let user = match kind {
            DbKind::Postgres => named.unwrap_or_else(|| "postgres".into()),
            // As the mysql client: the local login name when the entry names no user.
            DbKind::Mysql => named
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "root".into()),
            _ => named.unwrap_or_default(),
        };
        let database = match (&db.database, kind) {
            (Some(d), _) => d.value.clone(),
            (None, DbKind::Postgres) => user.clone(),
            (None, _) => String::new(),
        };
        let target = probe::Target {
            host: db.tls_name().to_string(),
            user,
            database,
            password,
            sslmode: db.sslmode.clone(),
            sslrootcert: db.sslrootcert.clone(),
        };
        return probe_with_binding(&engine, &target, &db.channel_binding, timeout, open).await;
    }
    let Ok(Some(mut s)) = budget.within(open()).await else {
        return probe::Finding::fail(
            "could not open a connection for the probe",
            "the target stopped answering",
        );
    };
    probe::probe_other(&mut s, &mut budget).await
}

/// The login probe of an engine that has one (PostgreSQL, MySQL, Redis, MongoDB, SQL Server) for `target`, over
/// streams made by `open`, within `timeout`; PostgreSQL's with libpq's default
/// `channel_binding = prefer`.
pub(crate) async fn probe_with<S, F, Fut>(
    engine: &str,
    target: &probe::Target,
    timeout: Duration,
    open: F,
) -> probe::Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<S>>,
{
    let prefer = Sourced::default_value(ChannelBindingMode::Prefer);
    probe_with_binding(engine, target, &prefer, timeout, open).await
}

/// As [`probe_with`], PostgreSQL's SCRAM login bound to TLS as `channel_binding` says (the
/// entry's setting; the other engines' probes do not bind).
pub(crate) async fn probe_with_binding<S, F, Fut>(
    engine: &str,
    target: &probe::Target,
    channel_binding: &Sourced<ChannelBindingMode>,
    timeout: Duration,
    open: F,
) -> probe::Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<S>>,
{
    let mut budget = wire::Budget::new(timeout);
    match DbKind::of(engine) {
        DbKind::Postgres => postgres::probe(target, channel_binding, &mut budget, open).await,
        DbKind::Mysql => mysql::probe(target, &mut budget, open).await,
        DbKind::Redis => redis::probe(target, &mut budget, open).await,
        DbKind::Mongodb => mongo::probe(target, &mut budget, open).await,
        DbKind::Mssql => mssql::probe(target, &mut budget, open).await,
        _ => probe::Finding::fail(format!("no login probe for {engine}"), ""),
    }
}

/// The Redis login a client is about to make (`warren connect`), checked over `open` within
/// ten seconds.
pub async fn login_check<S, F, Fut>(target: &probe::Target, open: F) -> probe::Finding
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<S>>,
{
    probe_with("redis", target, Duration::from_secs(10), open).await
}

/// An epoch.toml entry with no tunnel: the probe runs from here.
async fn direct_probe(w: &mut Walk<'_>, conn: &Connection) {
    let Some(db) = &conn.database else { return };
    let timeout = Duration::from_secs(crate::config::from_ssh::DEFAULT_CONNECT_TIMEOUT);
    let t = Instant::now();
    let (host, port) = (db.host.value.clone(), db.port.value);
    let open = || async {
        match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(s)) => Some(s),
            _ => None,
        }
    };
    let f = probe_target(conn, timeout, open).await;
    w.push(StepId::Probe, 0, f.status(), t, f.detail, f.hint);
}
