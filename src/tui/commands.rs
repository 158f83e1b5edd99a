//! What the list's commands do (the keys of [`super::keys`], in Normal mode) and the setup
//! form's outcomes: state changes and the effects for the loop.
//!
//! Leaving tunnels running (`q`, `l`) hands them to the daemon and quits only once the daemon
//! reports each of them up; otherwise the TUI stays, opens them here again and says why.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Diagnosis, Effect, Mode, QuitChoice, connection_string};
use super::keys::Command as Key;
use super::wizard::{self, Wizard};
use crate::config::Connection;
use crate::engine::Command;
use crate::handoff::run::local_of;
use crate::handoff::{Format, Parts};
use crate::settings::{GROUPS, GroupBy, SORTS};

pub fn toggle(app: &App, c: &Connection) -> Effect {
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

/// `q`, `l`: the open tunnels go to the daemon; the TUI quits when it has them all up.
pub fn leave_running(app: &mut App) -> Vec<Effect> {
    let open: Vec<Connection> = app
        .connections
        .iter()
        .filter(|c| app.is_open(&c.display_name))
        .cloned()
        .collect();
    app.mode = Mode::Normal;
    if open.is_empty() {
        app.quit = true;
        return Vec::new();
    }
    app.handing_over = true;
    app.message = Some(format!(
        "handing {} tunnel(s) to the daemon; warren quits once it has them up",
        open.len()
    ));
    vec![Effect::HandOver(open)]
}

/// A hand-over the daemon did not complete: it let go of every tunnel handed (`names`,
/// which come back here); `failed`: those it could not open, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct NotHandedOver {
    pub names: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// The daemon's answer to a hand-over: all up, quit; else the tunnels open here again and
/// the status line and each failed one's log say why.
pub fn handed_over(app: &mut App, r: Result<(), NotHandedOver>) -> Vec<Effect> {
    app.handing_over = false;
    let NotHandedOver { names, failed } = match r {
        Ok(()) => {
            app.quit_choice = QuitChoice::LeaveRunning;
            app.quit = true;
            return Vec::new();
        }
        Err(e) => e,
    };
    let now = app.now();
    for (name, why) in &failed {
        app.live
            .entry(name.clone())
            .or_default()
            .push_log(now, format!("the daemon could not take it over: {why}"));
    }
    if let Some((name, why)) = failed.first() {
        let more = match failed.len() {
            1 => String::new(),
            n => format!(" (and {} more: their logs say why)", n - 1),
        };
        app.message = Some(format!(
            "not left running: the daemon could not open {name}{more}: {why}; the tunnels stay here"
        ));
    }
    // The daemon let go of every one of them: they are this TUI's again.
    app.connections
        .iter()
        .filter(|c| names.contains(&c.display_name))
        .map(|c| {
            Effect::Engine(Command::Open {
                conn: Box::new(c.clone()),
                reply: None,
            })
        })
        .collect()
}

/// The forms `c` offers for a database entry, with the key that picks each.
pub const COPY_FORMS: [(char, Format); 5] = [
    ('u', Format::Url),
    ('d', Format::Dsn),
    ('j', Format::Jdbc),
    ('e', Format::Env),
    ('p', Format::Psql),
];

/// The key after `c`: copies the selection in that form (as `warren url --format`).
pub fn copy_as(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    app.mode = Mode::Normal;
    let KeyCode::Char(ch) = k.code else {
        return Vec::new();
    };
    let Some((_, format)) = COPY_FORMS.iter().find(|(c, _)| *c == ch) else {
        return Vec::new();
    };
    let Some(c) = app.selected_connection() else {
        return Vec::new();
    };
    let local = app
        .live
        .get(&c.display_name)
        .and_then(|l| local_of(&l.listening));
    let Some(local) = local else {
        app.message = Some(format!("{} does not listen on a TCP port", c.display_name));
        return Vec::new();
    };
    match Parts::of(c, &local, false).and_then(|p| p.format(*format)) {
        Ok(text) => {
            app.message = Some(format!(
                "copied: {}",
                text.lines().collect::<Vec<_>>().join(" ")
            ));
            vec![Effect::Copy(text)]
        }
        Err(e) => {
            app.message = Some(e.to_string());
            Vec::new()
        }
    }
}

/// `x`: the database client on the selection, once its tunnel is up (opened first if need be).
fn connect(app: &mut App) -> Vec<Effect> {
    let Some(c) = app.selected_connection() else {
        return Vec::new();
    };
    if c.database.is_none() {
        app.message = Some(format!(
            "{} is not a database entry: warren knows no client for it ({} copies its address)",
            c.display_name,
            app.keymap.first_key(Key::Copy)
        ));
        return Vec::new();
    }
    let name = c.display_name.clone();
    let listening = app
        .live
        .get(&name)
        .and_then(|l| l.listening.first().cloned());
    match listening {
        Some(local) if app.state(&name).serves() => {
            vec![Effect::Connect {
                conn: Box::new(c.clone()),
                local,
            }]
        }
        _ if app.is_open(&name) => {
            app.pending_connect = Some(name.clone());
            app.message = Some(format!(
                "{name} is on its way: the client starts when it is up"
            ));
            Vec::new()
        }
        _ => {
            let open = toggle(app, c);
            app.pending_connect = Some(name.clone());
            app.message = Some(format!("opening {name}: the client starts when it is up"));
            vec![open]
        }
    }
}

pub fn wizard_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    match wizard::key(&mut app.wizard, k) {
        wizard::Outcome::Stay => Vec::new(),
        wizard::Outcome::Close => {
            app.wizard = Wizard::default();
            app.mode = Mode::Normal;
            Vec::new()
        }
        wizard::Outcome::Review(a) => vec![Effect::Review(a)],
        wizard::Outcome::Save(a) => vec![Effect::Setup(a)],
        wizard::Outcome::Copy(line) => {
            app.wizard.said(
                "sent the authorized_keys line to the terminal's clipboard (OSC 52); if your terminal ignores it, w writes these lines to a file"
                    .into(),
            );
            vec![Effect::Copy(line)]
        }
        wizard::Outcome::Write(name, text) => vec![Effect::WriteInstructions { name, text }],
        wizard::Outcome::Test(name) => {
            // The walk of the new entry (step 6).
            let found = app
                .connections
                .iter()
                .find(|c| c.name == name && c.source == crate::config::SourceKind::Epoch)
                .cloned();
            app.wizard = Wizard::default();
            let refused = found
                .as_ref()
                .and_then(|c| super::reload::refusal(app, &c.display_name));
            match found {
                Some(_) if refused.is_some() => {
                    app.mode = Mode::Normal;
                    app.message = refused;
                    Vec::new()
                }
                Some(c) => diagnose(app, c),
                None => {
                    app.mode = Mode::Normal;
                    app.message = Some(format!("{name} did not load: r reads the files again"));
                    Vec::new()
                }
            }
        }
    }
}

