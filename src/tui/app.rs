//! The TUI's state and the one function that changes it: `update(app, action) -> effects`.
//! No I/O here: the loop turns effects into engine commands, clipboard writes, file writes
//! and reloads, and brings their results back as actions.
//!
//! The list's rows are in [`super::rows`], each tunnel's live numbers and timeline in
//! [`super::live`], the engine's questions in [`super::questions`], the setup form in
//! [`super::wizard`]; the keys come from [`super::keys`].

use std::collections::{HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::commands;
use super::keys::Keymap;
use super::live::{self, Live};
use super::questions::{self, Question};
use super::rows::{Cells, Row};
use super::wizard::{self, Wizard};
use crate::config::{Connection, Secret};
use crate::diagnose::Step;
use crate::engine::{Command, Event, TunnelState};
use crate::notify::{Kind, Tracker};
use crate::settings::{GroupBy, Settings, SortBy};

pub use super::live::HISTORY;
pub use super::questions::PROMPT_GUARD;
pub use super::rows::fuzzy;

/// The diagnostics pane.
#[derive(Clone, Debug)]
pub struct Diagnosis {
    pub name: String,
    pub steps: Vec<Step>,
    pub done: Option<bool>,
}

/// What has the keyboard.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    Filter,
    Help,
    /// The selection's timeline and log.
    History,
    Diagnose,
    /// A prompt from the engine (the front of `prompts`).
    Prompt,
    ConfirmQuit,
    /// The setup form (`s`): the same flow as `warren setup`.
    Setup,
    /// `c` on a database entry: which form to copy (the next key says).
    CopyAs,
    /// A tunnel failed on a busy local port: take the free one for this session? (y/n)
    PortBusy,
}

/// What quitting does with open tunnels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuitChoice {
    /// Local tunnels close; the daemon's keep running.
    Default,
    /// Local tunnels are handed to the daemon and keep running.
    LeaveRunning,
    /// The daemon's tunnels close too.
    CloseAll,
}

/// Who to tell when something happens to a tunnel (from the settings).
#[derive(Clone, Debug)]
pub struct Notify {
    pub on: Vec<Kind>,
    pub bell: bool,
    pub desktop: bool,
}

pub struct App {
    pub connections: Vec<Connection>,
    /// Per connection: its cells' texts and search text, made once.
    pub cells: Vec<Cells>,
    /// Connection indices in name order (the base of every sort).
    pub by_name: Vec<usize>,
    /// The tunnels live in the per-user daemon (the TUI attached to it).
    pub attached: bool,
    /// No daemon may be used (the demo): tunnels always close on quit.
    pub standalone: bool,
    pub quit_choice: QuitChoice,
    pub states: HashMap<String, TunnelState>,
    pub live: HashMap<String, Live>,
    pub filter: Input,
    pub sort: SortBy,
    pub group: GroupBy,
    /// What the list shows, in order.
    pub rows: Vec<Row>,
    /// Index into `rows` (always a connection when there is one).
    pub selected: usize,
    /// The first row on screen.
    pub offset: usize,
    /// The terminal's size (columns, rows).
    pub size: (u16, u16),
    /// The details pane is shown.
    pub details: bool,
    pub mode: Mode,
    pub diagnosis: Option<Diagnosis>,
    /// Questions, oldest first; the front one is shown when the user is not typing.
    pub prompts: VecDeque<Question>,
    /// When the front question was put on screen (keys before `PROMPT_GUARD` are dropped).
    pub prompt_shown_at: Option<Instant>,
    /// When a question on screen went unanswered (withdrawn, timed out): keys before
    /// `PROMPT_GUARD` after it were typed for it and are dropped too.
    pub prompt_gone_at: Option<Instant>,
    pub prompt_input: Input,
    /// keyboard-interactive answers given so far for the current prompt.
    pub prompt_answers: Vec<Secret>,
    /// The last message for the status line (a copied connection string, an error).
    pub message: Option<String>,
    /// Problems in the settings file (shown at start and atop help).
    pub settings_problems: Vec<String>,
    /// Where warren looked for configs (for the empty state).
    pub looked_in: Vec<String>,
    /// The errors of the load the list shows (the `l` view shows them whole).
    pub load_errors: Vec<super::reload::LoadError>,
    /// What the status line says while the load has errors.
    pub config_error: Option<String>,
    /// The entries that did not load, by display name (listed as broken rows).
    pub broken: HashMap<String, crate::config::epoch::Broken>,
    /// Open tunnels whose settings changed in the config since they opened.
    pub changed: std::collections::HashSet<String>,
    /// Open tunnels whose entry left the config: listed until they close.
    pub orphans: std::collections::HashSet<String>,
    /// `q`, `l`: the open tunnels are being handed to the daemon (keys wait until it says).
    pub handing_over: bool,
    /// `x` on a tunnel that was not open: its client starts when it is up.
    pub pending_connect: Option<String>,
    /// A tunnel that failed on a busy port: its name, who holds the port, the free one.
    pub port_busy: Option<(String, String, u16)>,
    /// Advances on each tick: the spinner.
    pub tick: u64,
    pub help_scroll: usize,
    /// The first line the `l` or `d` view shows; `None`: its end (the newest).
    pub view_scroll: Option<usize>,
    pub wizard: Wizard,
    pub keymap: Keymap,
    pub notify: Notify,
    /// What is news among the engine's events (only changes are).
    news: Tracker,
    /// A fixed time for timelines (tests); `None`: the clock.
    pub frozen_time: Option<SystemTime>,
    /// Seconds east of UTC, for the times shown.
    pub utc_offset: i64,
    pub quit: bool,
}

