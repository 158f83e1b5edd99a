//! The TUI's fixture for screen tests: a config with one tunnel in each state, an app with live
//! numbers and a timeline at fixed times, drawing on ratatui's TestBackend, and the check run
//! on every snapshot: no word is cut without an ellipsis.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warren::config::epoch;
use warren::config::ssh_config::{FileKind, SshConfig};
use warren::config::{Connection, Context};
use warren::engine::{Event, TunnelState, TunnelStats};
use warren::tui::app::{Action, App, update};
use warren::tui::theme::Theme;
use warren::tui::view::render;

pub const EPOCH: &str = r#"[storage.postgres.orders]
host = "orders-primary.db.internal"
database = "orders"
username = "reporter"
local_port = 15432
tags = ["prod", "eu"]

[storage.postgres.orders.ssh_tunnel]
host = "bastion.example.com"
user = "ops"
key_file = "/home/tester/.ssh/id_ed25519"

[storage.mysql.billing]
host = "billing.db.internal"
tags = ["prod"]

[storage.mysql.billing.ssh_tunnel]
host = "bastion.example.com"
user = "ops"

[storage.redis.cache]
host = "cache.internal"

[storage.redis.cache.ssh_tunnel]
host = "edge.example.com"

[storage.postgres.reports]
host = "reports.db.internal"

[storage.postgres.reports.ssh_tunnel]
host = "bastion.example.com"
"#;

pub const SSH: &str = "Host bastion\n    HostName bastion.example.com\n    User ops\n\nHost legacy\n    HostName legacy.example.com\n    LocalForward 13306 mysql.internal:3306\n";

pub fn connections() -> Vec<Connection> {
    let ctx = Arc::new(Context::new(
        PathBuf::from("/home/tester"),
        "tester",
        HashMap::new(),
    ));
    let ssh = SshConfig::from_texts(
        Arc::clone(&ctx),
        &[(Path::new("/home/tester/.ssh/config"), SSH, FileKind::User)],
    );
    let mut out: Vec<Connection> = ssh
        .aliases
        .iter()
        .map(|a| warren::config::from_ssh::connection(&ssh, &a.name, a.origin.clone()))
        .collect();
    out.extend(
        epoch::load(
            Path::new("/home/tester/.config/epoch/epoch.toml"),
            EPOCH,
            &ctx,
            &ssh,
        )
        .connections,
    );
    out
}

/// 09:00:00 UTC on some day: the fixture's clock.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000 - 1_750_000_000 % 86_400 + 9 * 3600)
}

