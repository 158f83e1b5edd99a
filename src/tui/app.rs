//! The TUI's state and the one function that changes it: `update(app, action) -> effects`.
//! No I/O here: the loop turns effects into engine commands, clipboard writes and reloads.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::config::{Connection, Secret};
use crate::diagnose::Step;
use crate::engine::{Command, Event, TunnelState, TunnelStats};
use crate::prompt::{Answer, HostKeyAnswer, Prompt};

/// Throughput samples kept per tunnel for the sparkline.
pub const HISTORY: usize = 60;

/// What the TUI keeps of one tunnel: its latest counters and what the screen adds.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub stats: TunnelStats,
    /// Bytes a second, both ways, newest last.
    pub history: VecDeque<u64>,
    pub listening: Vec<String>,
    pub log: VecDeque<String>,
}

/// The diagnostics pane.
#[derive(Clone, Debug)]
pub struct Diagnosis {
    pub name: String,
    pub steps: Vec<Step>,
    pub done: Option<bool>,
}

/// A question from the engine, waiting for an answer.
#[derive(Clone, Debug)]
pub struct Question {
    pub id: u64,
    /// The connection that asks.
    pub name: String,
    pub prompt: Prompt,
    /// After this the engine withdraws it.
    pub deadline: Instant,
}

/// Keys that arrive this soon after a question appears are dropped: they were typed for
/// what was on screen before it.
pub const PROMPT_GUARD: Duration = Duration::from_millis(500);

/// What has the keyboard.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    Filter,
    Help,
    Log,
    Diagnose,
    /// A prompt from the engine (the front of `prompts`).
    Prompt,
    ConfirmQuit,
    /// The setup wizard (`s`): the same flow as `warren setup`.
    Setup,
}

/// The setup wizard's questions, in order (the answers become `setup::plan`'s arguments).
pub const WIZARD: [&str; 7] = [
    "1. engine (postgres, mysql, redis, mongodb, mssql)",
    "1. the database's host:port, as the bastion sees it",
    "1. a name for the entry",
    "2. the bastion: host, user@host:port, ssh://... or a ~/.ssh/config alias",
    "2. a jump host before it (Enter for none)",
    "3. the key: a path for a new key, a path to an existing one, or 'agent'",
    "3. a passphrase for a new key (Enter for none)",
];

/// The wizard's questions that may be left empty: the jump host and the passphrase.
pub fn wizard_optional(question: usize) -> bool {
    question == WIZARD_JUMP || question == WIZARD_PASSPHRASE
}

const WIZARD_JUMP: usize = 4;
const WIZARD_KEY: usize = 5;
/// The passphrase question: its input is masked and its answer is kept as a `Secret`, out
/// of `answers`.
pub const WIZARD_PASSPHRASE: usize = 6;

/// The wizard's state.
#[derive(Debug, Default)]
pub struct Wizard {
    pub answers: Vec<String>,
    /// The new key's passphrase (its slot in `answers` holds only "" or "***").
    pub passphrase: Option<Secret>,
    pub input: Input,
    pub error: Option<String>,
    /// After saving: the entry's name and the bastion instructions.
    pub done: Option<(String, String)>,
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

pub struct App {
    pub connections: Vec<Connection>,
    /// The tunnels live in the per-user daemon (the TUI attached to it).
    pub attached: bool,
    /// No daemon may be used (the demo): tunnels always close on quit.
    pub standalone: bool,
    pub quit_choice: QuitChoice,
    /// Each connection's lowercase search text (name, hosts, target), computed once.
    haystacks: Vec<String>,
    pub states: HashMap<String, TunnelState>,
    pub live: HashMap<String, Live>,
    pub filter: Input,
    /// Index into `visible()`.
    pub selected: usize,
    pub mode: Mode,
    pub diagnosis: Option<Diagnosis>,
    /// Questions, oldest first; the front one is shown when the user is not typing.
    pub prompts: VecDeque<Question>,
    /// When the front question was put on screen (keys before `PROMPT_GUARD` are dropped).
    pub prompt_shown_at: Option<Instant>,
    pub prompt_input: Input,
    /// keyboard-interactive answers given so far for the current prompt.
    pub prompt_answers: Vec<Secret>,
    /// The last message for the status line (a copied connection string, an error).
    pub message: Option<String>,
    /// Where warren looked for configs (for the empty state).
    pub looked_in: Vec<String>,
    /// Advances on each tick: the spinner.
    pub tick: u64,
    pub wizard: Wizard,
    pub quit: bool,
}

/// Something the user (or the engine) did.
#[derive(Clone, Debug)]
pub enum Action {
    Key(KeyEvent),
    /// A click on a row of the list (0 = first visible row).
    Click(usize),
    ScrollUp,
    ScrollDown,
    Engine(Event),
    Tick,
}

/// What the loop must do after an update.
#[derive(Debug)]
pub enum Effect {
    Engine(Command),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Read the config files again.
    Reload,
    /// Carry out the wizard's answers (key, instructions, entry), then reload.
    Setup {
        answers: Vec<String>,
        passphrase: Option<Secret>,
    },
}

impl App {
    pub fn new(connections: Vec<Connection>, looked_in: Vec<String>) -> Self {
        App {
            attached: false,
            standalone: false,
            quit_choice: QuitChoice::Default,
            haystacks: connections.iter().map(haystack).collect(),
            connections,
            states: HashMap::new(),
            live: HashMap::new(),
            filter: Input::default(),
            selected: 0,
            mode: Mode::Normal,
            diagnosis: None,
            prompts: VecDeque::new(),
            prompt_shown_at: None,
            prompt_input: Input::default(),
            prompt_answers: Vec::new(),
            message: None,
            looked_in,
            tick: 0,
            wizard: Wizard::default(),
            quit: false,
        }
    }

