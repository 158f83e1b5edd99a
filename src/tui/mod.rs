//! The terminal client. Its tunnels live where [`Backend`] says: in the per-user daemon when
//! one runs (attached: its events stream in, and the TUI answers its questions), else in an
//! engine in this process; diagnostics always run here. One task owns the terminal and
//! `select!`s over the keyboard and mouse, the events and a tick that runs only while
//! something on screen moves; it redraws when the state changed. It never waits on the
//! network (commands go out in their own tasks), and the network never waits on it. It logs
//! through [`crate::logging`] (`warren.log`), never to the screen.
//!
//! - state, no I/O: [`app`] (`update(app, action) -> effects`), [`rows`] (filter, sort,
//!   groups), [`live`] (counters, timelines), [`questions`] (the engine's questions),
//!   [`wizard`] (the setup form), [`keys`] (the one key table), [`commands`] (what the keys
//!   do), [`layout`] (where things go).
//! - drawing, pure: [`view`] (the main screen), [`table`] (the list's columns), [`details`],
//!   [`overlays`] (help, history, diagnostics, questions), [`wizard_view`], [`theme`], [`fit`]
//!   (cutting with `…` and wrapping).
//! - [`apply`]: the setup form's answers carried out (files read and written, by the loop).
//! - [`handover`]: `q`, `l`: the open tunnels handed to the daemon (the loop runs it in a
//!   task; the TUI quits once the daemon has them up).

pub mod app;
pub mod apply;
pub mod commands;
pub mod details;
pub mod fit;
pub mod handover;
pub mod keys;
pub mod layout;
pub mod live;
pub mod overlays;
pub mod questions;
pub mod reload;
pub mod rows;
mod signals;
pub mod table;
pub mod theme;
pub mod view;
pub mod wizard;
pub mod wizard_view;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, KeyEventKind,
    MouseButton, MouseEventKind,
};
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use app::{Action, App, Effect, update};
use theme::Theme;

use crate::backend::Backend;
use crate::config::{Catalog, Context, Paths};
use crate::daemon::client::DaemonClient;
use crate::engine::{Command, Engine, Event};
use crate::settings::Settings;

/// Redraws at most this often while something moves (spinner, countdown, sparkline).
const TICK: Duration = Duration::from_millis(250);

fn looked_in(c: &Catalog) -> Vec<String> {
    c.files
        .iter()
        .map(|f| {
            let state = f.state("read");
            format!("{} ({state})", f.path.display())
        })
        .collect()
}

/// Reads the config files, with the settings' defaults applied: what the list takes, and the
/// files to watch.
fn read(
    paths: &Paths,
    ctx: Arc<Context>,
    settings: &Settings,
) -> (reload::Loaded, Vec<std::path::PathBuf>) {
    let mut catalog = Catalog::load(paths, ctx);
    settings.apply(&mut catalog.connections);
    let files = crate::watch::files(&catalog);
    let loaded = reload::Loaded {
        errors: reload::errors(&catalog),
        looked_in: looked_in(&catalog),
        connections: catalog.connections,
        broken: catalog.broken,
    };
    (loaded, files)
}

/// Reads the config files again into the app (`r`, a setup, the start); the files to watch.
fn reload(
    app: &mut App,
    paths: &Paths,
    ctx: &Arc<Context>,
    settings: &Settings,
) -> Vec<std::path::PathBuf> {
    let (loaded, files) = read(paths, Arc::clone(ctx), settings);
    reload::apply(app, loaded, false);
    files
}

/// Watches the config files and, when one changes, reads them again off the screen's task (a
/// `Match exec` may take seconds) and hands the result to the loop. Files an Include brings
/// in later are watched from then on.
fn watch_config(
    files: Vec<std::path::PathBuf>,
    paths: Paths,
    ctx: Arc<Context>,
    settings: Arc<Settings>,
    tx: tokio::sync::mpsc::Sender<Action>,
) -> Option<tokio::task::JoinHandle<()>> {
    let Ok(mut watcher) = crate::watch::ConfigWatcher::new(files) else {
        tracing::warn!("cannot watch the config files: r reloads them");
        return None;
    };
    Some(tokio::spawn(async move {
        while watcher.changed().await.is_some() {
            let (p, c, s) = (paths.clone(), Arc::clone(&ctx), Arc::clone(&settings));
            let Ok((loaded, files)) = tokio::task::spawn_blocking(move || read(&p, c, &s)).await
            else {
                continue;
            };
            tracing::info!("config files changed: read again");
            watcher.watch(files);
            if tx.send(Action::Loaded(loaded)).await.is_err() {
                return;
            }
        }
    }))
}

