//! Forwards: a listener per local forward (TCP, a unix socket, or SOCKS), each accepted
//! connection a direct-tcpip channel of the tunnel's SSH session, copied both ways; remote
//! forwards' connections the same way back ([`Reverse`]); and the live counters of a tunnel
//! ([`Stats`], [`TunnelStats`]). It uses the ssh layer and the config model, never the
//! engine or a client.
//!
//! A channel is always drained. In russh one channel whose data is not read blocks the whole
//! connection (every other channel, and keepalives), and the SSH window is refilled on receipt,
//! not on consumption. So a pump task reads the channel without pause into a per-connection
//! queue, and a writer task empties the queue into the local socket. A client that stops
//! reading lets its queue grow to at most [`MAX_QUEUED`] bytes; past that its connection is
//! closed (the pump keeps discarding until the channel is gone), and every other connection
//! keeps flowing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use russh::ChannelMsg;
use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use crate::ssh::handler::Client;

pub mod demand;
pub mod owner;
pub mod socks;

pub use demand::{Demand, Refusal};

/// The most a connection may hold for a local client that does not read (bounds memory).
pub const MAX_QUEUED: usize = 64 * 1024 * 1024;

/// Live counters of one tunnel.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes from the far end to local clients.
    pub bytes_in: AtomicU64,
    /// Bytes from local clients to the far end.
    pub bytes_out: AtomicU64,
    pub active: AtomicU64,
    pub total: AtomicU64,
    pub failed: AtomicU64,
    /// Times the session under the tunnel was re-established.
    pub reconnects: AtomicU64,
    /// When the session last came up; `None` while down.
    pub up_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// When the tunnel was opened (these counters made).
    pub opened: Opened,
    /// From [`Stats::opened`] to the first time it was up; `None` until then.
    pub open_secs: std::sync::Mutex<Option<f64>>,
    pub last_error: std::sync::Mutex<Option<String>>,
    /// The tunnel's recent log lines, oldest first, at most [`LOG_LINES`].
    pub log: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// The tunnel's name, for the audit log's records of its client connections.
    pub name: String,
}

/// An instant that defaults to now: when a tunnel's [`Stats`] were made.
#[derive(Debug, Clone, Copy)]
pub struct Opened(pub std::time::Instant);

impl Default for Opened {
    fn default() -> Self {
        Opened(std::time::Instant::now())
    }
}

/// Lines kept in a tunnel's log ring.
pub const LOG_LINES: usize = 256;

/// The counters of one tunnel at one moment: what events, `status` and clients carry.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TunnelStats {
    /// Bytes from the far end to local clients.
    pub bytes_in: u64,
    /// Bytes from local clients to the far end.
    pub bytes_out: u64,
    /// Client connections open now.
    pub active: u64,
    pub total: u64,
    /// Client connections that could not be carried (the channel was refused, the session
    /// was down).
    #[serde(default)]
    pub failed: u64,
    /// Times the session under the tunnel was re-established.
    pub reconnects: u64,
    pub uptime_secs: Option<f64>,
    /// Seconds from the open to the first time it was up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_secs: Option<f64>,
    pub last_error: Option<String>,
    /// Time left before its time limit (max_duration) closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<f64>,
    /// Seconds before the SSH certificate a certificate_command gave expires (negative: it
    /// has; renewed at the next connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires_in_secs: Option<i64>,
}

