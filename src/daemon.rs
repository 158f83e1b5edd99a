//! The per-user daemon that owns an engine, so tunnels outlive the terminal that opened them,
//! and its control socket: JSON lines, one request and one answer each, versioned.
//!
//! The socket lives in `$XDG_RUNTIME_DIR/warren` (else the state dir), a 0700 directory that
//! must belong to the user; the socket is 0600. An exclusive lock on `daemon.lock` keeps a
//! second daemon out; a socket file left by a dead daemon is removed. A request longer than
//! [`MAX_REQUEST`] or not valid JSON gets an error answer; the daemon keeps serving.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use crate::config::{Catalog, Context, Paths};
use crate::engine::{Command, Engine, Event, TunnelState};

/// The protocol version; a client of another version gets a clear error.
pub const VERSION: u32 = 1;
/// The longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Open {
        names: Vec<String>,
    },
    Close {
        names: Vec<String>,
    },
    CloseAll,
    Status,
    /// Answers with the tunnels, then streams the engine's events (JSON lines) on this
    /// connection until it closes: how the TUI attaches.
    Subscribe,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    #[serde(flatten)]
    req: Request,
}

/// One tunnel as `warren status` shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub name: String,
    pub state: String,
    pub local: Vec<String>,
    pub target: String,
    pub via: String,
    pub uptime_secs: Option<f64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub tunnels: Vec<TunnelStatus>,
}

impl Answer {
    fn error(e: impl Into<String>) -> Self {
        Answer {
            v: VERSION,
            ok: false,
            error: Some(e.into()),
            tunnels: Vec::new(),
        }
    }
}

/// The directory of the control socket, created 0700 and checked to be ours.
pub fn runtime_dir(ctx: &Context) -> std::io::Result<PathBuf> {
    let base = ctx
        .var("XDG_RUNTIME_DIR")
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .or_else(dirs::state_dir)
        .unwrap_or_else(|| ctx.home.join(".local/state"));
    let dir = base.join("warren");
    std::fs::create_dir_all(&dir)?;
    let meta = std::fs::metadata(&dir)?;
    if meta.uid() != ctx.uid {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user (uid {}): refusing to use it",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// The daemon's lock: held as long as the returned file is open.
fn lock(dir: &Path) -> std::io::Result<std::fs::File> {
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

/// What the daemon knows of its tunnels, from the engine's events.
#[derive(Default)]
struct Known {
    tunnels: HashMap<String, TunnelStatus>,
}

impl Known {
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Listening {
                name,
                local,
                target,
                via,
            } => {
                let t = self
                    .tunnels
                    .entry(name.clone())
                    .or_insert_with(|| TunnelStatus {
                        name: name.clone(),
                        ..Default::default()
                    });
                if !t.local.contains(local) {
                    t.local.push(local.clone());
                }
                t.target = target.clone();
                t.via = via.clone();
            }
            Event::State { name, state } => {
                if *state == TunnelState::Down {
                    self.tunnels.remove(name);
                } else if let Some(t) = self.tunnels.get_mut(name) {
                    t.state = state.to_string();
                    if let TunnelState::Failed { error } = state {
                        t.last_error = Some(error.clone());
                    }
                }
            }
            Event::Error { name, message } => {
                if let Some(t) = self.tunnels.get_mut(name) {
                    t.last_error = Some(message.clone());
                }
            }
            Event::Stats {
                name,
                bytes_in,
                bytes_out,
                reconnects,
                uptime_secs,
                ..
            } => {
                if let Some(t) = self.tunnels.get_mut(name) {
                    t.bytes_in = *bytes_in;
                    t.bytes_out = *bytes_out;
                    t.reconnects = *reconnects;
                    t.uptime_secs = *uptime_secs;
                }
            }
            _ => {}
        }
    }
}

/// Runs the daemon until no tunnel is left after a close; `paths` are re-read on every open.
pub async fn serve(paths: Paths, ctx: Arc<Context>) -> std::io::Result<()> {
    let dir = runtime_dir(&ctx)?;
    let _lock = lock(&dir)?;
    let sock = socket_path(&dir);
    // We hold the lock: any socket file is a dead daemon's.
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    let engine = Engine::start();
    let known = Arc::new(Mutex::new(Known::default()));
    let mut events = engine.subscribe();
    let k = Arc::clone(&known);
    tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            k.lock().await.event(&ev);
        }
    });
    let stop = tokio_util::sync::CancellationToken::new();
    // Attached clients (the TUI): the daemon stays while any is there.
    let subscribers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((conn, _)) = accepted else { continue };
        let (engine, known, paths, ctx, stop) = (
            engine.clone(),
            Arc::clone(&known),
            paths.clone(),
            Arc::clone(&ctx),
            stop.clone(),
        );
        let subs = Arc::clone(&subscribers);
        tokio::spawn(async move {
            let _ = client_session(conn, &engine, &known, &paths, &ctx, &stop, &subs).await;
        });
    }
    engine.shutdown().await;
    let _ = std::fs::remove_file(&sock);
    Ok(())
}

