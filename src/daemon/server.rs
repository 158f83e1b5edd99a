//! The daemon's side: hosts an engine and serves each client on its own task. A client's
//! requests are handled concurrently (an open that waits for a person to answer a question
//! does not hold up that person's answer), and replies and events go out through one writer
//! per client. Every line is bounded ([`MAX_LINE`]); a bad line gets an error reply and the
//! client may go on.
//!
//! The daemon stops when no tunnel is open and no client is connected, checked after a
//! failure and when a client leaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use zeroize::Zeroizing;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::protocol::{
    Frame, Line, MAX_LINE, Reply, Request, VERSION, encode, parse_request, read_line,
};
use super::{Remembered, remember, remembered, runtime_dir, socket_path};
use crate::audit::{self, By};
use crate::config::forward::{Endpoint, ForwardKind};
use crate::config::{Catalog, Connection, Context, Paths};
use crate::engine::{Command, Engine, Event, TunnelStatus};

/// The daemon's lock: held as long as the returned file is open.
fn lock(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("daemon.lock"))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another warren daemon is running for this user",
        ));
    }
    Ok(f)
}

/// The daemon's lock, waited for (the previous daemon is stopping).
fn lock_wait(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("daemon.lock"))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// What every client task shares.
struct Shared {
    engine: Engine,
    paths: Paths,
    ctx: Arc<Context>,
    dir: std::path::PathBuf,
    stop: CancellationToken,
    /// Clients connected now: the daemon never stops under one.
    clients: AtomicUsize,
    /// Subscribed clients that answer questions.
    answering: Arc<AtomicUsize>,
    /// warren's settings (read at start): defaults for entries, the notify command.
    settings: crate::settings::Settings,
    /// Tunnels opened with `--no-exec`, remembered so across a restart.
    no_exec: std::sync::Mutex<std::collections::HashSet<String>>,
    /// One writer of `tunnels.json` at a time, each writing the status it reads under it:
    /// a later write never loses to an earlier snapshot.
    state_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    /// With nothing open and no client connected, the daemon goes.
    async fn maybe_stop(&self) {
        let tunnels = self.save_state().await;
        if self.clients.load(Ordering::Relaxed) == 0 && !tunnels.iter().any(|t| t.state.is_open()) {
            self.stop.cancel();
        }
    }

    /// Remembers the open tunnels and their ports, for a daemon that replaces this one, as
    /// they are now; returns that status.
    async fn save_state(&self) -> Vec<TunnelStatus> {
        let _one = self.state_lock.lock().await;
        let tunnels = self.engine.status().await;
        self.write_state(&tunnels);
        tunnels
    }

    /// Forgets every tunnel (the daemon is going with none open).
    async fn clear_state(&self) {
        let _one = self.state_lock.lock().await;
        self.write_state(&[]);
    }