impl Stats {
    /// The counters of the tunnel `name`, all zero.
    pub fn named(name: &str) -> Stats {
        Stats {
            name: name.to_string(),
            ..Stats::default()
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> TunnelStats {
        TunnelStats {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            uptime_secs: self.uptime().map(|d| d.as_secs_f64()),
            open_secs: self.open_secs.lock().ok().and_then(|s| *s),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
            expires_in_secs: None,
            certificate_expires_in_secs: None,
        }
    }

    /// The log lines, oldest first.
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn log(&self, line: impl Into<String>) {
        if let Ok(mut l) = self.log.lock() {
            if l.len() == LOG_LINES {
                l.pop_front();
            }
            l.push_back(line.into());
        }
    }

    /// A connection that could not be served: the last error and a log line.
    pub fn note_failure(&self, why: String) {
        if std::env::var_os("WARREN_DEBUG_FAILURES").is_some() {
            eprintln!("connection failed: {why}");
        }
        self.log(format!("connection failed: {why}"));
        crate::audit::record(
            &self.name,
            crate::audit::Kind::ClientFailed {
                reason: why.clone(),
            },
        );
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(why);
        }
    }

    pub fn uptime(&self) -> Option<std::time::Duration> {
        self.up_since
            .lock()
            .ok()
            .and_then(|u| u.map(|t| t.elapsed()))
    }
}

/// The session a tunnel's connections use; `None` while it is being re-established.
pub type SessionWatch = watch::Receiver<Option<Arc<Handle<Client>>>>;

/// Where a forward connects to from the last hop.
#[derive(Clone, Debug)]
pub enum Target {
    /// A fixed host and port (LocalForward).
    Fixed { host: String, port: u16 },
    /// Whatever the SOCKS client asks for (DynamicForward).
    Socks,
}

/// A bound local listener.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    /// Mode 0600; the socket file is removed when the listener goes.
    Unix(UnixSocket),
}

/// A listening unix socket that removes its file when dropped, so the path can be used
/// again (by a reopened tunnel, or anyone).
pub struct UnixSocket {
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

type LocalStream = Either<tokio::net::TcpStream, tokio::net::UnixStream>;

impl Listener {
    /// The next client and its address (for the channel's originator field).
    async fn accept(&self) -> std::io::Result<(LocalStream, (String, u16))> {
        match self {
            Listener::Tcp(l) => {
                let (sock, peer) = l.accept().await?;
                let _ = sock.set_nodelay(true);
                Ok((Either::Left(sock), (peer.ip().to_string(), peer.port())))
            }
            Listener::Unix(l) => {
                let (sock, _) = l.listener.accept().await?;
                Ok((Either::Right(sock), ("127.0.0.1".to_string(), 0)))
            }
        }
    }
}

/// The most queued packets written in one vectored write.
const MAX_BATCH: usize = 64;

/// Writes every buffer, in order, with as few `writev` calls as the socket allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    bufs: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    while !bufs.is_empty() {
        let slices: Vec<std::io::IoSlice<'_>> =
            bufs.iter().map(|b| std::io::IoSlice::new(b)).collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let first = &mut bufs[0];
            if n >= first.len() {
                n -= first.len();
                bufs.remove(0);
            } else {
                first.advance(n);
                n = 0;
            }
        }
    }
    Ok(())
}

/// What an on-demand tunnel's listener knows: the session's [`Demand`], and how a client that
/// gets no session is told.
#[derive(Clone, Debug)]
pub struct OnDemand {
    pub demand: Arc<Demand>,
    pub refusal: Refusal,
}