async fn client_session(
    conn: UnixStream,
    engine: &Engine,
    known: &Mutex<Known>,
    paths: &Paths,
    ctx: &Arc<Context>,
    stop: &tokio_util::sync::CancellationToken,
    subscribers: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    let (r, mut w) = conn.into_split();
    let mut r = BufReader::new(r.take(MAX_REQUEST as u64 + 1));
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).await?;
        if n == 0 {
            return Ok(());
        }
        if line.contains("\"subscribe\"") && line.len() <= MAX_REQUEST {
            let mut events = engine.subscribe();
            let answer = handle(&line, engine, known, paths, ctx, stop, subscribers).await;
            w.write_all(
                format!("{}\n", serde_json::to_string(&answer).unwrap_or_default()).as_bytes(),
            )
            .await?;
            if answer.ok {
                subscribers.fetch_add(1, Ordering::Relaxed);
                let streamed: std::io::Result<()> = async {
                    loop {
                        match events.recv().await {
                            Ok(ev) => {
                                // Diagnostics and prompts stay with the client that asked for them.
                                if matches!(
                                    ev,
                                    Event::Step { .. }
                                        | Event::Diagnosed { .. }
                                        | Event::Prompt { .. }
                                ) {
                                    continue;
                                }
                                let text = serde_json::to_string(&ev).unwrap_or_default();
                                w.write_all(format!("{text}\n").as_bytes()).await?;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return Ok(()),
                        }
                    }
                }
                .await;
                // The client left: with nothing running and nobody attached, the daemon goes.
                if subscribers.fetch_sub(1, Ordering::Relaxed) == 1
                    && known.lock().await.tunnels.is_empty()
                {
                    stop.cancel();
                }
                return streamed;
            }
            return Ok(());
        }
        let answer = if line.len() > MAX_REQUEST {
            let a = Answer::error(format!("request longer than {MAX_REQUEST} bytes"));
            w.write_all(format!("{}\n", serde_json::to_string(&a).unwrap_or_default()).as_bytes())
                .await?;
            return Ok(());
        } else {
            handle(&line, engine, known, paths, ctx, stop, subscribers).await
        };
        w.write_all(format!("{}\n", serde_json::to_string(&answer).unwrap_or_default()).as_bytes())
            .await?;
    }
}

async fn handle(
    line: &str,
    engine: &Engine,
    known: &Mutex<Known>,
    paths: &Paths,
    ctx: &Arc<Context>,
    stop: &tokio_util::sync::CancellationToken,
    subscribers: &std::sync::atomic::AtomicUsize,
) -> Answer {
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Answer::error(format!("not a JSON request: {e}")),
    };
    let v = value.get("v").and_then(|v| v.as_u64()).unwrap_or(0);
    if v != u64::from(VERSION) {
        return Answer::error(format!(
            "protocol version {v}, but this daemon speaks version {VERSION}: run the same warren for both (warren down --all, then start again)"
        ));
    }
    let req: Envelope = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return Answer::error(format!("not a request this daemon knows: {e}")),
    };
    match req.req {
        Request::Open { names } => {
            let catalog = Catalog::load(paths, Arc::clone(ctx));
            let mut conns = Vec::new();
            for n in &names {
                match catalog.find(n) {
                    Ok(c) => conns.push(c.clone()),
                    Err(e) => return Answer::error(e.to_string()),
                }
            }
            for c in conns {
                engine.send(Command::Open(Box::new(c))).await;
            }
            // Answer once each tunnel is up or failed (bounded).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let done = {
                    let k = known.lock().await;
                    names.iter().all(|n| {
                        k.tunnels
                            .get(n)
                            .is_some_and(|t| t.state == "up" || t.state.starts_with("failed"))
                    })
                };
                if done || tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            status(known, Some(&names)).await
        }
        Request::Close { names } => {
            for n in &names {
                engine.send(Command::Close(n.clone())).await;
            }
            settle_and_maybe_stop(known, stop, subscribers).await
        }
        Request::CloseAll => {
            let names: Vec<String> = known.lock().await.tunnels.keys().cloned().collect();
            for n in names {
                engine.send(Command::Close(n)).await;
            }
            settle_and_maybe_stop(known, stop, subscribers).await
        }
        Request::Status | Request::Subscribe => status(known, None).await,
    }
}

async fn settle_and_maybe_stop(
    known: &Mutex<Known>,
    stop: &tokio_util::sync::CancellationToken,
    subscribers: &std::sync::atomic::AtomicUsize,
) -> Answer {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = status(known, None).await;
    if answer.tunnels.is_empty() && subscribers.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        // Nothing left to keep alive: the daemon goes away.
        stop.cancel();
    }
    answer
}

async fn status(known: &Mutex<Known>, only: Option<&[String]>) -> Answer {
    let k = known.lock().await;
    let mut tunnels: Vec<TunnelStatus> = k
        .tunnels
        .values()
        .filter(|t| only.is_none_or(|o| o.contains(&t.name)))
        .cloned()
        .collect();
    tunnels.sort_by(|a, b| a.name.cmp(&b.name));
    Answer {
        v: VERSION,
        ok: true,
        error: None,
        tunnels,
    }
}

/// Sends one request to a running daemon.
pub async fn request(ctx: &Context, req: Request) -> std::io::Result<Answer> {
    let sock = socket_path(&runtime_dir(ctx)?);
    let mut conn = UnixStream::connect(&sock).await?;
    let line =
        serde_json::to_string(&Envelope { v: VERSION, req }).map_err(std::io::Error::other)?;
    conn.write_all(format!("{line}\n").as_bytes()).await?;
    let mut r = BufReader::new(conn);
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(60), r.read_line(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("the daemon did not answer"))??;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}