fn diagnose(app: &mut App, c: Connection) -> Vec<Effect> {
    app.diagnosis = Some(Diagnosis {
        name: c.display_name.clone(),
        steps: Vec::new(),
        done: None,
    });
    app.mode = Mode::Diagnose;
    app.view_scroll = Some(0);
    vec![Effect::Engine(Command::Diagnose(Box::new(c)))]
}

/// A key in the `l` or `d` view: it scrolls, or closes the view.
pub fn view_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    let (_, page) = super::overlays::view_size(app);
    let page = page.max(1) as i64;
    match k.code {
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Char('l') => {
            app.mode = Mode::Normal
        }
        KeyCode::Down | KeyCode::Char('j') => scroll_view(app, 1),
        KeyCode::Up | KeyCode::Char('k') => scroll_view(app, -1),
        KeyCode::PageDown | KeyCode::Char(' ') => scroll_view(app, page),
        KeyCode::PageUp => scroll_view(app, -page),
        KeyCode::Home | KeyCode::Char('g') => app.view_scroll = Some(0),
        KeyCode::End | KeyCode::Char('G') => app.view_scroll = None,
        _ => {}
    }
    Vec::new()
}

/// Scrolls the `l` or `d` view by `d` lines; at the end it stays there (following what comes).
pub fn scroll_view(app: &mut App, d: i64) {
    let (n, h) = super::overlays::view_size(app);
    let max = n.saturating_sub(h);
    let top = super::overlays::scroll_top(app.view_scroll, n, h) as i64 + d;
    let top = top.clamp(0, max as i64) as usize;
    app.view_scroll = if top >= max { None } else { Some(top) };
}