    /// The connections the filter lets through, in order.
    pub fn visible(&self) -> Vec<&Connection> {
        let f = self.filter.value().to_ascii_lowercase();
        self.connections
            .iter()
            .zip(&self.haystacks)
            .filter(|(_, h)| f.is_empty() || fuzzy(&f, h))
            .map(|(c, _)| c)
            .collect()
    }

    pub fn selected_connection(&self) -> Option<&Connection> {
        self.visible().get(self.selected).copied()
    }

    pub fn state(&self, name: &str) -> TunnelState {
        self.states.get(name).cloned().unwrap_or(TunnelState::Down)
    }

    /// Whether a tunnel is open (or on its way): closing it means something.
    pub fn is_open(&self, name: &str) -> bool {
        matches!(
            self.state(name),
            TunnelState::Up | TunnelState::Connecting | TunnelState::Reconnecting { .. }
        )
    }

    pub fn any_open(&self) -> bool {
        self.connections
            .iter()
            .any(|c| self.is_open(&c.display_name))
    }

    /// Whether something moves on screen (spinner, reconnect countdown): then the loop ticks.
    pub fn animating(&self) -> bool {
        self.diagnosis.as_ref().is_some_and(|d| d.done.is_none())
            // A question's countdown.
            || !self.prompts.is_empty()
            || self.states.values().any(|s| {
                matches!(
                    s,
                    TunnelState::Connecting | TunnelState::Reconnecting { .. } | TunnelState::Up
                )
            })
    }

    /// Whether the user is typing into a field (a question then waits for them to finish).
    pub fn typing(&self) -> bool {
        matches!(self.mode, Mode::Filter | Mode::Setup | Mode::ConfirmQuit)
    }

    /// Puts the front question on screen, unless the user is typing or one is shown.
    fn show_question(&mut self) {
        if self.prompts.is_empty() || self.typing() || self.mode == Mode::Prompt {
            return;
        }
        self.mode = Mode::Prompt;
        self.prompt_shown_at = Some(Instant::now());
        self.prompt_input.reset();
        self.prompt_answers.clear();
    }

    pub fn set_connections(&mut self, connections: Vec<Connection>) {
        self.haystacks = connections.iter().map(haystack).collect();
        self.connections = connections;
        self.clamp();
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        if self.selected >= n {
            self.selected = n.saturating_sub(1);
        }
    }
}

/// What the filter searches: name, host and target.
fn haystack(c: &Connection) -> String {
    let hosts = c
        .hops
        .iter()
        .map(|h| h.host.value.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{} {} {}",
        c.display_name,
        hosts,
        c.target().unwrap_or_default()
    )
    .to_ascii_lowercase()
}

/// A fuzzy match: the pattern's characters appear in order.
pub fn fuzzy(pattern: &str, text: &str) -> bool {
    let mut it = text.chars();
    pattern.chars().all(|p| it.any(|c| c == p))
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
            Vec::new()
        }
        Action::Engine(ev) => {
            engine_event(app, ev);
            Vec::new()
        }
        Action::Click(row) => {
            if app.mode == Mode::Normal && row < app.visible().len() {
                app.selected = row;
            }
            Vec::new()
        }
        Action::ScrollUp => move_by(app, -1),
        Action::ScrollDown => move_by(app, 1),
        Action::Key(k) => key(app, k),
    }
}