/// Runs the TUI until the user quits; tunnels opened in it close on quit.
/// `demo`: on the demo world (started here, removed on quit) instead of `paths`, never
/// attached to (or handing tunnels to) a daemon — the demo's world ends with it.
pub async fn run(
    paths: Paths,
    ctx: Arc<Context>,
    verbose: bool,
    demo: bool,
) -> std::io::Result<()> {
    crate::logging::init(&ctx, "warren.log", verbose);
    if !demo {
        crate::audit::install(&ctx);
    }
    let mut world = if demo {
        Some(crate::demo::start().await?)
    } else {
        None
    };
    let mut paths = world.as_ref().map(|w| w.paths.clone()).unwrap_or(paths);
    let settings = Settings::load(&ctx);
    for p in &settings.problems {
        tracing::warn!("{p}");
    }
    let mut app = App::new(Vec::new(), Vec::new());
    let files = reload(&mut app, &paths, &ctx, &settings);
    let settings = Arc::new(settings);
    let (loaded_tx, mut loaded) = tokio::sync::mpsc::channel::<Action>(4);
    let mut watching = watch_config(
        files,
        paths.clone(),
        Arc::clone(&ctx),
        Arc::clone(&settings),
        loaded_tx.clone(),
    );
    app.utc_offset = live::local_offset();
    app.apply_settings(&settings);
    let theme = Theme::from_env(
        settings.theme.value,
        std::env::var_os("NO_COLOR").as_deref(),
    );
    app.standalone = demo;
    // Diagnostics always run here (they ask nobody). The tunnels live in the daemon when one
    // runs (a daemon that died with tunnels is replaced first), else in this process.
    let local = Engine::start_with(true);
    let remote = if demo {
        None
    } else {
        attach(&ctx, &paths).await
    };
    // The queue's bound: the engines' broadcasts lag (and skip) before it fills.
    let (tx, mut events) = tokio::sync::mpsc::channel::<Event>(4096);
    let mut backend = match remote {
        Some((client, tunnels)) => {
            app.attached = true;
            for t in tunnels {
                for ev in status_events(t) {
                    update(&mut app, Action::Engine(ev));
                }
            }
            forward(client.events(), tx.clone(), |_| true);
            // The local engine has no tunnels: only its diagnostics matter.
            forward(local.subscribe(), tx.clone(), |e| {
                matches!(e, Event::Step { .. } | Event::Diagnosed { .. })
            });
            Backend::Remote(client)
        }
        None => {
            forward(local.subscribe(), tx.clone(), |_| true);
            Backend::Local(local.clone())
        }
    };

    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    if let Ok(size) = terminal.size() {
        update(&mut app, Action::Resize(size.width, size.height));
    }
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut signals = signals::Signals::new();
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
                    MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(m.row)),
                    MouseEventKind::ScrollUp => Some(Action::ScrollUp),
                    MouseEventKind::ScrollDown => Some(Action::ScrollDown),
                    _ => None,
                },
                Some(Ok(TermEvent::Resize(w, h))) => Some(Action::Resize(w, h)),
                Some(Ok(_)) => None,
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    log_event(&ev);
                    Some(Action::Engine(ev))
                }
                None => break Ok(()),
            },
            Some(a) = loaded.recv() => Some(a),
            _ = tick.tick(), if app.animating() => Some(Action::Tick),
            name = signals.recv() => {
                tracing::info!("{name}: quitting as q does");
                break Ok(());
            }
        };
        let Some(action) = action else { continue };
        dirty = true;
        for effect in update(&mut app, action) {
            match effect {
                Effect::Engine(c) => dispatch(&backend, &local, c).await,
                Effect::Copy(text) => copy_osc52(&text),
                Effect::Connect { conn, local } => {
                    // The client gets the terminal: the TUI's screen, raw mode, mouse and
                    // key reader step aside, and come back when it exits.
                    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
                    drop(input);
                    ratatui::restore();
                    let said = run_client(&conn, &local).await;
                    signals.forget_terminal_keys();
                    terminal = ratatui::init();
                    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
                    let _ = terminal.clear();
                    input = EventStream::new();
                    tracing::info!(tunnel = %conn.display_name, "{said}");
                    app.message = Some(said);
                }
                Effect::Notify {
                    text,
                    bell,
                    desktop,
                } => notify(&text, bell, desktop),
                Effect::Review(answers) => {
                    let r = apply::review(&answers, &ctx, &paths);
                    update(&mut app, Action::Reviewed(r));
                }
                Effect::WriteInstructions { name, text } => {
                    let said = match apply::write_instructions(&name, &text, &ctx) {
                        Ok(p) => format!("wrote {}", p.display()),
                        Err(e) => format!("✘ {e}"),
                    };
                    app.wizard.said(said);
                }
                Effect::Setup(answers) => {
                    let r = apply::save(&answers, &ctx, &paths);
                    if r.is_ok() {
                        reload(&mut app, &paths, &ctx, &settings);
                    }
                    update(&mut app, Action::SetUp(r));
                }
                Effect::Demo if world.is_none() => match crate::demo::start().await {
                    Ok(w) => {
                        tracing::info!("the demo started");
                        paths = w.paths.clone();
                        world = Some(w);
                        // The demo's tunnels live here, and close with the TUI.
                        if app.attached {
                            forward(local.subscribe(), tx.clone(), |e| {
                                !matches!(e, Event::Step { .. } | Event::Diagnosed { .. })
                            });
                            backend = Backend::Local(local.clone());
                            app.attached = false;
                        }
                        app.standalone = true;
                        let files = reload(&mut app, &paths, &ctx, &settings);
                        if let Some(w) = watching.take() {
                            w.abort();
                        }
                        watching = watch_config(
                            files,
                            paths.clone(),
                            Arc::clone(&ctx),
                            Arc::clone(&settings),
                            loaded_tx.clone(),
                        );
                        app.select_first();
                        app.message = Some(
                            "the demo: Enter opens demo-db, d diagnoses; it is removed on quit"
                                .into(),
                        );
                    }
                    Err(e) => app.message = Some(format!("the demo could not start: {e}")),
                },
                Effect::Demo => {}
                Effect::HandOver(conns) => {
                    let (ctx, paths, local, back) = (
                        Arc::clone(&ctx),
                        paths.clone(),
                        local.clone(),
                        loaded_tx.clone(),
                    );
                    tokio::spawn(async move {
                        let r = handover::hand_over(&ctx, &paths, &local, &conns).await;
                        let _ = back.send(Action::HandedOver(r)).await;
                    });
                }
                Effect::Reload => {
                    reload(&mut app, &paths, &ctx, &settings);
                }
            }
        }
        if app.quit {
            break Ok(());
        }
    };
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    // Local tunnels close on quit (those left running are the daemon's by now: see
    // [`handover`]).
    let _ = tokio::time::timeout(Duration::from_secs(5), local.shutdown()).await;
    if (app.attached, app.quit_choice) == (true, app::QuitChoice::CloseAll) {
        let _ = backend.close(Vec::new()).await;
    }
    if let Some(w) = world {
        w.stop().await;
    }
    result
}