pub fn normal_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    app.message = None;
    if k.code == KeyCode::Esc {
        app.filter.reset();
        app.refresh_rows();
        return Vec::new();
    }
    let Some(command) = app.keymap.command(&k) else {
        return Vec::new();
    };
    let page = app.page() as i64;
    // A broken entry is listed to say why it did not load; only closing what still runs
    // from before it broke is done on it.
    if matches!(
        command,
        Key::Toggle | Key::Diagnose | Key::Connect | Key::Copy | Key::Extend
    ) && let Some(c) = app.selected_connection()
        && !(command == Key::Toggle && app.is_open(&c.display_name))
        && let Some(why) = super::reload::refusal(app, &c.display_name)
    {
        app.message = Some(why);
        return Vec::new();
    }
    match command {
        Key::Up => app.move_by(-1),
        Key::Down => app.move_by(1),
        Key::PageUp => app.move_by(-page),
        Key::PageDown => app.move_by(page),
        Key::Top => app.select_first(),
        Key::Bottom => app.select_last(),
        Key::Toggle => match app.selected_connection() {
            Some(c) if c.forwards.is_empty() && !app.is_open(&c.display_name) => {
                app.message = Some(format!(
                    "{} has no forward to open; {} diagnoses it",
                    c.display_name,
                    app.keymap.first_key(Key::Diagnose)
                ));
            }
            Some(c) => return vec![toggle(app, c)],
            None => {}
        },
        Key::Diagnose => {
            if let Some(c) = app.selected_connection().cloned() {
                return diagnose(app, c);
            }
        }
        Key::Filter => app.mode = Mode::Filter,
        Key::History => {
            app.mode = Mode::History;
            // The config errors atop, when there are some; else the newest of the log.
            app.view_scroll = (!app.load_errors.is_empty()).then_some(0);
        }
        Key::Help => {
            app.help_scroll = 0;
            app.mode = Mode::Help;
        }
        Key::Setup => {
            app.wizard = Wizard::default();
            app.mode = Mode::Setup;
        }
        Key::Demo if app.connections.is_empty() => {
            app.message = Some("starting the demo: bastions and a database on loopback".into());
            return vec![Effect::Demo];
        }
        Key::Demo => {
            app.message =
                Some("the demo starts from an empty config; run warren demo for it now".into());
        }
        Key::Sort => {
            let i = SORTS.iter().position(|(_, s)| *s == app.sort).unwrap_or(0);
            app.sort = SORTS[(i + 1) % SORTS.len()].1;
            app.message = Some(format!("sorted by {}", SORTS[(i + 1) % SORTS.len()].0));
            app.refresh_rows();
        }
        Key::Group => {
            let i = GROUPS
                .iter()
                .position(|(_, g)| *g == app.group)
                .unwrap_or(0);
            let (name, next) = GROUPS[(i + 1) % GROUPS.len()];
            app.group = next;
            app.message = Some(match next {
                GroupBy::None => "not grouped".into(),
                _ => format!("grouped by {name}"),
            });
            app.refresh_rows();
        }
        Key::Details => {
            app.details = !app.details;
            app.scroll_to_selection();
        }
        Key::Reconnect => {
            // A tunnel waiting for the answer nobody gave is asked again, and only it: the
            // other tunnels' live sessions are left alone.
            if let Some(c) = app.selected_connection()
                && app.state(&c.display_name).waits_for_person()
            {
                let name = c.display_name.clone();
                app.message = Some(format!("{name}: asking again"));
                return vec![Effect::Engine(Command::Reconnect { names: vec![name] })];
            }
            app.message = Some("reconnecting every open tunnel".into());
            return vec![Effect::Engine(Command::Reconnect { names: Vec::new() })];
        }
        Key::Reload => {
            app.message = Some("config files read again".into());
            return vec![Effect::Reload];
        }
        Key::Connect => return connect(app),
        Key::Copy => {
            if let Some(c) = app.selected_connection() {
                if c.database.is_some() && app.is_open(&c.display_name) {
                    app.mode = Mode::CopyAs;
                    return Vec::new();
                }
                match connection_string(c, app.live.get(&c.display_name)) {
                    Some(s) => {
                        app.message = Some(format!("copied: {s}"));
                        return vec![Effect::Copy(s)];
                    }
                    None => {
                        app.message = Some(format!(
                            "{} is not open: {} opens it first",
                            c.display_name,
                            app.keymap.first_key(Key::Toggle)
                        ))
                    }
                }
            }
        }
        Key::All => {
            let visible: Vec<&Connection> = app
                .visible()
                .into_iter()
                .filter(|c| !c.forwards.is_empty())
                .collect();
            // All open: close them all; otherwise open the ones that are closed.
            let all_open =
                !visible.is_empty() && visible.iter().all(|c| app.is_open(&c.display_name));
            return visible
                .iter()
                .filter(|c| all_open || !app.is_open(&c.display_name))
                .map(|c| toggle(app, c))
                .collect();
        }
        Key::Extend => {
            let Some(c) = app.selected_connection() else {
                return Vec::new();
            };
            let name = c.display_name.clone();
            let limited = app
                .live
                .get(&name)
                .is_some_and(|l| l.stats.expires_in_secs.is_some());
            if !app.is_open(&name) || !limited {
                app.message = Some(format!("{name} has no time limit to extend"));
                return Vec::new();
            }
            let by = c
                .policy
                .max_duration
                .as_ref()
                .map(|d| humantime::format_duration(d.value.0).to_string());
            app.message = Some(match by {
                Some(by) => format!("{name}: {by} more"),
                None => format!("{name}: extended"),
            });
            return vec![Effect::Engine(Command::Extend { name, secs: None })];
        }
        Key::Quit => {
            if app.any_open() {
                app.mode = Mode::ConfirmQuit;
            } else {
                app.quit = true;
            }
        }
    }
    Vec::new()
}