pub fn key(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

pub fn ch(c: char) -> Action {
    key(KeyCode::Char(c))
}

pub fn event(app: &mut App, ev: Event) {
    update(app, Action::Engine(ev));
}

pub fn state(app: &mut App, name: &str, s: TunnelState) {
    event(
        app,
        Event::State {
            name: name.into(),
            state: s,
        },
    );
}

/// An app at a fixed time, sized `w` x `h`.
pub fn app(w: u16, h: u16) -> App {
    let mut app = App::new(connections(), vec![]);
    app.frozen_time = Some(t0());
    app.utc_offset = 0;
    update(&mut app, Action::Resize(w, h));
    app
}

/// The clock moves on by `secs`.
pub fn later(app: &mut App, secs: u64) {
    app.frozen_time = app.frozen_time.map(|t| t + Duration::from_secs(secs));
}

/// An app with one tunnel in each state, live numbers and a story on the open one, "orders"
/// selected.
pub fn busy_app(w: u16, h: u16) -> App {
    let mut app = app(w, h);
    event(
        &mut app,
        Event::Listening {
            name: "orders".into(),
            local: "127.0.0.1:15432".into(),
            target: "orders-primary.db.internal:5432".into(),
            via: "bastion.example.com".into(),
        },
    );
    state(&mut app, "orders", TunnelState::Connecting);
    later(&mut app, 1);
    state(&mut app, "orders", TunnelState::Up);
    later(&mut app, 600);
    state(
        &mut app,
        "orders",
        TunnelState::Reconnecting {
            in_secs: 1.0,
            attempt: 1,
        },
    );
    later(&mut app, 2);
    state(&mut app, "orders", TunnelState::Up);
    for (ok, detail, ms) in [
        (false, "connection refused", None),
        (true, "PostgreSQL answered", Some(3)),
    ] {
        later(&mut app, 30);
        event(
            &mut app,
            Event::Health {
                name: "orders".into(),
                health: warren::engine::Health {
                    ok,
                    detail: detail.into(),
                    latency_ms: ms,
                    brief: None,
                    checked_at: String::new(),
                },
            },
        );
    }
    state(&mut app, "billing", TunnelState::Connecting);
    state(&mut app, "cache", TunnelState::Up);
    later(&mut app, 30);
    state(
        &mut app,
        "cache",
        TunnelState::Reconnecting {
            in_secs: 4.0,
            attempt: 2,
        },
    );
    state(&mut app, "reports", TunnelState::Connecting);
    state(
        &mut app,
        "reports",
        TunnelState::Failed {
            error: "hop 0 (bastion.example.com:22): authentication failed".into(),
        },
    );
    let mut total = (0u64, 0u64);
    for (i, (inb, outb)) in [
        (1000u64, 200u64),
        (5000, 900),
        (90_000, 4_000),
        (400_000, 30_000),
        (120_000, 9_000),
        (800_000, 60_000),
    ]
    .iter()
    .enumerate()
    {
        total = (total.0 + inb, total.1 + outb);
        event(
            &mut app,
            Event::Stats {
                name: "orders".into(),
                stats: TunnelStats {
                    bytes_in: total.0,
                    bytes_out: total.1,
                    active: 2,
                    total: 7 + i as u64,
                    reconnects: 1,
                    uptime_secs: Some(3720.0),
                    ..Default::default()
                },
            },
        );
    }
    select(&mut app, "orders");
    app
}

/// Moves the selection to the connection named `name`.
pub fn select(app: &mut App, name: &str) {
    update(app, key(KeyCode::Home));
    for _ in 0..app.connections.len() {
        if app.selected_connection().map(|c| c.display_name.as_str()) == Some(name) {
            return;
        }
        update(app, ch('j'));
    }
    panic!("{name} is not in the list");
}

/// The screen as text, each line's trailing blanks removed.
pub fn screen(app: &App, theme: Theme) -> String {
    let (w, h) = app.size;
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| render(app, f, theme)).expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The screen's buffer with its styles (ratatui's Debug form): for the themes.
pub fn styled(app: &App, theme: Theme) -> String {
    let (w, h) = app.size;
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| render(app, f, theme)).expect("draw");
    format!("{:?}", t.backend().buffer())
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| {
        c.is_whitespace() || matches!(c, '│' | '┌' | '┐' | '└' | '┘' | '─' | '├' | '┤' | '›')
    })
    .filter(|w| !w.is_empty())
}

/// Fails when a word on `shown` is a word of `whole` (the same state drawn where nothing needs
/// cutting) with its end missing and no `…`: a line cut silently.
pub fn assert_no_silent_cut(what: &str, shown: &str, whole: &str) {
    let known: HashSet<&str> = words(whole).collect();
    for (n, line) in shown.lines().enumerate() {
        for w in words(line) {
            if w.ends_with('…') || known.contains(w) || w.chars().count() < 2 {
                continue;
            }
            if w.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if let Some(k) = known.iter().find(|k| k.len() > w.len() && k.starts_with(w)) {
                panic!(
                    "{what}, line {}: '{w}' is '{k}' cut without an ellipsis:\n{shown}",
                    n + 1
                );
            }
        }
    }
}

/// The screen as text, checked for silent cuts against the same app drawn 400 columns wide.
pub fn checked(what: &str, app: &mut App, theme: Theme) -> String {
    let size = app.size;
    let shown = screen(app, theme);
    update(app, Action::Resize(400, size.1.max(60)));
    let whole = screen(app, theme);
    update(app, Action::Resize(size.0, size.1));
    assert_no_silent_cut(what, &shown, &whole);
    shown
}

/// The countdown moves: snapshots show it as [time].
pub fn without_countdown(text: String) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.find("answer within ") {
            Some(i) => {
                let rest = &line[i + "answer within ".len()..];
                let end = rest.find(',').unwrap_or(rest.len());
                out.push_str(&line[..i]);
                out.push_str("answer within [time]");
                out.push_str(&rest[end..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