    fn write_state(&self, tunnels: &[TunnelStatus]) {
        let no_exec = self.no_exec.lock().map(|s| s.clone()).unwrap_or_default();
        let list: Vec<Remembered> = tunnels
            .iter()
            .filter(|t| t.state.is_open())
            .map(|t| Remembered {
                name: t.name.clone(),
                ports: t
                    .local
                    .iter()
                    .filter_map(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                    .collect(),
                no_exec: no_exec.contains(&t.name),
                on_demand: t.on_demand,
            })
            .collect();
        if let Err(e) = remember(&self.dir, &list) {
            tracing::warn!("cannot write the daemon's tunnel list: {e}");
        }
    }

    /// The config files read again, off the runtime (a `Match exec` may run for seconds);
    /// with `no_exec`, as `--no-exec` reads them whatever this daemon was started with.
    async fn catalog(&self, no_exec: bool) -> Catalog {
        let mut ctx = Arc::clone(&self.ctx);
        if no_exec && ctx.run_commands() {
            let mut c = (*ctx).clone();
            c.env.insert(
                crate::config::context::NO_EXEC_VAR.to_string(),
                "1".to_string(),
            );
            ctx = Arc::new(c);
        }
        let paths = self.paths.clone();
        let load = Arc::clone(&ctx);
        let mut catalog = tokio::task::spawn_blocking(move || Catalog::load(&paths, load))
            .await
            .unwrap_or_else(|_| Catalog::load(&self.paths, ctx));
        self.settings.apply(&mut catalog.connections);
        catalog
    }
}

/// Tells the warren that started this daemon that it listens ("ready" on stdout), then
/// lets go of stdout: that warren may exit, and the daemon never writes to a terminal.
fn ready() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(b"ready\n");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto stdout of a file we opened.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

/// Pins a connection's automatic local ports (`0`) to the ones it had before, in order.
fn pin_ports(mut conn: Connection, ports: &[u16]) -> Connection {
    let mut given = ports.iter();
    for f in &mut conn.forwards {
        if !matches!(f.value.kind, ForwardKind::Local | ForwardKind::Dynamic) {
            continue;
        }
        if let Endpoint::Tcp { port, .. } = &mut f.value.listen {
            match given.next() {
                Some(p) if *port == 0 => *port = *p,
                _ => {}
            }
        }
    }
    conn
}

/// Runs the daemon until nothing is left to keep alive.
pub async fn serve(paths: Paths, ctx: Arc<Context>) -> std::io::Result<()> {
    // The daemon resolves nothing against the working directory of the client that started
    // it (its paths are absolute): a later request from elsewhere must not read that
    // directory's epoch.toml.
    std::env::set_current_dir("/")?;
    let dir = runtime_dir(&ctx)?;
    let _lock = match lock(&dir) {
        Ok(l) => l,
        // A daemon that still answers is running; one that does not is on its way out:
        // wait (a little) for it to let go.
        Err(e) if std::os::unix::net::UnixStream::connect(socket_path(&dir)).is_ok() => {
            return Err(e);
        }
        Err(_) => {
            let d = dir.clone();
            let waited = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::task::spawn_blocking(move || lock_wait(&d)),
            )
            .await;
            match waited {
                Ok(Ok(Ok(l))) => l,
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        "another warren daemon holds the lock and does not answer",
                    ));
                }
            }
        }
    };
    audit::install(&ctx);
    let sock = socket_path(&dir);
    // We hold the lock: any socket file is a dead daemon's.
    let _ = std::fs::remove_file(&sock);
    let listener = {
        // 0600 from the start.
        // SAFETY: umask only swaps the process's file mode mask (nothing else runs yet).
        let old = unsafe { libc::umask(0o177) };
        let l = UnixListener::bind(&sock);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        l?
    };
    // Who the daemon is, for people (and tests) who need to signal it.
    let _ = crate::fsutil::write_atomic(
        &dir.join("daemon.pid"),
        format!("{}\n", std::process::id()).as_bytes(),
        0o600,
    );
    ready();
    let answering = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&answering);
    let engine = Engine::start_answering(move |_| a.load(Ordering::Relaxed) > 0);
    let settings = crate::settings::Settings::load(&ctx);
    for p in &settings.problems {
        tracing::warn!("{p}");
    }
    if let Some(command) = &settings.notifications.command
        && !ctx.run_commands()
    {
        tracing::warn!(
            "the notify command ({}) is not run: the daemon runs no command (--no-exec)",
            command.origin
        );
    } else if let Some(command) = &settings.notifications.command {
        notify_with(
            &engine,
            command.value.clone(),
            settings.notifications.on.value.clone(),
        );
    } else if cfg!(target_os = "macos") && settings.notifications.desktop.value {
        // No terminal to send OSC 9 to: Notification Center, through osascript.
        notify_with(
            &engine,
            crate::notify::MACOS_DESKTOP.into(),
            settings.notifications.on.value.clone(),
        );
    }
    let shared = Arc::new(Shared {
        engine,
        paths,
        ctx,
        dir: dir.clone(),
        stop: CancellationToken::new(),
        clients: AtomicUsize::new(0),
        answering,
        settings,
        no_exec: Default::default(),
        state_lock: Default::default(),
    });
    tracing::info!(socket = %sock.display(), "daemon started");
    if let Some(listen) = shared.settings.metrics_listen.clone() {
        start_metrics(&shared, listen);
    }
    restore(&shared).await;
    // A tunnel that fails may leave nothing open.
    let watcher = Arc::clone(&shared);
    let mut events = shared.engine.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await.as_deref() {
                Ok(Event::State { state, .. }) if !state.is_open() => watcher.maybe_stop().await,
                Ok(Event::Listening { .. }) => {
                    watcher.save_state().await;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shared.stop.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((conn, _)) => {
                // Only this user: the directory's 0700 keeps others out, and root (or a
                // process that was handed the socket) is refused here too.
                let cred = conn.peer_cred();
                let uid = cred.as_ref().map(|c| c.uid());
                if uid.as_ref().ok() != Some(&shared.ctx.uid) {
                    match uid {
                        Ok(u) => tracing::warn!(
                            "refused a connection from uid {u} (the daemon serves uid {} only)",
                            shared.ctx.uid
                        ),
                        Err(e) => tracing::warn!("refused a connection whose peer is unknown: {e}"),
                    }
                    drop(conn);
                    continue;
                }
                if shared.clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    tracing::warn!("refused a client: {MAX_CLIENTS} are connected already");
                    let mut conn = conn;
                    let line = serde_json::to_vec(&reply(
                        0,
                        Reply::error(format!(
                            "the daemon serves at most {MAX_CLIENTS} clients at once"
                        )),
                    ))
                    .unwrap_or_default();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            let _ = conn.write_all(&line).await;
                            let _ = conn.write_all(b"\n").await;
                        })
                        .await;
                    });
                    continue;
                }
                shared.clients.fetch_add(1, Ordering::Relaxed);
                let s = Arc::clone(&shared);
                // Who it is, for the audit log of what it asks.
                let by = By::DaemonClient {
                    pid: cred.as_ref().ok().and_then(|c| c.pid()),
                    uid: uid.unwrap_or(shared.ctx.uid),
                };
                tracker.spawn(async move {
                    let _ = client(conn, &s, by).await;
                    s.clients.fetch_sub(1, Ordering::Relaxed);
                    s.maybe_stop().await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    tracing::info!("daemon stopping: no tunnel is open and no client is attached");
    shared.engine.shutdown().await;
    shared.clear_state().await;
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(dir.join("daemon.pid"));
    Ok(())
}

/// Serves the engine's metrics on the settings' address until the daemon stops; an address
/// that cannot be bound is logged (the tunnels do not depend on it). A port in use is tried
/// again for a few seconds: the daemon this one replaces may still be letting go of it.
fn start_metrics(shared: &Arc<Shared>, listen: crate::config::Sourced<std::net::SocketAddr>) {
    use super::metrics;
    let engine = shared.engine.clone();
    let stop = shared.stop.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(listen.value).await {
                Ok(l) => break l,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "no metrics: cannot listen on {} ({}): {e}",
                        listen.value,
                        listen.origin
                    );
                    return;
                }
            }
        };
        let at = listener.local_addr().unwrap_or(listen.value);
        if let Some(warning) = metrics::exposure(&at) {
            tracing::warn!("{warning} ({}, [metrics] listen)", listen.origin);
        }
        tracing::info!("metrics at http://{at}/metrics");
        let body = move || {
            let engine = engine.clone();
            async move { metrics::render(&engine.status().await) }
        };
        metrics::serve(listener, metrics::Limits::DEFAULT, body, stop).await;
    });
}