/// Something the user (or the engine, or the loop) did.
#[derive(Clone, Debug)]
pub enum Action {
    Key(KeyEvent),
    /// A click on a terminal line.
    Click(u16),
    ScrollUp,
    ScrollDown,
    Resize(u16, u16),
    Engine(Event),
    Tick,
    /// The setup form's answers checked against the files: the summary, or what to fix.
    Reviewed(Result<Vec<String>, wizard::Failure>),
    /// The setup written: the entry's name and the bastion's instructions, or what to fix.
    SetUp(Result<wizard::Saved, wizard::Failure>),
    /// The config files, read again after they changed on disk.
    Loaded(super::reload::Loaded),
    /// The daemon's answer to a hand-over: every tunnel up there, or not.
    HandedOver(Result<(), commands::NotHandedOver>),
}

/// What the loop must do after an update.
#[derive(Debug)]
pub enum Effect {
    Engine(Command),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Read the config files again.
    Reload,
    /// Check the setup form's answers against the files and make the summary (no write).
    Review(wizard::Answers),
    /// Carry out the setup form's answers (key, entry), then reload.
    Setup(wizard::Answers),
    /// Write the setup's bastion instructions to a file: the entry's name and the text.
    WriteInstructions {
        name: String,
        text: String,
    },
    /// Start the demo world in this process and show it.
    Demo,
    /// Hand the terminal to the connection's database client (as `warren connect`) at the
    /// tunnel's local end, and come back when it exits.
    Connect {
        conn: Box<Connection>,
        local: String,
    },
    /// Hand these open tunnels to the daemon (closed here first, so their ports are free)
    /// and say whether it has them all up ([`Action::HandedOver`]).
    HandOver(Vec<Connection>),
    /// Tell the user: the bell and/or a desktop notification.
    Notify {
        text: String,
        bell: bool,
        desktop: bool,
    },
}

impl App {
    pub fn new(connections: Vec<Connection>, looked_in: Vec<String>) -> Self {
        let mut app = App {
            attached: false,
            standalone: false,
            quit_choice: QuitChoice::Default,
            connections: Vec::new(),
            cells: Vec::new(),
            by_name: Vec::new(),
            states: HashMap::new(),
            live: HashMap::new(),
            filter: Input::default(),
            sort: SortBy::Name,
            group: GroupBy::None,
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            size: (120, 36),
            details: true,
            mode: Mode::Normal,
            diagnosis: None,
            prompts: VecDeque::new(),
            prompt_shown_at: None,
            prompt_gone_at: None,
            prompt_input: Input::default(),
            prompt_answers: Vec::new(),
            message: None,
            settings_problems: Vec::new(),
            looked_in,
            load_errors: Vec::new(),
            config_error: None,
            broken: HashMap::new(),
            changed: Default::default(),
            orphans: Default::default(),
            pending_connect: None,
            handing_over: false,
            port_busy: None,
            tick: 0,
            help_scroll: 0,
            view_scroll: None,
            wizard: Wizard::default(),
            keymap: Keymap::default(),
            notify: Notify {
                on: Settings::defaults(Default::default())
                    .notifications
                    .on
                    .value,
                bell: true,
                desktop: false,
            },
            news: Tracker::new(),
            frozen_time: None,
            utc_offset: 0,
            quit: false,
        };
        app.set_connections(connections);
        app
    }