/// Accepts connections until `shutdown`, piping each through the current session; waits for
/// them to end before returning. With `on_demand`, each connection asks for the session.
pub async fn serve(
    listener: Listener,
    session: SessionWatch,
    target: Target,
    stats: Arc<Stats>,
    open_timeout: Duration,
    shutdown: CancellationToken,
    on_demand: Option<OnDemand>,
) {
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((sock, peer)) => {
                let (s, t, st, sd, od) = (
                    session.clone(),
                    target.clone(),
                    Arc::clone(&stats),
                    shutdown.clone(),
                    on_demand.clone(),
                );
                tracker.spawn(async move {
                    connection(sock, peer, s, t, st, open_timeout, sd, od).await;
                });
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    tracker.close();
    tracker.wait().await;
}

async fn current_session(mut session: SessionWatch, wait: Duration) -> Option<Arc<Handle<Client>>> {
    let found = tokio::time::timeout(
        wait,
        session.wait_for(|s| s.as_ref().is_some_and(|h| !h.is_closed())),
    )
    .await;
    match found {
        Ok(Ok(s)) => s.clone(),
        _ => None,
    }
}

/// The session for an on-demand tunnel's client: asked for, and waited for until it is up,
/// the supervisor says it could not be opened, or `wait` is over (`Err`: why not).
async fn demanded_session(
    session: SessionWatch,
    demand: &Demand,
    wait: Duration,
) -> Result<Arc<Handle<Client>>, String> {
    let mut failures = demand.failures();
    let held = failures
        .borrow_and_update()
        .clone()
        .filter(|f| f.until > std::time::Instant::now());
    if let Some(f) = held {
        return Err(f.why.to_string());
    }
    let up = current_session(session, wait);
    tokio::pin!(up);
    loop {
        tokio::select! {
            h = &mut up => {
                return h.ok_or_else(|| {
                    format!("the SSH session did not open within {}s", wait.as_secs())
                });
            }
            changed = failures.changed() => {
                let failure = failures.borrow_and_update().clone();
                match (changed, failure) {
                    (Ok(()), Some(f)) => return Err(f.why.to_string()),
                    (Ok(()), None) => {}
                    (Err(_), _) => return Err("the tunnel was closed".into()),
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<S>(
    sock: S,
    peer: (String, u16),
    session: SessionWatch,
    target: Target,
    stats: Arc<Stats>,
    open_timeout: Duration,
    shutdown: CancellationToken,
    on_demand: Option<OnDemand>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut sock = sock;
    stats.total.fetch_add(1, Ordering::Relaxed);
    let wait = open_timeout.max(Duration::from_secs(1)) * 2;
    // Held until the connection ends: an on-demand session stays while it runs.
    let opens = session.borrow().is_none();
    let _user = on_demand.as_ref().map(|o| {
        let user = o.demand.enter();
        if opens && o.demand.users() == 1 {
            // No session and nobody else waiting: this client opens it.
            let peer = crate::config::forward::Endpoint::tcp(peer.0.clone(), peer.1).to_string();
            crate::audit::record(&stats.name, crate::audit::Kind::OnDemandOpen { peer });
        }
        user
    });
    let handle = match &on_demand {
        // A connection that arrives while the session is being re-established waits for it.
        None => current_session(session, wait).await.ok_or_else(|| {
            "a client connected while the SSH session was down, and it did not come back in time"
                .to_string()
        }),
        Some(o) => demanded_session(session, &o.demand, wait)
            .await
            .map_err(|why| format!("the on-demand SSH session could not be opened: {why}")),
    };
    let handle = match handle {
        Ok(h) => h,
        Err(why) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(o) = &on_demand {
                demand::refuse(&mut sock, o.refusal, &format!("warren: {why}")).await;
            }
            stats.note_failure(why);
            return;
        }
    };
    // A dynamic forward learns its target from the SOCKS request.
    let (socks_version, host, port) = match &target {
        Target::Fixed { host, port } => (None, host.clone(), *port),
        Target::Socks => {
            match tokio::time::timeout(open_timeout, socks::handshake(&mut sock)).await {
                Ok(Ok((v, h, p))) => (Some(v), h, p),
                Ok(Err(e)) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.note_failure(format!("SOCKS: {e}"));
                    return;
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.note_failure("SOCKS: the client sent no complete request in time".into());
                    return;
                }
            }
        }
    };
    let target_text = crate::config::forward::Endpoint::tcp(host.clone(), port).to_string();
    let client = crate::config::forward::Endpoint::tcp(peer.0.clone(), peer.1).to_string();
    let opened = tokio::time::timeout(
        open_timeout,
        handle.channel_open_direct_tcpip(host, u32::from(port), peer.0, u32::from(peer.1)),
    )
    .await;
    let channel = match opened {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            if let Some(v) = socks_version {
                use russh::ChannelOpenFailure as F;
                let why = match &e {
                    russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited) => {
                        socks::Refusal::NotAllowed
                    }
                    russh::Error::ChannelOpenFailure(F::ConnectFailed) => socks::Refusal::Refused,
                    _ => socks::Refusal::General,
                };
                let _ = socks::reply(&mut sock, v, Err(why)).await;
            }
            stats.failed.fetch_add(1, Ordering::Relaxed);
            stats.note_failure(format!(
                "the bastion could not open a channel to {target_text}: {e}"
            ));
            return;
        }
        Err(_) => {
            if let Some(v) = socks_version {
                let _ = socks::reply(&mut sock, v, Err(socks::Refusal::Unreachable)).await;
            }
            stats.failed.fetch_add(1, Ordering::Relaxed);
            stats.note_failure(format!(
                "opening a channel to {target_text} timed out after {}s",
                open_timeout.as_secs()
            ));
            return;
        }
    };
    if let Some(v) = socks_version
        && socks::reply(&mut sock, v, Ok(())).await.is_err()
    {
        return;
    }
    audited_pipe(channel, sock, client, target_text, stats, shutdown).await;
}

/// [`pipe`], with the client connection's open and its close (and what it carried) in the
/// audit log.
pub async fn audited_pipe<S>(
    channel: russh::Channel<russh::client::Msg>,
    sock: S,
    peer: String,
    target: String,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use crate::audit::{Kind, record};
    let name = stats.name.clone();
    record(
        &name,
        Kind::ClientOpened {
            peer: peer.clone(),
            target: target.clone(),
        },
    );
    let (bytes_in, bytes_out) = pipe(channel, sock, stats, shutdown).await;
    record(
        &name,
        Kind::ClientClosed {
            peer,
            target,
            bytes_in,
            bytes_out,
        },
    );
}

/// Copies between an open channel and a local stream until both sides are done, always
/// draining the channel (see the module docs); a client that does not read is closed past
/// [`MAX_QUEUED`]. Returns the bytes it carried: to the client, and from it.
pub async fn pipe<S>(
    channel: russh::Channel<russh::client::Msg>,
    sock: S,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> (u64, u64)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    stats.active.fetch_add(1, Ordering::Relaxed);
    // This connection's own counts (the tunnel's are shared by all its connections).
    let moved = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let (mut from_remote, to_remote) = channel.split();
    let to_remote = Arc::new(to_remote);
    let (mut sock_r, mut sock_w) = tokio::io::split(sock);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let queued = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let conn_done = CancellationToken::new();
    let remote_gone = CancellationToken::new();

    // Pump: the channel is read without pause, whatever the local client does.
    let pump = {
        let (queued, dead, to_remote, done, gone) = (
            Arc::clone(&queued),
            Arc::clone(&dead),
            Arc::clone(&to_remote),
            conn_done.clone(),
            remote_gone.clone(),
        );
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Some(msg) = from_remote.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        if dead.load(Ordering::Relaxed) {
                            continue;
                        }
                        let total = queued.fetch_add(data.len(), Ordering::Relaxed) + data.len();
                        if total > MAX_QUEUED {
                            // The local client stopped reading: give up on this connection only.
                            dead.store(true, Ordering::Relaxed);
                            tx = None;
                            done.cancel();
                            let _ = to_remote.close().await;
                            continue;
                        }
                        if let Some(t) = &tx
                            && t.send(data).is_err()
                        {
                            dead.store(true, Ordering::Relaxed);
                            tx = None;
                            let _ = to_remote.close().await;
                        }
                    }
                    ChannelMsg::Eof => tx = None,
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            // The far end is gone: what is queued still reaches the client, and reading the
            // client stops.
            gone.cancel();
        })
    };

    // Writer: the queue into the local socket.
    let writer = {
        let (queued, dead, stats, done, moved) = (
            Arc::clone(&queued),
            Arc::clone(&dead),
            Arc::clone(&stats),
            conn_done.clone(),
            Arc::clone(&moved),
        );
        async move {
            loop {
                let next = tokio::select! {
                    _ = done.cancelled() => None,
                    b = rx.recv() => b,
                };
                let Some(b) = next else { break };
                // Whatever else is already queued goes out in the same vectored write: one
                // syscall for many SSH packets.
                let mut batch = vec![b];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let len: usize = batch.iter().map(Bytes::len).sum();
                // A client that stops reading blocks this write: the cap (or the end of the
                // connection) must still be able to end it.
                let written = tokio::select! {
                    _ = done.cancelled() => break,
                    r = write_all_vectored(&mut sock_w, &mut batch) => r,
                };
                if written.is_err() {
                    dead.store(true, Ordering::Relaxed);
                    done.cancel();
                    break;
                }
                queued.fetch_sub(len, Ordering::Relaxed);
                stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
                moved.0.fetch_add(len as u64, Ordering::Relaxed);
            }
            let _ = sock_w.shutdown().await;
        }
    };

    // Reader: the local socket into the channel (waits for the SSH window: back-pressure).
    let reader = {
        let (stats, to_remote, done, gone, moved) = (
            Arc::clone(&stats),
            Arc::clone(&to_remote),
            conn_done.clone(),
            remote_gone.clone(),
            Arc::clone(&moved),
        );
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tokio::select! {
                    _ = done.cancelled() => break,
                    _ = gone.cancelled() => break,
                    r = sock_r.read(&mut buf) => r.unwrap_or(0),
                };
                if n == 0 {
                    let _ = to_remote.eof().await;
                    break;
                }
                // Waiting for the SSH window must not outlive the connection.
                let sent = tokio::select! {
                    _ = done.cancelled() => break,
                    _ = gone.cancelled() => break,
                    r = to_remote.data(&buf[..n]) => r,
                };
                if sent.is_err() {
                    done.cancel();
                    break;
                }
                stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                moved.1.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    };

    tokio::select! {
        _ = async { tokio::join!(writer, reader) } => {}
        _ = shutdown.cancelled() => {}
    }
    let _ = to_remote.close().await;
    // The pump ends when the channel is closed; it never blocks the session meanwhile.
    let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
    stats.active.fetch_sub(1, Ordering::Relaxed);
    (
        moved.0.load(Ordering::Relaxed),
        moved.1.load(Ordering::Relaxed),
    )
}