/// Runs the settings' notify command for the news among the engine's events (the kinds in
/// `on`): a tunnel that dropped, failed, came back, reached its time limit; a database that
/// stopped or started answering.
fn notify_with(engine: &Engine, command: String, on: Vec<crate::notify::Kind>) {
    tracing::info!("notifications go to the notify command for: {on:?}");
    let runner = crate::notify::Runner::start(command);
    let mut events = engine.subscribe();
    tokio::spawn(async move {
        let mut tracker = crate::notify::Tracker::new();
        loop {
            match events.recv().await {
                Ok(ev) => {
                    if let Some(n) = tracker.event(&ev).filter(|n| on.contains(&n.kind)) {
                        runner.notify(n);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("notifications: {n} engine events skipped (too many at once)");
                }
                Err(_) => return,
            }
        }
    });
}

/// Opens again the tunnels a daemon that died was running, on the same ports.
async fn restore(shared: &Arc<Shared>) {
    let before = remembered(&shared.dir);
    if before.is_empty() {
        return;
    }
    // Each read only when a tunnel needs it: one opened with --no-exec is never read with
    // commands on (a `Match exec` runs while the file is read).
    let (mut as_asked, mut no_exec) = (None, None);
    for r in before {
        let slot = if r.no_exec {
            &mut no_exec
        } else {
            &mut as_asked
        };
        if slot.is_none() {
            *slot = Some(shared.catalog(r.no_exec).await);
        }
        let Some(catalog) = slot.as_ref() else {
            continue;
        };
        match catalog.find(&r.name) {
            Ok(c) => {
                tracing::info!(tunnel = %r.name, no_exec = r.no_exec, "reopening after a restart");
                if r.no_exec
                    && let Ok(mut set) = shared.no_exec.lock()
                {
                    set.insert(r.name.clone());
                }
                let mut conn = pin_ports(c.clone(), &r.ports);
                if r.on_demand {
                    conn.policy.on_demand = Some(crate::config::Sourced::new(
                        true,
                        crate::config::Origin::Flag("--on-demand"),
                    ));
                }
                audit::record(
                    &r.name,
                    audit::Kind::OpenRequested {
                        by: By::DaemonRestore,
                    },
                );
                shared
                    .engine
                    .send(Command::Open {
                        conn: Box::new(conn),
                        reply: None,
                    })
                    .await;
            }
            Err(e) => tracing::warn!(tunnel = %r.name, "cannot reopen after a restart: {e}"),
        }
    }
}

/// The most requests one client may have unanswered (opens, closes, reconnects; a status
/// or an answer is answered at once, in order). warren's own clients name every tunnel of a
/// command in one request, so they never come near it.
pub const MAX_IN_FLIGHT: usize = 32;

/// The most clients connected at once; one more is told so and closed.
pub const MAX_CLIENTS: usize = 128;

async fn client(conn: UnixStream, shared: &Arc<Shared>, by: By) -> std::io::Result<()> {
    let (r, mut w) = conn.into_split();
    let (out, mut outq) = mpsc::channel::<Frame>(256);
    // One writer: replies and events never interleave within a line.
    let writer = tokio::spawn(async move {
        let mut line = Vec::new();
        while let Some(f) = outq.recv().await {
            line.clear();
            if encode(&f, &mut line).is_err() {
                continue;
            }
            if w.write_all(&line).await.is_err() {
                return;
            }
        }
    });
    let mut r = BufReader::new(r);
    let gone = CancellationToken::new();
    let mut subscribed = None;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    // One buffer for every line of this client, allocated whole (never grown) and zeroized
    // after each line and when dropped: an answer's line carries its secret.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_LINE + 1));
    loop {
        match read_line(&mut r, &mut buf, MAX_LINE).await? {
            Line::Eof => break,
            Line::TooLong => {
                let _ = out
                    .send(reply(
                        0,
                        Reply::error(format!("request longer than {MAX_LINE} bytes")),
                    ))
                    .await;
                continue;
            }
            Line::Complete | Line::Unterminated => {}
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let env = match parse_request(&line) {
            Ok(e) => e,
            Err(r) => {
                let _ = out.send(reply(0, r)).await;
                continue;
            }
        };
        if let Request::Subscribe { answers } = env.req {
            if subscribed.is_none() {
                if answers {
                    shared.answering.fetch_add(1, Ordering::Relaxed);
                }
                subscribed = Some(answers);
                stream_events(shared, out.clone(), answers, gone.clone());
            }
            let tunnels = shared.engine.status().await;
            let _ = out.send(reply(env.id, Reply::tunnels(tunnels))).await;
            continue;
        }
        // Logged by kind only: an answer's secret never reaches the log.
        tracing::debug!("request {}", request_kind(&env.req));
        // Quick ones are answered here, in order (an answer must never wait behind opens
        // that wait for it); the rest run on tasks of their own, at most MAX_IN_FLIGHT.
        if matches!(env.req, Request::Status | Request::Answer { .. }) {
            let r = handle(env.req, shared, &by).await;
            let _ = out.send(reply(env.id, r)).await;
            continue;
        }
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            let _ = out
                .send(reply(
                    env.id,
                    Reply::error(format!(
                        "too many requests at once ({MAX_IN_FLIGHT} unanswered on this connection): wait for their replies"
                    )),
                ))
                .await;
            continue;
        };
        let (s, o, by) = (Arc::clone(shared), out.clone(), by.clone());
        tokio::spawn(async move {
            let r = handle(env.req, &s, &by).await;
            let _ = o.send(reply(env.id, r)).await;
            drop(permit);
        });
    }
    gone.cancel();
    drop(out);
    let _ = writer.await;
    if subscribed == Some(true) {
        shared.answering.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Open { .. } => "open",
        Request::Close { .. } => "close",
        Request::CloseAll => "close all",
        Request::Status => "status",
        Request::Subscribe { .. } => "subscribe",
        Request::Answer { .. } => "answer",
        Request::Reconnect { .. } => "reconnect",
        Request::Extend { .. } => "extend",
    }
}

fn reply(id: u64, reply: Reply) -> Frame {
    Frame::Reply {
        v: VERSION,
        id,
        reply,
    }
}

/// Forwards the engine's events to a subscribed client until it goes. Diagnostics stay
/// with the client that runs them; questions go only to clients that answer.
fn stream_events(
    shared: &Arc<Shared>,
    out: mpsc::Sender<Frame>,
    answers: bool,
    gone: CancellationToken,
) {
    let mut events = shared.engine.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = gone.cancelled() => return,
                ev = events.recv() => ev,
            };
            match ev {
                Ok(ev) => {
                    let skip = match &*ev {
                        Event::Step { .. } | Event::Diagnosed { .. } => true,
                        Event::Prompt { .. } | Event::PromptWithdrawn { .. } => !answers,
                        _ => false,
                    };
                    if skip {
                        continue;
                    }
                    if out
                        .send(Frame::Event {
                            v: VERSION,
                            event: Arc::unwrap_or_clone(ev),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
}

/// The audit log's record that `by` asked for tunnels to open or close.
fn asked(names: &[String], kind: impl Fn(By) -> audit::Kind, by: &By) {
    for n in names {
        audit::record(n, kind(by.clone()));
    }
}

async fn handle(req: Request, shared: &Arc<Shared>, by: &By) -> Reply {
    let engine = &shared.engine;
    match req {
        Request::Open {
            names,
            for_secs,
            port_fallback,
            no_exec,
            on_demand,
        } => {
            let catalog = shared.catalog(no_exec).await;
            let mut conns: Vec<Connection> = match catalog.select(&names) {
                Ok(list) => list.into_iter().cloned().collect(),
                Err(e) => return Reply::error(e.to_string()),
            };
            let asking: Vec<String> = conns.iter().map(|c| c.display_name.clone()).collect();
            asked(&asking, |by| audit::Kind::OpenRequested { by }, by);
            for c in &mut conns {
                c.policy.port_fallback = port_fallback;
                if on_demand {
                    c.policy.on_demand = Some(crate::config::Sourced::new(
                        true,
                        crate::config::Origin::Flag("--on-demand"),
                    ));
                }
            }
            if let Some(secs) = for_secs {
                for c in &mut conns {
                    c.policy.max_duration = Some(crate::config::Sourced::new(
                        crate::config::model::Seconds::from_secs(secs),
                        crate::config::Origin::Flag("--for"),
                    ));
                }
            }
            let opened =
                futures_util::future::join_all(conns.into_iter().map(|c| engine.open(c))).await;
            let tunnels: Vec<TunnelStatus> = opened.into_iter().flatten().collect();
            if let Ok(mut set) = shared.no_exec.lock() {
                for t in &tunnels {
                    if no_exec {
                        set.insert(t.name.clone());
                    } else {
                        set.remove(&t.name);
                    }
                }
            }
            shared.save_state().await;
            Reply::tunnels(tunnels)
        }
        Request::Close { names } => {
            if !names.is_empty() {
                asked(&names, |by| audit::Kind::CloseRequested { by }, by);
                engine.close(names).await;
            }
            let r = Reply::tunnels(engine.status().await);
            shared.maybe_stop().await;
            r
        }
        Request::CloseAll => {
            let open: Vec<String> = engine
                .status()
                .await
                .into_iter()
                .filter(|t| t.state.is_open())
                .map(|t| t.name)
                .collect();
            asked(&open, |by| audit::Kind::CloseRequested { by }, by);
            engine.close(Vec::new()).await;
            let r = Reply::tunnels(engine.status().await);
            shared.maybe_stop().await;
            r
        }
        Request::Status => Reply::tunnels(engine.status().await),
        Request::Answer { question, answer } => {
            if engine.answer(question, answer.into()) {
                Reply::tunnels(Vec::new())
            } else {
                Reply::error("that question is no longer asked (answered, timed out or withdrawn)")
            }
        }
        Request::Reconnect { names } => {
            engine.send(Command::Reconnect { names }).await;
            Reply::tunnels(engine.status().await)
        }
        Request::Extend { names, secs } => {
            for name in names {
                engine.send(Command::Extend { name, secs }).await;
            }
            Reply::tunnels(engine.status().await)
        }
        Request::Subscribe { .. } => Reply::tunnels(engine.status().await),
    }
}