    /// Applies the settings: sort, grouping, notifications, key bindings; their problems go
    /// to the status line and atop help.
    pub fn apply_settings(&mut self, s: &Settings) {
        self.sort = s.sort.value;
        self.group = s.group.value;
        self.notify = Notify {
            on: s.notifications.on.value.clone(),
            bell: s.notifications.bell.value,
            desktop: s.notifications.desktop.value,
        };
        let (keymap, key_problems) = Keymap::new(&s.keys);
        self.keymap = keymap;
        self.settings_problems = s
            .problems
            .iter()
            .chain(&key_problems)
            .map(|p| p.to_string().replace("\n  fix:", "; fix:"))
            .collect();
        if let Some(first) = self.settings_problems.first() {
            self.message = Some(match self.settings_problems.len() {
                1 => first.clone(),
                n => format!("{first} (and {} more: ? shows them)", n - 1),
            });
        }
        self.refresh_rows();
    }

    /// The connections the list shows, in order.
    pub fn visible(&self) -> Vec<&Connection> {
        self.rows
            .iter()
            .filter_map(|r| match r {
                Row::Conn(i) => Some(&self.connections[*i]),
                Row::Group { .. } => None,
            })
            .collect()
    }

    pub fn selected_connection(&self) -> Option<&Connection> {
        self.selected_index().map(|i| &self.connections[i])
    }

    pub fn state(&self, name: &str) -> TunnelState {
        self.states.get(name).cloned().unwrap_or(TunnelState::Down)
    }

    /// Whether a connection opens its session on demand.
    pub fn on_demand(&self, name: &str) -> bool {
        self.connections
            .iter()
            .any(|c| c.display_name == name && c.policy.on_demand())
    }

    /// Whether a tunnel is open (or on its way): closing it means something.
    pub fn is_open(&self, name: &str) -> bool {
        self.states.get(name).is_some_and(TunnelState::is_open)
    }

    pub fn any_open(&self) -> bool {
        self.states.values().any(TunnelState::is_open)
    }

    /// Whether something moves on screen (spinner, countdown, sparkline): then the loop ticks.
    pub fn animating(&self) -> bool {
        self.diagnosis.as_ref().is_some_and(|d| d.done.is_none())
            || !self.prompts.is_empty()
            || self.any_open()
    }

    /// Whether the user is typing into a field (a question then waits for them to finish).
    pub fn typing(&self) -> bool {
        matches!(self.mode, Mode::Filter | Mode::Setup | Mode::ConfirmQuit)
    }

    pub fn now(&self) -> SystemTime {
        self.frozen_time.unwrap_or_else(SystemTime::now)
    }

    /// Takes a new list, keeping the selection on the connection of the same name.
    pub fn set_connections(&mut self, connections: Vec<Connection>) {
        let keep = self
            .selected_connection()
            .and_then(|s| {
                connections
                    .iter()
                    .position(|c| c.display_name == s.display_name)
            })
            .or(self.selected_index());
        self.cells = connections.iter().map(Cells::of).collect();
        let mut by_name: Vec<usize> = (0..connections.len()).collect();
        by_name.sort_by(|&a, &b| {
            connections[a]
                .display_name
                .cmp(&connections[b].display_name)
        });
        self.by_name = by_name;
        self.connections = connections;
        self.refresh_rows_keeping(keep);
    }
}