fn move_by(app: &mut App, d: i64) -> Vec<Effect> {
    let n = app.visible().len() as i64;
    if n > 0 {
        app.selected = (app.selected as i64 + d).clamp(0, n - 1) as usize;
    }
    Vec::new()
}

fn toggle(app: &App, c: &Connection) -> Effect {
    if app.is_open(&c.display_name) {
        Effect::Engine(Command::Close {
            names: vec![c.display_name.clone()],
            reply: None,
        })
    } else {
        Effect::Engine(Command::Open {
            conn: Box::new(c.clone()),
            reply: None,
        })
    }
}

fn key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        app.mode = if app.any_open() {
            Mode::ConfirmQuit
        } else {
            Mode::Normal
        };
        if app.mode == Mode::Normal {
            app.quit = true;
        }
        return Vec::new();
    }
    let effects = match app.mode {
        Mode::Normal => normal_key(app, k),
        Mode::Filter => {
            match k.code {
                KeyCode::Esc => {
                    app.filter.reset();
                    app.mode = Mode::Normal;
                }
                KeyCode::Enter => app.mode = Mode::Normal,
                KeyCode::Up => return move_by(app, -1),
                KeyCode::Down => return move_by(app, 1),
                _ => {
                    app.filter.handle_event(&crossterm::event::Event::Key(k));
                    app.selected = 0;
                }
            }
            app.clamp();
            Vec::new()
        }
        Mode::Help | Mode::Log | Mode::Diagnose => {
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Char('l')
            ) {
                app.mode = Mode::Normal;
            }
            Vec::new()
        }
        Mode::ConfirmQuit => {
            match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => app.quit = true,
                KeyCode::Char('l') if !app.attached && !app.standalone => {
                    app.quit_choice = QuitChoice::LeaveRunning;
                    app.quit = true;
                }
                KeyCode::Char('c') if app.attached => {
                    app.quit_choice = QuitChoice::CloseAll;
                    app.quit = true;
                }
                _ => app.mode = Mode::Normal,
            }
            Vec::new()
        }
        Mode::Prompt => prompt_key(app, k),
        Mode::Setup => wizard_key(app, k),
    };
    // A question that waited for the user to finish typing comes up now.
    app.show_question();
    effects
}

fn wizard_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    if k.code == KeyCode::Esc {
        app.wizard = Wizard::default();
        app.mode = Mode::Normal;
        return Vec::new();
    }
    if let Some((name, _)) = app.wizard.done.clone() {
        // Step 6: the walk of the new entry.
        if k.code == KeyCode::Enter
            && let Some(c) = app
                .connections
                .iter()
                .find(|c| c.name == name && c.source == crate::config::SourceKind::Epoch)
                .cloned()
        {
            app.wizard = Wizard::default();
            app.diagnosis = Some(Diagnosis {
                name: c.display_name.clone(),
                steps: Vec::new(),
                done: None,
            });
            app.mode = Mode::Diagnose;
            return vec![Effect::Engine(Command::Diagnose(Box::new(c)))];
        }
        return Vec::new();
    }
    match k.code {
        KeyCode::Enter => {
            let question = app.wizard.answers.len();
            let raw = app.wizard.input.value_and_reset();
            // A passphrase is taken as typed; every other answer is trimmed.
            let answer = if question == WIZARD_PASSPHRASE {
                raw
            } else {
                raw.trim().to_string()
            };
            if answer.is_empty() && !wizard_optional(question) {
                app.wizard.error = Some("an answer is needed (Esc cancels)".into());
                return Vec::new();
            }
            app.wizard.error = None;
            if question == WIZARD_PASSPHRASE {
                let masked = if answer.is_empty() { "" } else { "***" };
                app.wizard.passphrase =
                    Some(Secret::new(answer)).filter(|p| !p.expose().is_empty());
                app.wizard.answers.push(masked.into());
            } else {
                let agent = question == WIZARD_KEY && answer == "agent";
                app.wizard.answers.push(answer);
                if agent {
                    // No key file, so no passphrase to ask for.
                    app.wizard.passphrase = None;
                    app.wizard.answers.push(String::new());
                }
            }
            if app.wizard.answers.len() == WIZARD.len() {
                return vec![Effect::Setup {
                    answers: app.wizard.answers.clone(),
                    passphrase: app.wizard.passphrase.clone(),
                }];
            }
            Vec::new()
        }
        _ => {
            app.wizard
                .input
                .handle_event(&crossterm::event::Event::Key(k));
            Vec::new()
        }
    }
}