/// Tells the user something happened: the terminal's bell, and/or a desktop notification
/// through the terminal (OSC 777: foot, WezTerm, urxvt, VTE terminals; OSC 9: iTerm2,
/// Windows Terminal).
fn notify(text: &str, bell: bool, desktop: bool) {
    let mut out = std::io::stdout();
    if desktop {
        // The text is the engine's: no control character may reach the terminal, and a ';'
        // would end the field. iTerm2 and Windows Terminal take OSC 9; most others OSC 777.
        let body = crate::text::escape(text).replace(';', ",");
        let osc9 = std::env::var("TERM_PROGRAM").is_ok_and(|t| t == "iTerm.app")
            || std::env::var_os("WT_SESSION").is_some();
        if osc9 {
            let _ = write!(out, "\x1b]9;{body}\x1b\\");
        } else {
            let _ = write!(out, "\x1b]777;notify;warren;{body}\x1b\\");
        }
    }
    if bell {
        let _ = write!(out, "\x07");
    }
    let _ = out.flush();
}

/// Runs the connection's database client at `local` with the terminal (the TUI has stepped
/// aside); what to say when it is done.
async fn run_client(conn: &crate::config::Connection, local: &str) -> String {
    use crate::handoff::Parts;
    use crate::handoff::run::{local_of, not_installed, spawn_and_wait};
    let Some(local) = local_of(&[local.to_string()]) else {
        return format!("{} does not listen on a TCP port", conn.display_name);
    };
    let parts = match Parts::of(conn, &local, false) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    let (program, args) = match parts.client() {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    if let Some(missing) = not_installed(program) {
        return missing;
    }
    println!(
        "warren: {program} on {} at {}:{} (exit it to come back to warren)",
        crate::text::escape(&conn.display_name),
        local.host,
        local.port
    );
    let mut err = Vec::new();
    let code = spawn_and_wait(program, &args, &parts.env(), &mut err).await;
    let err = String::from_utf8_lossy(&err);
    match err.lines().next() {
        Some(e) => crate::text::escape(e).into_owned(),
        None => format!("{program} exited with {code}"),
    }
}

/// Carries out an engine command where it belongs, without making the screen wait:
/// tunnels and answers go to the backend (in their own tasks), diagnostics to the local
/// engine.
async fn dispatch(backend: &Backend, local: &Engine, c: Command) {
    let b = backend.clone();
    match c {
        Command::Open { conn, .. } => {
            tracing::info!(tunnel = %conn.display_name, "open asked");
            // Through a daemon, the daemon records who asked.
            if matches!(b, Backend::Local(_)) {
                let by = crate::audit::By::Tui;
                crate::audit::record(&conn.display_name, crate::audit::Kind::OpenRequested { by });
            }
            tokio::spawn(async move {
                let _ = b.open(&conn).await;
            });
        }
        Command::Close { names, .. } => {
            tracing::info!("close asked: {}", names.join(", "));
            if matches!(b, Backend::Local(_)) {
                for n in &names {
                    let by = crate::audit::By::Tui;
                    crate::audit::record(n, crate::audit::Kind::CloseRequested { by });
                }
            }
            tokio::spawn(async move {
                let _ = b.close(names).await;
            });
        }
        Command::Reconnect { names } => {
            tracing::info!("reconnect asked");
            tokio::spawn(async move {
                let _ = b.reconnect(names).await;
            });
        }
        Command::Answer { id, answer } => {
            tokio::spawn(async move { b.answer(id, answer).await });
        }
        Command::Extend { name, secs } => {
            tracing::info!(tunnel = %name, "extend asked");
            tokio::spawn(async move {
                let _ = b.extend(name, secs).await;
            });
        }
        other => local.send(other).await,
    }
}

/// Attaches to the daemon (starting one that died with tunnels first): the client and the
/// tunnels it runs. None if no daemon runs.
async fn attach(
    ctx: &Arc<Context>,
    paths: &Paths,
) -> Option<(DaemonClient, Vec<crate::engine::TunnelStatus>)> {
    let _ = crate::daemon::client::recover(ctx, paths).await;
    let client = DaemonClient::connect(ctx).await.ok()?;
    let (tunnels, _) = client.subscribe(true).await.ok()?;
    tracing::info!("attached to the daemon ({} tunnels)", tunnels.len());
    Some((client, tunnels))
}

/// A tunnel the daemon already runs, as the events that would have told its story.
fn status_events(t: crate::engine::TunnelStatus) -> Vec<Event> {
    let mut out: Vec<Event> = t
        .local
        .iter()
        .map(|l| Event::Listening {
            name: t.name.clone(),
            local: l.clone(),
            target: t.target.clone(),
            via: t.via.clone(),
        })
        .collect();
    out.push(Event::Stats {
        name: t.name.clone(),
        stats: t.stats.clone(),
    });
    out.push(Event::State {
        name: t.name,
        state: t.state,
    });
    out
}

/// Passes a broadcast of events into the TUI's queue (those `keep` keeps) until either ends.
fn forward(
    mut from: tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    to: tokio::sync::mpsc::Sender<Event>,
    keep: fn(&Event) -> bool,
) {
    tokio::spawn(async move {
        loop {
            match from.recv().await {
                Ok(ev) if keep(&ev) => {
                    if to.send(std::sync::Arc::unwrap_or_clone(ev)).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// The TUI's own log: state changes and trouble (stats and steps with -v). Questions are
/// logged by their tunnel only; answers never.
fn log_event(ev: &Event) {
    match ev {
        Event::State { name, state } => tracing::info!(tunnel = %name, "{state}"),
        Event::Error { name, message } => tracing::warn!(tunnel = %name, "error: {message}"),
        Event::Warning { name, message } => tracing::warn!(tunnel = %name, "{message}"),
        Event::Listening {
            name,
            local,
            target,
            ..
        } => {
            tracing::info!(tunnel = %name, "listening on {local} for {target}")
        }
        Event::Prompt { name, .. } => tracing::info!(tunnel = %name, "a question is asked"),
        Event::Step { name, step } => tracing::debug!(tunnel = %name, "step {step:?}"),
        _ => {}
    }
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
    // Terminal.app ignores OSC 52: on the Mac itself (not over ssh), pbcopy as well.
    if cfg!(target_os = "macos") && std::env::var_os("SSH_CONNECTION").is_none() {
        pbcopy(text);
    }
}

/// Puts `text` on the macOS pasteboard through `pbcopy`, not waiting for it to finish.
fn pbcopy(text: &str) {
    use std::io::Write as _;
    let child = std::process::Command::new("pbcopy")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut c) = child {
        if let Some(mut stdin) = c.stdin.take() {
            let _ = stdin.write_all(text.as_bytes());
        }
        // Reaped on its own thread: pbcopy exits when its stdin closes.
        std::thread::spawn(move || c.wait());
    }
}