/// A connection string for a tunnel: `postgresql://user@127.0.0.1:PORT/db`, else `host:port`.
pub fn connection_string(c: &Connection, live: Option<&Live>) -> Option<String> {
    let local = live.and_then(|l| l.listening.first().cloned())?;
    let Some(db) = &c.database else {
        return Some(local);
    };
    let user = db
        .username
        .as_ref()
        .map(|u| format!("{}@", u.value))
        .unwrap_or_default();
    let name = db
        .database
        .as_ref()
        .map(|d| format!("/{}", d.value))
        .unwrap_or_default();
    let scheme = match db.engine.as_str() {
        "postgres" | "postgresql" => "postgresql",
        "mysql" | "mariadb" => "mysql",
        "redis" => "redis",
        "mongodb" | "mongo" => "mongodb",
        "mssql" | "sqlserver" => "sqlserver",
        _ => return Some(local),
    };
    Some(format!("{scheme}://{user}{local}{name}"))
}

pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Tick => {
            app.tick = app.tick.wrapping_add(1);
            // Traffic changes all the time: the order follows it at the tick's pace.
            if app.sort == SortBy::Traffic {
                app.refresh_rows();
            }
            Vec::new()
        }
        Action::Engine(ev) => engine_event(app, ev),
        Action::Click(y) => {
            if app.mode == Mode::Normal {
                app.click(y);
            }
            Vec::new()
        }
        Action::Resize(w, h) => {
            app.size = (w, h);
            app.scroll_to_selection();
            Vec::new()
        }
        Action::ScrollUp => scroll(app, -1),
        Action::ScrollDown => scroll(app, 1),
        Action::Key(k) => key(app, k),
        Action::Reviewed(r) => {
            wizard::reviewed(&mut app.wizard, r);
            Vec::new()
        }
        Action::SetUp(r) => {
            wizard::set_up(&mut app.wizard, r);
            Vec::new()
        }
        Action::Loaded(loaded) => {
            super::reload::apply(app, loaded, true);
            Vec::new()
        }
        Action::HandedOver(r) => commands::handed_over(app, r),
    }
}

fn scroll(app: &mut App, d: i64) -> Vec<Effect> {
    match app.mode {
        Mode::Help => app.help_scroll = (app.help_scroll as i64 + d).max(0) as usize,
        Mode::History | Mode::Diagnose => commands::scroll_view(app, d),
        Mode::Normal | Mode::Filter => app.move_by(d),
        _ => {}
    }
    Vec::new()
}

fn key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    // The tunnels are on their way to the daemon: nothing may open or close them meanwhile.
    if app.handing_over {
        return Vec::new();
    }
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        if app.any_open() {
            app.mode = Mode::ConfirmQuit;
        } else {
            app.quit = true;
        }
        return Vec::new();
    }
    // Keys typed for a question that just went (an answer, a password) must not reach the
    // list, where they would be commands.
    if app.mode != Mode::Prompt && questions::just_gone(app) {
        return Vec::new();
    }
    let effects = match app.mode {
        Mode::Normal => commands::normal_key(app, k),
        Mode::Filter => {
            match k.code {
                KeyCode::Esc => {
                    app.filter.reset();
                    app.mode = Mode::Normal;
                }
                KeyCode::Enter => app.mode = Mode::Normal,
                KeyCode::Up => app.move_by(-1),
                KeyCode::Down => app.move_by(1),
                _ => {
                    app.filter.handle_event(&crossterm::event::Event::Key(k));
                    app.selected = 0;
                    app.offset = 0;
                }
            }
            app.refresh_rows();
            Vec::new()
        }
        Mode::Help => {
            let page = usize::from(app.size.1.saturating_sub(4)).max(1);
            match k.code {
                KeyCode::Down | KeyCode::Char('j') => app.help_scroll += 1,
                KeyCode::Up | KeyCode::Char('k') => {
                    app.help_scroll = app.help_scroll.saturating_sub(1)
                }
                KeyCode::PageDown | KeyCode::Char(' ') => app.help_scroll += page,
                KeyCode::PageUp => app.help_scroll = app.help_scroll.saturating_sub(page),
                KeyCode::Home => app.help_scroll = 0,
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') => app.mode = Mode::Normal,
                _ => {}
            }
            Vec::new()
        }
        Mode::CopyAs => commands::copy_as(app, k),
        Mode::PortBusy => {
            app.mode = Mode::Normal;
            let busy = app.port_busy.take();
            match (k.code, busy) {
                (KeyCode::Char('y') | KeyCode::Char('Y'), Some((name, _, free))) => {
                    match app.connections.iter().find(|c| c.display_name == name) {
                        Some(c) => {
                            let mut c = c.clone();
                            c.policy.port_fallback = true;
                            app.message =
                                Some(format!("opening {name} on {free} (or the next free port)"));
                            vec![Effect::Engine(Command::Open {
                                conn: Box::new(c),
                                reply: None,
                            })]
                        }
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            }
        }
        Mode::History | Mode::Diagnose => commands::view_key(app, k),
        // The keys here are the ones view::quit_keys lists.
        Mode::ConfirmQuit => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                app.quit = true;
                Vec::new()
            }
            KeyCode::Char('l') if !app.attached && !app.standalone => commands::leave_running(app),
            KeyCode::Char('c') if app.attached => {
                app.quit_choice = QuitChoice::CloseAll;
                app.quit = true;
                Vec::new()
            }
            _ => {
                app.mode = Mode::Normal;
                Vec::new()
            }
        },
        Mode::Prompt => questions::prompt_key(app, k),
        Mode::Setup => commands::wizard_key(app, k),
    };
    // A question that waited for the user to finish typing comes up now.
    questions::show_question(app);
    effects
}