fn normal_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    app.message = None;
    match k.code {
        KeyCode::Up | KeyCode::Char('k') => move_by(app, -1),
        KeyCode::Down | KeyCode::Char('j') => move_by(app, 1),
        KeyCode::Enter | KeyCode::Char(' ') => match app.selected_connection() {
            Some(c) if c.forwards.is_empty() => {
                app.message = Some(format!(
                    "{} has no forward to open; d diagnoses it",
                    c.display_name
                ));
                Vec::new()
            }
            Some(c) => vec![toggle(app, c)],
            None => Vec::new(),
        },
        KeyCode::Char('d') => match app.selected_connection().cloned() {
            Some(c) => {
                app.diagnosis = Some(Diagnosis {
                    name: c.display_name.clone(),
                    steps: Vec::new(),
                    done: None,
                });
                app.mode = Mode::Diagnose;
                vec![Effect::Engine(Command::Diagnose(Box::new(c)))]
            }
            None => Vec::new(),
        },
        KeyCode::Char('/') => {
            app.mode = Mode::Filter;
            Vec::new()
        }
        KeyCode::Esc => {
            app.filter.reset();
            app.clamp();
            Vec::new()
        }
        KeyCode::Char('l') => {
            app.mode = Mode::Log;
            Vec::new()
        }
        KeyCode::Char('?') => {
            app.mode = Mode::Help;
            Vec::new()
        }
        KeyCode::Char('s') => {
            app.wizard = Wizard::default();
            app.mode = Mode::Setup;
            Vec::new()
        }
        KeyCode::Char('R') => {
            app.message = Some("reconnecting every open tunnel".into());
            vec![Effect::Engine(Command::Reconnect { names: Vec::new() })]
        }
        KeyCode::Char('r') => {
            app.message = Some("config files read again".into());
            vec![Effect::Reload]
        }
        KeyCode::Char('c') => match app.selected_connection() {
            Some(c) => match connection_string(c, app.live.get(&c.display_name)) {
                Some(s) => {
                    app.message = Some(format!("copied: {s}"));
                    vec![Effect::Copy(s)]
                }
                None => {
                    app.message = Some(format!(
                        "{} is not open: Enter opens it first",
                        c.display_name
                    ));
                    Vec::new()
                }
            },
            None => Vec::new(),
        },
        KeyCode::Char('a') => {
            let visible: Vec<Connection> = app
                .visible()
                .into_iter()
                .filter(|c| !c.forwards.is_empty())
                .cloned()
                .collect();
            // All open: close them all; otherwise open the ones that are closed.
            let all_open =
                !visible.is_empty() && visible.iter().all(|c| app.is_open(&c.display_name));
            visible
                .iter()
                .filter(|c| all_open || !app.is_open(&c.display_name))
                .map(|c| toggle(app, c))
                .collect()
        }
        KeyCode::Char('q') => {
            if app.any_open() {
                app.mode = Mode::ConfirmQuit;
            } else {
                app.quit = true;
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn prompt_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    let Some(q) = app.prompts.front().cloned() else {
        app.mode = Mode::Normal;
        return Vec::new();
    };
    // A key typed for what was on screen before the question must not answer it.
    if app
        .prompt_shown_at
        .is_some_and(|t| t.elapsed() < PROMPT_GUARD)
    {
        return Vec::new();
    }
    let answer = match &q.prompt {
        Prompt::HostKey { .. } => match k.code {
            KeyCode::Char('y') => Some(Answer::HostKey(HostKeyAnswer::AcceptAndSave)),
            KeyCode::Char('o') => Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)),
            KeyCode::Char('n') | KeyCode::Esc => Some(Answer::HostKey(HostKeyAnswer::Reject)),
            _ => None,
        },
        Prompt::Confirm { .. } => match k.code {
            KeyCode::Char('y') => Some(Answer::HostKey(HostKeyAnswer::AcceptOnce)),
            KeyCode::Char('n') | KeyCode::Esc => Some(Answer::HostKey(HostKeyAnswer::Reject)),
            _ => None,
        },
        Prompt::Passphrase { .. } | Prompt::Password { .. } => match k.code {
            KeyCode::Enter => Some(Answer::Secret(Secret::new(
                app.prompt_input.value_and_reset(),
            ))),
            KeyCode::Esc => Some(Answer::Cancel),
            _ => {
                app.prompt_input
                    .handle_event(&crossterm::event::Event::Key(k));
                None
            }
        },
        Prompt::KeyboardInteractive { prompts, .. } => match k.code {
            KeyCode::Enter => {
                app.prompt_answers
                    .push(Secret::new(app.prompt_input.value_and_reset()));
                (app.prompt_answers.len() >= prompts.len())
                    .then(|| Answer::Responses(std::mem::take(&mut app.prompt_answers)))
            }
            KeyCode::Esc => Some(Answer::Cancel),
            _ => {
                app.prompt_input
                    .handle_event(&crossterm::event::Event::Key(k));
                None
            }
        },
    };
    match answer {
        Some(answer) => {
            app.prompts.pop_front();
            app.prompt_input.reset();
            app.prompt_answers.clear();
            app.prompt_shown_at = None;
            app.mode = Mode::Normal;
            vec![Effect::Engine(Command::Answer { id: q.id, answer })]
        }
        None => Vec::new(),
    }
}

