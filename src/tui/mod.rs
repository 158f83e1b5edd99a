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

use app::{Action, App, Effect, update};
use view::Theme;

use crate::config::load::FileStatus;
use crate::config::{Catalog, Context, Paths};
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
pub async fn run(paths: Paths, ctx: Arc<Context>, verbose: bool) -> std::io::Result<()> {
    let catalog = Catalog::load(&paths, Arc::clone(&ctx));
    let mut app = App::new(catalog.connections.clone(), looked_in(&catalog));
    let theme = Theme {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let engine = Engine::start_with(true);
    let mut events = engine.subscribe();
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
                Ok(ev) => {
                    log.event(&ev);
                    Some(Action::Engine(ev))
                }
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => break Ok(()),
            },
            _ = tick.tick(), if app.animating() => Some(Action::Tick),
        };
        let Some(action) = action else { continue };
        dirty = true;
        for effect in update(&mut app, action) {
            match effect {
                Effect::Engine(c) => engine.send(c).await,
                Effect::Copy(text) => copy_osc52(&text),
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
    // Tunnels opened here close on quit.
    let _ = tokio::time::timeout(Duration::from_secs(5), engine.shutdown()).await;
    result
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
