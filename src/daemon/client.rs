//! The client side of the daemon: one connection carries requests (each answered by id) and,
//! once subscribed, the engine's events, read by one task that hands replies to whoever
//! waits for them and events to a broadcast channel, as a local engine does. Lines from the
//! daemon are bounded too ([`MAX_FRAME`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::protocol::{
    Envelope, Frame, Line, MAX_FRAME, Reply, Request, VERSION, WireAnswer, encode, read_line,
};
use super::{remembered, runtime_dir, socket_path};
use crate::config::{Context, Paths};
use crate::engine::{EVENT_BUFFER, Event, TunnelStatus};
use crate::prompt::Answer;

/// Requests waiting for their reply; `None` once the connection is gone (a request made
/// then fails at once instead of waiting for a reply that cannot come).
type Waiting = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

/// The connection is gone: every request waiting gets an error (its reply's sender is
/// dropped), and later ones fail.
fn gone(waiting: &Waiting) {
    if let Ok(mut w) = waiting.lock() {
        w.take();
    }
}

/// A connection to the daemon.
#[derive(Clone)]
pub struct DaemonClient {
    /// Lines to send: zeroized once written, as one may carry an answer's secret.
    lines: mpsc::Sender<Zeroizing<Vec<u8>>>,
    waiting: Waiting,
    next: Arc<AtomicU64>,
    events: broadcast::Sender<Arc<Event>>,
}

impl DaemonClient {
    /// Connects to a running daemon; `Err` if none answers.
    /// The daemon, or why not: none runs, or one may run but cannot be reached (its
    /// directory belongs to another user, a permission, another error).
    pub async fn reach(ctx: &Context) -> Result<DaemonClient, Unreachable> {
        let dir = runtime_dir(ctx).map_err(|e| Unreachable::Refused(e.to_string()))?;
        let sock = socket_path(&dir);
        match DaemonClient::connect(ctx).await {
            Ok(c) => Ok(c),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(Unreachable::None)
            }
            Err(e) => Err(Unreachable::Refused(format!("{}: {e}", sock.display()))),
        }
    }

    pub async fn connect(ctx: &Context) -> std::io::Result<DaemonClient> {
        let sock = socket_path(&runtime_dir(ctx)?);
        let conn = UnixStream::connect(&sock).await?;
        let (r, mut w) = conn.into_split();
        let (lines, mut lq) = mpsc::channel::<Zeroizing<Vec<u8>>>(64);
        let waiting: Waiting = Arc::new(Mutex::new(Some(HashMap::new())));
        let ww = Arc::clone(&waiting);
        tokio::spawn(async move {
            while let Some(l) = lq.recv().await {
                if w.write_all(&l).await.is_err() {
                    gone(&ww);
                    return;
                }
            }
        });
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (wt, ev) = (Arc::clone(&waiting), events.clone());
        tokio::spawn(async move {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            // A line cut short or too long means the daemon is not speaking the protocol.
            while let Ok(Line::Complete) = read_line(&mut r, &mut buf, MAX_FRAME).await {
                match serde_json::from_slice::<Frame>(&buf) {
                    Ok(Frame::Reply { id, reply, .. }) => {
                        let tx = wt
                            .lock()
                            .ok()
                            .and_then(|mut w| w.as_mut().and_then(|m| m.remove(&id)));
                        if let Some(tx) = tx {
                            let _ = tx.send(reply);
                        }
                    }
                    Ok(Frame::Event { event, .. }) => {
                        let _ = ev.send(Arc::new(event));
                    }
                    Err(_) => {}
                }
            }
            // The daemon went: whoever waits gets an error.
            gone(&wt);
        });
        Ok(DaemonClient {
            lines,
            waiting,
            next: Arc::new(AtomicU64::new(1)),
            events,
        })
    }

    /// Sends a request and waits for its reply (an open waits for its tunnels to settle:
    /// `wait` bounds it).
    pub async fn request(&self, req: Request, wait: Duration) -> std::io::Result<Reply> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let live = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.as_mut().map(|m| m.insert(id, tx)))
            .is_some();
        if !live {
            return Err(std::io::Error::other("the daemon closed the connection"));
        }
        // Room for any answer up front, so the buffer is not grown (which would leave a copy
        // of a secret in the memory it moved from).
        let mut line = Zeroizing::new(Vec::with_capacity(4096));
        encode(
            &Envelope {
                v: VERSION,
                id,
                req,
            },
            &mut line,
        )?;
        self.lines
            .send(line)
            .await
            .map_err(|_| std::io::Error::other("the daemon closed the connection"))?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(std::io::Error::other("the daemon closed the connection")),
            Err(_) => {
                if let Ok(mut w) = self.waiting.lock()
                    && let Some(m) = w.as_mut()
                {
                    m.remove(&id);
                }
                Err(std::io::Error::other("the daemon did not answer in time"))
            }
        }
    }

    /// Starts the event stream; `answers`: this client answers questions. Returns the
    /// tunnels as they are now and the events from here on.
    pub async fn subscribe(
        &self,
        answers: bool,
    ) -> std::io::Result<(Vec<TunnelStatus>, broadcast::Receiver<Arc<Event>>)> {
        let rx = self.events.subscribe();
        let r = self
            .request(Request::Subscribe { answers }, Duration::from_secs(10))
            .await?;
        Ok((r.tunnels, rx))
    }

    pub async fn answer(&self, id: u64, answer: Answer) -> std::io::Result<Reply> {
        self.request(
            Request::Answer {
                question: id,
                answer: WireAnswer::from(answer),
            },
            Duration::from_secs(10),
        )
        .await
    }

    pub fn events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