/// Removes a question the engine no longer asks.
fn withdraw(app: &mut App, id: u64) {
    let was_front = app.prompts.front().is_some_and(|q| q.id == id);
    let Some(pos) = app.prompts.iter().position(|q| q.id == id) else {
        return;
    };
    if let Some(q) = app.prompts.remove(pos) {
        app.message = Some(format!(
            "the question for {} was withdrawn (not answered in time, or its tunnel stopped)",
            q.name
        ));
    }
    if was_front && app.mode == Mode::Prompt {
        app.prompt_input.reset();
        app.prompt_answers.clear();
        app.prompt_shown_at = None;
        app.mode = Mode::Normal;
    }
}

fn engine_event(app: &mut App, ev: Event) {
    let push_log = |app: &mut App, name: &str, line: String| {
        let log = &mut app.live.entry(name.to_string()).or_default().log;
        if log.len() == crate::tunnel::LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    };
    match ev {
        Event::Listening { name, local, .. } => {
            let live = app.live.entry(name).or_default();
            if !live.listening.contains(&local) {
                live.listening.push(local);
            }
        }
        Event::State { name, state } => {
            push_log(app, &name, state.to_string());
            if state == TunnelState::Down
                && let Some(l) = app.live.get_mut(&name)
            {
                l.listening.clear();
            }
            app.states.insert(name, state);
        }
        Event::Warning { name, message } => push_log(app, &name, format!("warning: {message}")),
        Event::Error { name, message } => {
            push_log(app, &name, format!("error: {message}"));
            app.live.entry(name).or_default().stats.last_error = Some(message);
        }
        Event::Stats { name, stats } => {
            let live = app.live.entry(name).or_default();
            let delta = (stats.bytes_in + stats.bytes_out)
                .saturating_sub(live.stats.bytes_in + live.stats.bytes_out);
            if live.history.len() == HISTORY {
                live.history.pop_front();
            }
            live.history.push_back(delta);
            let last_error = stats.last_error.clone().or(live.stats.last_error.take());
            live.stats = stats;
            live.stats.last_error = last_error;
        }
        Event::Prompt {
            id,
            name,
            prompt,
            timeout_secs,
        } => {
            app.prompts.push_back(Question {
                id,
                name,
                prompt,
                deadline: Instant::now() + Duration::from_secs(timeout_secs),
            });
            app.show_question();
        }
        Event::PromptWithdrawn { id, .. } => {
            withdraw(app, id);
            app.show_question();
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
        Event::Health { .. } => {}
    }
}