/// Binds a forward's local end: loopback when no address is given (as ssh with
/// GatewayPorts no), a large backlog, a unix socket made 0600.
pub async fn bind(
    listen: &crate::config::forward::Endpoint,
) -> std::io::Result<(Listener, String)> {
    match listen {
        crate::config::forward::Endpoint::Tcp { host, port } => {
            let host = bind_host(host.as_deref());
            let sock = if host.contains(':') {
                tokio::net::TcpSocket::new_v6()?
            } else {
                tokio::net::TcpSocket::new_v4()?
            };
            sock.set_reuseaddr(true)?;
            let addr: std::net::SocketAddr = format!(
                "{}:{port}",
                if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                }
            )
            .parse()
            .map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
            })?;
            sock.bind(addr)
                .map_err(|e| match loopback_alias_hint(host, &e) {
                    Some(hint) => std::io::Error::new(e.kind(), format!("{e}: {hint}")),
                    None => e,
                })?;
            // A large backlog: ssh -L's 128 drops connections under bursts.
            let l = sock.listen(4096)?;
            let local = l.local_addr()?.to_string();
            Ok((Listener::Tcp(l), local))
        }
        crate::config::forward::Endpoint::Unix(path) => {
            let l = bind_unix(path)?;
            Ok((Listener::Unix(l), path.display().to_string()))
        }
    }
}

