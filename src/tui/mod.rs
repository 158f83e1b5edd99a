//! The terminal client: a client of the engine API only. One task owns the terminal and
//! `select!`s over the keyboard and mouse, the engine's events and a tick that runs only while
//! something on screen moves; it redraws when the state changed. It never waits on the
//! network, and the network never waits on it.
//!
//! - [`app`]: state and `update(app, action) -> effects` (no I/O).
//! - [`view`]: drawing (pure).

pub mod app;
pub mod view;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, KeyEventKind,
    MouseButton, MouseEventKind,
};
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use app::{Action, App, Effect, WIZARD, update};
use view::Theme;

use crate::config::load::FileStatus;
use crate::config::{Catalog, Context, Paths};
use crate::daemon;
use crate::engine::{Engine, Event};

/// Redraws at most this often while something moves (spinner, countdown, sparkline).
const TICK: Duration = Duration::from_millis(250);

fn looked_in(c: &Catalog) -> Vec<String> {
    c.files
        .iter()
        .map(|f| {
            let state = match &f.status {
                FileStatus::Loaded => "read".to_string(),
                FileStatus::Absent => "not there".to_string(),
                FileStatus::Unreadable { error } => error.clone(),
                FileStatus::Invalid => "not valid TOML".to_string(),
            };
            format!("{} ({state})", f.path.display())
        })
        .collect()
}

/// A line log under the state dir: the TUI owns the terminal, so nothing is printed.
struct Log {
    file: Option<std::fs::File>,
    verbose: bool,
}

impl Log {
    fn open(verbose: bool) -> Log {
        let dir = dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
            .map(|d| d.join("warren"));
        let file = dir.and_then(|d| {
            std::fs::create_dir_all(&d).ok()?;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join("warren.log"))
                .ok()
        });
        Log { file, verbose }
    }

    fn event(&mut self, ev: &Event) {
        let line = match ev {
            Event::Stats { .. } | Event::Step { .. } if !self.verbose => return,
            // Prompts carry no secret (answers never come back as events), but keep them short.
            Event::Prompt { name, .. } => format!("prompt for {name}"),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        if let Some(f) = self.file.as_mut() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let _ = writeln!(f, "{t} {line}");
        }
    }
}