/// Why no daemon answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// None runs (no socket, or nobody listens on it).
    None,
    /// One may run, but warren cannot reach it: why.
    Refused(String),
}

/// How long a request other than an open may take.
pub const QUICK: Duration = Duration::from_secs(30);
/// An open waits for its tunnels to be up or failed: connects are bounded, and so are the
/// questions a person may be asked on the way.
pub const OPEN: Duration = Duration::from_secs(15 * 60);

/// Starts the daemon (in its own session, so it outlives this terminal) unless one answers.
pub async fn ensure_daemon(ctx: &Context, paths: &Paths) -> Result<(), String> {
    if DaemonClient::connect(ctx).await.is_ok() {
        return Ok(());
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find warren's own binary: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    for (flag, value) in [
        ("--ssh-config", &paths.ssh_config),
        ("--config", &paths.epoch),
        ("--known-hosts", &paths.known_hosts),
    ] {
        if let Some(v) = value {
            cmd.arg(flag).arg(v);
        }
    }
    // The daemon works in `/`: the epoch.toml this client would read is named to it by its
    // absolute path, and a directory's own one keeps its need for trust.
    if paths.epoch.is_none() {
        let (found, explicit) = crate::config::load::epoch_path(paths, ctx);
        if found.exists() {
            cmd.arg("--config")
                .arg(crate::config::trust::absolute(&found));
            if !explicit && found == std::path::Path::new("epoch.toml") {
                cmd.arg("--project-config");
            }
        }
    } else if paths.epoch_is_project {
        cmd.arg("--project-config");
    }
    // The daemon says "ready" on its stdout once it listens (then lets go of it).
    cmd.arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe and the child calls nothing else before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    let stdout = child.stdout.take();
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        if let Some(out) = stdout {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    // The daemon lives on in its own session; reap it if it already exited.
    let _ = child.try_wait();
    if line.trim() == "ready" {
        return Ok(());
    }
    // Another warren started one at the same moment: that one serves.
    if DaemonClient::connect(ctx).await.is_ok() {
        return Ok(());
    }
    Err("the daemon did not start (see warren logs)".into())
}

/// A daemon that died left tunnels it was running: start one, which opens them again.
pub async fn recover(ctx: &Context, paths: &Paths) -> Result<bool, String> {
    let dir = runtime_dir(ctx).map_err(|e| e.to_string())?;
    if remembered(&dir).is_empty() || DaemonClient::connect(ctx).await.is_ok() {
        return Ok(false);
    }
    ensure_daemon(ctx, paths).await.map(|()| true)
}