/// Why a loopback address other than 127.0.0.1 cannot be bound, and the fix: Linux answers
/// for all of 127.0.0.0/8, macOS only for the addresses given to lo0.
fn loopback_alias_hint(host: &str, e: &std::io::Error) -> Option<String> {
    let ip: std::net::Ipv4Addr = host.parse().ok()?;
    (e.kind() == std::io::ErrorKind::AddrNotAvailable
        && ip.is_loopback()
        && ip != std::net::Ipv4Addr::LOCALHOST)
        .then(|| {
            format!(
                "{ip} is not up on loopback (macOS gives lo0 only 127.0.0.1): add it with `sudo ifconfig lo0 alias {ip} up`"
            )
        })
}

/// The address a local end binds: loopback when none is given (as ssh's GatewayPorts=no),
/// all addresses for `*`.
pub fn bind_host(host: Option<&str>) -> &str {
    match host {
        None | Some("") | Some("localhost") => "127.0.0.1",
        Some("*") => "0.0.0.0",
        Some(h) => h,
    }
}

/// umask is per process: one bind at a time changes it.
static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Binds a unix socket 0600 from the start (under umask 0177, so no other user can connect
/// between bind and chmod), in a directory that is ours (or root's) and not writable by
/// others unless sticky. A socket file left by a warren that died (nobody accepts on it) is
/// replaced; one that answers is in use.
fn bind_unix(path: &std::path::Path) -> std::io::Result<UnixSocket> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    crate::fsutil::socket_path_fits(path, "choose a shorter local_socket path")?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let meta = std::fs::metadata(dir)?;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let mode = meta.permissions().mode();
    if !meta.is_dir() || (meta.uid() != me && meta.uid() != 0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of yours: a socket there could be taken over",
                dir.display()
            ),
        ));
    }
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is writable by everyone (and not sticky): another user could replace the socket",
                dir.display()
            ),
        ));
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        let stale = m.file_type().is_socket()
            && matches!(
                std::os::unix::net::UnixStream::connect(path),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            );
        if !stale {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} exists and is in use", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = {
        let _one = UMASK.lock();
        // SAFETY: umask only swaps the process's file mode mask.
        let old = unsafe { libc::umask(0o177) };
        let l = tokio::net::UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        l?
    };
    Ok(UnixSocket {
        listener,
        path: path.to_path_buf(),
    })
}