/// Runs the TUI until the user quits; tunnels opened in it close on quit.
/// `standalone`: never attach to (or hand tunnels to) a daemon — the demo's world ends with it.
pub async fn run(
    paths: Paths,
    ctx: Arc<Context>,
    verbose: bool,
    standalone: bool,
) -> std::io::Result<()> {
    let catalog = Catalog::load(&paths, Arc::clone(&ctx));
    let mut app = App::new(catalog.connections.clone(), looked_in(&catalog));
    let theme = Theme {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    // The local engine always runs (diagnostics and prompts, and the tunnels when no daemon
    // is there); with a daemon, the tunnels live in it and its events stream in.
    let engine = Engine::start_with(true);
    let (tx, mut events) = tokio::sync::mpsc::channel::<Event>(4096);
    let mut local_events = engine.subscribe();
    let ltx = tx.clone();
    tokio::spawn(async move {
        loop {
            match local_events.recv().await {
                Ok(ev) => {
                    if ltx.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    app.standalone = standalone;
    app.attached = !standalone && attach(&ctx, tx.clone()).await;
    let mut log = Log::open(verbose);

    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let result = loop {
        if dirty {
            if let Err(e) = terminal.draw(|f| view::render(&app, f, theme)) {
                break Err(e);
            }
            dirty = false;
        }
        let action = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind == KeyEventKind::Press => Some(Action::Key(k)),
                Some(Ok(TermEvent::Mouse(m))) => match m.kind {
                    // The list starts under the title line and its border.
                    MouseEventKind::Down(MouseButton::Left) if m.row >= 2 => Some(Action::Click(usize::from(m.row - 2))),
                    MouseEventKind::ScrollUp => Some(Action::ScrollUp),
                    MouseEventKind::ScrollDown => Some(Action::ScrollDown),
                    _ => None,
                },
                Some(Ok(TermEvent::Resize(..))) => {
                    dirty = true;
                    None
                }
                Some(Ok(_)) => None,
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    log.event(&ev);
                    Some(Action::Engine(ev))
                }
                None => break Ok(()),
            },
            _ = tick.tick(), if app.animating() => Some(Action::Tick),
        };
        let Some(action) = action else { continue };
        dirty = true;
        for effect in update(&mut app, action) {
            match effect {
                Effect::Engine(c) => send(&engine, &ctx, app.attached, c).await,
                Effect::Copy(text) => copy_osc52(&text),
                Effect::Setup {
                    answers,
                    passphrase,
                } => {
                    let (epoch, _) = crate::config::load::epoch_path(&paths, &ctx);
                    match run_setup(&answers, passphrase.as_ref(), &ctx, &paths, &epoch) {
                        Ok((name, text)) => {
                            let catalog = Catalog::load(&paths, Arc::clone(&ctx));
                            app.looked_in = looked_in(&catalog);
                            app.set_connections(catalog.connections.clone());
                            app.wizard.done =
                                Some((name, format!("{text}\nsaved in {}", epoch.display())));
                        }
                        Err(e) => {
                            // Back to the key question, with the reason.
                            app.wizard.answers.truncate(WIZARD.len() - 2);
                            app.wizard.passphrase = None;
                            app.wizard.error = Some(e);
                        }
                    }
                }
                Effect::Reload => {
                    let catalog = Catalog::load(&paths, Arc::clone(&ctx));
                    app.looked_in = looked_in(&catalog);
                    app.set_connections(catalog.connections.clone());
                }
            }
        }
        if app.quit {
            break Ok(());
        }
    };
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    // Local tunnels close on quit, unless the user asked to leave them running: then the
    // daemon takes them over (after they are closed here, so their ports are free).
    let open: Vec<String> = app
        .connections
        .iter()
        .filter(|c| app.is_open(&c.display_name))
        .map(|c| c.display_name.clone())
        .collect();
    let _ = tokio::time::timeout(Duration::from_secs(5), engine.shutdown()).await;
    match (app.attached, app.quit_choice) {
        (false, app::QuitChoice::LeaveRunning)
            if !open.is_empty()
                && crate::cli::daemon::ensure_daemon(&ctx, &paths)
                    .await
                    .is_ok() =>
        {
            let _ = daemon::request(&ctx, daemon::Request::Open { names: open }).await;
        }
        (true, app::QuitChoice::CloseAll) => {
            let _ = daemon::request(&ctx, daemon::Request::CloseAll).await;
        }
        _ => {}
    }
    result
}

/// The wizard's answers through the same plan / apply as `warren setup`.
fn run_setup(
    a: &[String],
    passphrase: Option<&crate::config::Secret>,
    ctx: &Context,
    paths: &Paths,
    epoch: &std::path::Path,
) -> Result<(String, String), String> {
    use crate::setup::{self, KeyChoice};
    let [engine, target, name, bastion, jump, key, _passphrase_slot] = a else {
        return Err("the wizard is incomplete".into());
    };
    let key = match key.as_str() {
        "agent" => KeyChoice::Agent,
        p => {
            let path = std::path::PathBuf::from(crate::config::expand::tilde(p, &ctx.home));
            if path.exists() {
                KeyChoice::Existing(path)
            } else {
                KeyChoice::Generate(path)
            }
        }
    };
    // A bastion named by a ~/.ssh/config alias reuses its settings.
    let catalog = Catalog::load(paths, Arc::new(ctx.clone()));
    let from_alias = setup::from_ssh_alias(&catalog.ssh, bastion);
    let bastion = from_alias
        .as_ref()
        .map(|fa| fa.bastion.to_string())
        .unwrap_or_else(|| bastion.clone());
    let jump = Some(jump.as_str()).filter(|j| !j.is_empty());
    let mut plan = setup::plan(name, engine, target, &bastion, jump, key)?;
    // The alias's ProxyJump comes along unless a jump host was given.
    if jump.is_none() {
        plan.jump_alias = from_alias.and_then(|fa| fa.jump_alias);
    }
    let text = setup::apply(&plan, passphrase.map(|p| p.expose()), epoch, false)
        .map_err(|e| e.to_string())?;
    Ok((name.clone(), text))
}

/// Sends a command where the tunnels live: open and close to the daemon when attached (in
/// its own task, so the screen never waits), everything else to the local engine.
async fn send(engine: &Engine, ctx: &Arc<Context>, attached: bool, c: crate::engine::Command) {
    use crate::engine::Command;
    let req = match (&c, attached) {
        (Command::Open(conn), true) => Some(daemon::Request::Open {
            names: vec![conn.display_name.clone()],
        }),
        (Command::Close(name), true) => Some(daemon::Request::Close {
            names: vec![name.clone()],
        }),
        _ => None,
    };
    match req {
        Some(r) => {
            let ctx = Arc::clone(ctx);
            tokio::spawn(async move {
                let _ = daemon::request(&ctx, r).await;
            });
        }
        None => engine.send(c).await,
    }
}

/// Attaches to a running daemon: its tunnels, then its events, go into `tx`. False if none.
async fn attach(ctx: &Arc<Context>, tx: tokio::sync::mpsc::Sender<Event>) -> bool {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let Ok(dir) = daemon::runtime_dir(ctx) else {
        return false;
    };
    let Ok(mut conn) = tokio::net::UnixStream::connect(daemon::socket_path(&dir)).await else {
        return false;
    };
    let hello = format!("{{\"v\": {}, \"cmd\": \"subscribe\"}}\n", daemon::VERSION);
    if conn.write_all(hello.as_bytes()).await.is_err() {
        return false;
    }
    let mut lines = BufReader::new(conn).lines();
    let Ok(Ok(Some(first))) = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
    else {
        return false;
    };
    let Ok(answer) = serde_json::from_str::<daemon::Answer>(&first) else {
        return false;
    };
    if !answer.ok {
        return false;
    }
    for t in answer.tunnels {
        for local in &t.local {
            let _ = tx
                .send(Event::Listening {
                    name: t.name.clone(),
                    local: local.clone(),
                    target: t.target.clone(),
                    via: t.via.clone(),
                })
                .await;
        }
        let _ = tx
            .send(Event::State {
                name: t.name.clone(),
                state: state_of(&t.state),
            })
            .await;
    }
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(ev) = event_of(&v)
                && tx.send(ev).await.is_err()
            {
                return;
            }
        }
    });
    true
}