fn engine_event(app: &mut App, ev: Event) -> Vec<Effect> {
    let now = app.now();
    let mut effects = Vec::new();
    if let Some(n) = app.news.event(&ev)
        && app.notify.on.contains(&n.kind)
        && (app.notify.bell || app.notify.desktop)
    {
        effects.push(Effect::Notify {
            text: n.message(),
            bell: app.notify.bell,
            desktop: app.notify.desktop,
        });
    }
    match ev {
        Event::Listening { name, local, .. } => {
            let live = app.live.entry(name).or_default();
            if !live.listening.contains(&local) {
                live.listening.push(local);
            }
        }
        Event::State { name, state } => {
            let before = app.state(&name);
            let live = app.live.entry(name.clone()).or_default();
            live.push_log(now, state.to_string());
            if state == TunnelState::Down {
                live.listening.clear();
            }
            live::record(live, &before, &state, now);
            let closed = !state.is_open();
            if let TunnelState::Failed { error } = &state
                && let Some((who, free)) = crate::tunnel::owner::busy_parts(error)
                && app.mode == Mode::Normal
            {
                app.port_busy = Some((name.clone(), who, free));
                app.mode = Mode::PortBusy;
            }
            if app.pending_connect.as_deref() == Some(name.as_str()) {
                match &state {
                    s if s.serves() => {
                        app.pending_connect = None;
                        let local = live.listening.first().cloned();
                        let conn = app.connections.iter().find(|c| c.display_name == name);
                        if let (Some(conn), Some(local)) = (conn, local) {
                            effects.push(Effect::Connect {
                                conn: Box::new(conn.clone()),
                                local,
                            });
                        }
                    }
                    TunnelState::Failed { .. } | TunnelState::Down => {
                        app.pending_connect = None;
                    }
                    _ => {}
                }
            }
            app.states.insert(name.clone(), state);
            if closed {
                super::reload::closed(app, &name);
            }
            if app.sort == SortBy::State {
                app.refresh_rows();
            }
        }
        Event::Warning { name, message } => app
            .live
            .entry(name)
            .or_default()
            .push_log(now, format!("warning: {message}")),
        Event::Error { name, message } => {
            let live = app.live.entry(name).or_default();
            live.push_log(now, format!("error: {message}"));
            live.stats.last_error = Some(message);
        }
        Event::Stats { name, stats } => app.live.entry(name).or_default().sample(stats),
        Event::Prompt {
            id,
            name,
            prompt,
            timeout_secs,
        } => questions::ask(app, id, name, prompt, timeout_secs),
        Event::PromptWithdrawn { id, .. } => {
            questions::withdraw(app, id);
            questions::show_question(app);
        }
        Event::Step { name, step } => {
            if let Some(d) = app.diagnosis.as_mut().filter(|d| d.name == name) {
                d.steps.push(step);
            }
        }
        Event::Diagnosed { name, ok } => {
            if let Some(d) = app.diagnosis.as_mut().filter(|d| d.name == name) {
                d.done = Some(ok);
            }
        }
        Event::Health { name, health } => app.live.entry(name).or_default().health(now, health),
    }
    effects
}