/// The remote forwards of one session: which local target each port the bastion listens on
/// leads to. Connections the bastion forwards become [`pipe`]s to that target.
pub struct Reverse {
    targets: std::sync::Mutex<std::collections::HashMap<u32, (String, u16)>>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
}

impl Reverse {
    pub fn new(stats: Arc<Stats>, shutdown: CancellationToken) -> Self {
        Reverse {
            targets: std::sync::Mutex::new(std::collections::HashMap::new()),
            stats,
            shutdown,
        }
    }

    /// The bastion listens on `port` for `target`.
    pub fn add(&self, port: u32, target: (String, u16)) {
        if let Ok(mut t) = self.targets.lock() {
            t.insert(port, target);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut t) = self.targets.lock() {
            t.clear();
        }
    }

    /// Where a connection to the bastion's `port` goes, if it is one of ours.
    pub fn target(&self, port: u32) -> Option<(String, u16)> {
        self.targets.lock().ok().and_then(|t| t.get(&port).cloned())
    }
}

impl crate::ssh::handler::Forwarded for Reverse {
    fn wants(&self, port: u32) -> bool {
        self.target(port).is_some()
    }

    /// Connects to the local target and pipes the forwarded channel to it, in its own task.
    fn serve(&self, port: u32, channel: russh::Channel<russh::client::Msg>) {
        let Some(target) = self.target(port) else {
            return;
        };
        let (stats, shutdown) = (Arc::clone(&self.stats), self.shutdown.clone());
        tokio::spawn(async move {
            stats.total.fetch_add(1, Ordering::Relaxed);
            let connected = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect((target.0.as_str(), target.1)),
            )
            .await;
            match connected {
                Ok(Ok(sock)) => {
                    let _ = sock.set_nodelay(true);
                    let (peer, to) = (
                        format!("the bastion's port {port}"),
                        crate::config::forward::Endpoint::tcp(target.0, target.1).to_string(),
                    );
                    audited_pipe(channel, sock, peer, to, stats, shutdown).await;
                }
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".into(),
                    };
                    let _ = channel.close().await;
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    stats.note_failure(format!(
                        "a connection forwarded by the bastion could not reach {}:{}: {why}",
                        target.0, target.1
                    ));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_alias_that_is_not_up_says_how_to_add_it() {
        let e = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        let hint = loopback_alias_hint("127.0.3.17", &e).expect("a hint");
        assert!(
            hint.contains("sudo ifconfig lo0 alias 127.0.3.17 up"),
            "{hint}"
        );
        assert_eq!(loopback_alias_hint("127.0.0.1", &e), None);
        assert_eq!(loopback_alias_hint("10.0.0.1", &e), None);
        assert_eq!(loopback_alias_hint("::1", &e), None);
        let busy = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(loopback_alias_hint("127.0.3.17", &busy), None);
    }
}