/// A tunnel state as the daemon's status words it.
fn state_of(s: &str) -> crate::engine::TunnelState {
    use crate::engine::TunnelState;
    match s {
        "up" => TunnelState::Up,
        "connecting" => TunnelState::Connecting,
        s if s.starts_with("reconnecting") => TunnelState::Reconnecting {
            in_secs: 0.0,
            attempt: 0,
        },
        s if s.starts_with("failed") => TunnelState::Failed {
            error: s.trim_start_matches("failed: ").to_string(),
        },
        _ => TunnelState::Down,
    }
}

/// An engine event from the daemon's JSON stream (the kinds it sends).
fn event_of(v: &serde_json::Value) -> Option<Event> {
    use crate::engine::TunnelState;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let name = s("name")?;
    Some(match v.get("event")?.as_str()? {
        "listening" => Event::Listening {
            name,
            local: s("local")?,
            target: s("target").unwrap_or_default(),
            via: s("via").unwrap_or_default(),
        },
        "state" => Event::State {
            name,
            state: match s("state")?.as_str() {
                "up" => TunnelState::Up,
                "connecting" => TunnelState::Connecting,
                "down" => TunnelState::Down,
                "reconnecting" => TunnelState::Reconnecting {
                    in_secs: v.get("in_secs").and_then(|x| x.as_f64()).unwrap_or(0.0),
                    attempt: n("attempt") as u32,
                },
                _ => TunnelState::Failed {
                    error: s("error").unwrap_or_default(),
                },
            },
        },
        "error" => Event::Error {
            name,
            message: s("message")?,
        },
        "warning" => Event::Warning {
            name,
            message: s("message")?,
        },
        "stats" => Event::Stats {
            name,
            bytes_in: n("bytes_in"),
            bytes_out: n("bytes_out"),
            active: n("active"),
            total: n("total"),
            reconnects: n("reconnects"),
            uptime_secs: v.get("uptime_secs").and_then(|x| x.as_f64()),
            last_error: s("last_error"),
        },
        _ => return None,
    })
}

/// Puts text on the terminal's clipboard with OSC 52 (works over SSH and in tmux with
/// set-clipboard on).
fn copy_osc52(text: &str) {
    use base64ct::{Base64, Encoding};
    let mut out = std::io::stdout();
    let _ = write!(
        out,
        "\x1b]52;c;{}\x07",
        Base64::encode_string(text.as_bytes())
    );
    let _ = out.flush();
}
