//! The TUI's screens rendered on ratatui's TestBackend and compared with snapshots (insta),
//! and its app state driven by keys: which engine commands come out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warren::config::epoch;
use warren::config::ssh_config::{FileKind, SshConfig};
use warren::config::{Connection, Context};
use warren::diagnose::{Status, Step};
use warren::engine::{Command, Event, TunnelState, TunnelStats};
use warren::prompt::Prompt;
use warren::tui::app::{Action, App, Effect, Mode, PROMPT_GUARD, update};
use warren::tui::view::{Theme, render};

const EPOCH: &str = r#"[storage.postgres.orders]
host = "orders.db.internal"
database = "orders"
username = "reporter"
local_port = 15432

[storage.postgres.orders.ssh_tunnel]
host = "bastion.example.com"
user = "ops"
key_file = "/home/tester/.ssh/id_ed25519"

[storage.mysql.billing]
host = "billing.db.internal"

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

const SSH: &str = "Host bastion\n    HostName bastion.example.com\n    User ops\n\nHost legacy\n    HostName legacy.example.com\n    LocalForward 13306 mysql.internal:3306\n";

fn connections() -> Vec<Connection> {
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

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| render(app, f, Theme { color: false }))
        .expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn ch(c: char) -> Action {
    key(KeyCode::Char(c))
}

fn event(app: &mut App, ev: Event) {
    update(app, Action::Engine(ev));
}

fn state(app: &mut App, name: &str, s: TunnelState) {
    event(
        app,
        Event::State {
            name: name.into(),
            state: s,
        },
    );
}

/// An app with one tunnel in each state, and live numbers on the open one.
fn busy_app() -> App {
    let mut app = App::new(connections(), vec![]);
    event(
        &mut app,
        Event::Listening {
            name: "orders".into(),
            local: "127.0.0.1:15432".into(),
            target: "orders.db.internal:5432".into(),
            via: "bastion.example.com".into(),
        },
    );
    state(&mut app, "orders", TunnelState::Connecting);
    state(&mut app, "orders", TunnelState::Up);
    state(&mut app, "billing", TunnelState::Connecting);
    state(
        &mut app,
        "cache",
        TunnelState::Reconnecting {
            in_secs: 4.0,
            attempt: 2,
        },
    );
    state(
        &mut app,
        "reports",
        TunnelState::Failed {
            error: "hop 0 (bastion.example.com:22): authentication failed".into(),
        },
    );
    for (i, (inb, outb)) in [
        (1000u64, 200u64),
        (5000, 900),
        (90_000, 4_000),
        (400_000, 30_000),
    ]
    .iter()
    .enumerate()
    {
        event(
            &mut app,
            Event::Stats {
                name: "orders".into(),
                stats: TunnelStats {
                    bytes_in: *inb,
                    bytes_out: *outb,
                    active: 2,
                    total: 7 + i as u64,
                    reconnects: 1,
                    uptime_secs: Some(3720.0),
                    last_error: None,
                    expires_in_secs: None,
                },
            },
        );
    }
    app
}

#[test]
fn the_list_with_every_tunnel_state_and_the_details_pane() {
    let mut app = busy_app();
    // Select "orders" (ssh hosts come first).
    update(&mut app, ch('j'));
    update(&mut app, ch('j'));
    assert_eq!(
        app.selected_connection().map(|c| c.display_name.as_str()),
        Some("orders")
    );
    insta::assert_snapshot!("list_and_details", screen(&app, 120, 30));
}

#[test]
fn an_80x24_terminal() {
    let app = busy_app();
    insta::assert_snapshot!("small_terminal", screen(&app, 80, 24));
}

fn step(id: &'static str, status: Status, detail: &str, hint: Option<&str>) -> Step {
    Step {
        id: serde_json::from_value(serde_json::Value::String(id.into())).expect("a step id"),
        hop: 0,
        status,
        duration_ms: 12,
        detail: detail.into(),
        hint: hint.map(String::from),
    }
}

#[test]
fn the_diagnostics_pane_mid_run_and_finished_with_a_failure() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('j'));
    update(&mut app, ch('j'));
    let effects = update(&mut app, ch('d'));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Diagnose(c))] if c.display_name == "orders")
    );
    for s in [
        step(
            "config",
            Status::Pass,
            "ops@bastion.example.com:22: key /home/tester/.ssh/id_ed25519 (OpenSSH), mode 0600",
            None,
        ),
        step(
            "dns",
            Status::Pass,
            "bastion.example.com -> 203.0.113.7",
            None,
        ),
        step("tcp", Status::Pass, "connected to 203.0.113.7:22", None),
    ] {
        event(
            &mut app,
            Event::Step {
                name: "orders".into(),
                step: s,
            },
        );
    }
    insta::assert_snapshot!("diagnose_running", screen(&app, 100, 24));
    event(
        &mut app,
        Event::Step {
            name: "orders".into(),
            step: step(
                "banner",
                Status::Fail,
                "this port speaks SMTP, not SSH: \"220 mail.example.com ESMTP\"",
                Some("the port is wrong: sshd usually listens on 22 (check port / Port)"),
            ),
        },
    );
    event(
        &mut app,
        Event::Diagnosed {
            name: "orders".into(),
            ok: false,
        },
    );
    insta::assert_snapshot!("diagnose_failed", screen(&app, 100, 24));
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

/// Lets the question on screen outlive its guard: as if the user looked at it a moment.
fn settle(app: &mut App) {
    app.prompt_shown_at = Some(Instant::now() - PROMPT_GUARD);
}

fn host_key_question(id: u64) -> Event {
    Event::Prompt {
        id,
        name: "orders".into(),
        prompt: Prompt::HostKey {
            host: "bastion.example.com".into(),
            key_type: "ED25519".into(),
            fingerprint: "SHA256:mVPwvezndPv/ARoIadVY98vAC0g+P/5633yTC4d/wXE".into(),
            other_names: vec![],
        },
        timeout_secs: 120,
    }
}

/// The countdown moves: snapshots show it as [time].
fn without_countdown(text: String) -> String {
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

#[test]
fn the_host_key_prompt_and_its_answers() {
    let mut app = App::new(connections(), vec![]);
    event(&mut app, host_key_question(7));
    assert_eq!(app.mode, Mode::Prompt);
    let text = screen(&app, 100, 24);
    assert!(text.contains("answer within 1:5"), "{text}");
    insta::assert_snapshot!("host_key_prompt", without_countdown(text));
    settle(&mut app);
    // Other keys do nothing; 'y' answers "yes, trust and save" to question 7.
    assert!(update(&mut app, ch('x')).is_empty());
    let effects = update(&mut app, ch('y'));
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Engine(Command::Answer {
                id: 7,
                answer: warren::prompt::Answer::HostKey(
                    warren::prompt::HostKeyAnswer::AcceptAndSave
                )
            })]
        ),
        "{effects:?}"
    );
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn a_key_typed_before_the_question_appeared_does_not_answer_it() {
    let mut app = App::new(connections(), vec![]);
    event(&mut app, host_key_question(7));
    // The user was pressing keys for the list; they arrive just after the dialog.
    for c in ['y', 'o', 's', 'n'] {
        assert!(update(&mut app, ch(c)).is_empty(), "{c} answered");
    }
    assert_eq!(app.mode, Mode::Prompt);
    assert_eq!(app.prompts.len(), 1);
    settle(&mut app);
    assert_eq!(update(&mut app, ch('n')).len(), 1);
}

#[test]
fn a_question_waits_while_the_user_types_in_the_filter() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('/'));
    update(&mut app, ch('o'));
    event(&mut app, host_key_question(9));
    // Still filtering: 's', 'o', 'y' go into the filter, not to the question.
    for c in ['s', 'y'] {
        assert!(update(&mut app, ch(c)).is_empty());
    }
    assert_eq!(app.mode, Mode::Filter);
    assert_eq!(app.filter.value(), "osy");
    assert!(
        screen(&app, 100, 24).contains("a question is waiting"),
        "the status line says a question waits"
    );
    // Done typing: the question comes up, and needs a fresh key press.
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Prompt);
    assert!(update(&mut app, ch('y')).is_empty());
}

#[test]
fn a_withdrawn_question_goes_and_cannot_be_answered() {
    let mut app = App::new(connections(), vec![]);
    event(&mut app, host_key_question(4));
    settle(&mut app);
    event(
        &mut app,
        Event::PromptWithdrawn {
            id: 4,
            name: "orders".into(),
        },
    );
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.prompts.is_empty());
    assert!(
        screen(&app, 100, 24).contains("withdrawn"),
        "the user is told"
    );
    // 'y' is now a plain key of the list: no answer goes out.
    assert!(
        !update(&mut app, ch('y'))
            .iter()
            .any(|e| matches!(e, Effect::Engine(Command::Answer { .. })))
    );
}

#[test]
fn a_passphrase_prompt_is_masked() {
    let mut app = App::new(connections(), vec![]);
    event(
        &mut app,
        Event::Prompt {
            id: 3,
            name: "orders".into(),
            prompt: Prompt::Passphrase {
                key_file: "/home/tester/.ssh/id_ed25519".into(),
            },
            timeout_secs: 120,
        },
    );
    settle(&mut app);
    for c in "hunter2".chars() {
        update(&mut app, ch(c));
    }
    let text = screen(&app, 100, 24);
    assert!(
        text.contains("> *******") && !text.contains("hunter2"),
        "{text}"
    );
    let effects = update(&mut app, key(KeyCode::Enter));
    match effects.as_slice() {
        [
            Effect::Engine(Command::Answer {
                id: 3,
                answer: warren::prompt::Answer::Secret(s),
            }),
        ] => assert_eq!(s.expose(), "hunter2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_help_and_the_empty_state() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('?'));
    insta::assert_snapshot!("help", screen(&app, 100, 24));
    let empty = App::new(
        Vec::new(),
        vec![
            "/home/tester/.ssh/config (not there)".into(),
            "/home/tester/.config/epoch/epoch.toml (not there)".into(),
        ],
    );
    insta::assert_snapshot!("empty_state", screen(&empty, 100, 24));
}

#[test]
fn filter_then_toggle_opens_the_match() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('/'));
    for c in "cach".chars() {
        update(&mut app, ch(c));
    }
    assert_eq!(
        app.visible()
            .iter()
            .map(|c| c.display_name.as_str())
            .collect::<Vec<_>>(),
        ["cache"]
    );
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    let effects = update(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Open { conn: c, .. })] if c.display_name == "cache")
    );
    state(&mut app, "cache", TunnelState::Up);
    let effects = update(&mut app, ch(' '));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Close { names, .. })] if names == &["cache".to_string()])
    );
    // Esc in the filter clears it.
    update(&mut app, ch('/'));
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.visible().len(), app.connections.len());
}

#[test]
fn fuzzy_filter_matches_host_and_target() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('/'));
    for c in "edge".chars() {
        update(&mut app, ch(c));
    }
    assert_eq!(
        app.visible()
            .iter()
            .map(|c| c.display_name.as_str())
            .collect::<Vec<_>>(),
        ["cache"],
        "matched by its bastion's host"
    );
}

#[test]
fn a_opens_every_visible_tunnel_then_closes_them() {
    let mut app = App::new(connections(), vec![]);
    let effects = update(&mut app, ch('a'));
    let opened: Vec<String> = effects
        .iter()
        .filter_map(|e| {
            if let Effect::Engine(Command::Open { conn: c, .. }) = e {
                Some(c.display_name.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        opened,
        ["legacy", "orders", "billing", "cache", "reports"],
        "bastion has no forward"
    );
    for n in &opened {
        state(&mut app, n, TunnelState::Up);
    }
    let effects = update(&mut app, ch('a'));
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Engine(Command::Close { .. })))
            .count(),
        5
    );
}

#[test]
fn quit_asks_first_only_when_tunnels_are_open() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('q'));
    assert!(app.quit, "nothing open: q quits at once");

    let mut app = App::new(connections(), vec![]);
    state(&mut app, "orders", TunnelState::Up);
    update(&mut app, ch('q'));
    assert!(!app.quit);
    assert_eq!(app.mode, Mode::ConfirmQuit);
    update(&mut app, ch('n'));
    assert_eq!(
        (app.quit, &app.mode),
        (false, &Mode::Normal),
        "any other key stays"
    );
    update(&mut app, ch('q'));
    update(&mut app, ch('y'));
    assert!(app.quit);
}

#[test]
fn copy_gives_a_connection_string_once_open() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, ch('j'));
    update(&mut app, ch('j'));
    assert!(
        update(&mut app, ch('c')).is_empty(),
        "not open: nothing to copy"
    );
    event(
        &mut app,
        Event::Listening {
            name: "orders".into(),
            local: "127.0.0.1:15432".into(),
            target: String::new(),
            via: String::new(),
        },
    );
    let effects = update(&mut app, ch('c'));
    assert!(
        matches!(effects.as_slice(), [Effect::Copy(s)] if s == "postgresql://reporter@127.0.0.1:15432/orders"),
        "{effects:?}"
    );
}

#[test]
fn no_color_draws_without_colours() {
    let app = busy_app();
    let mut t = Terminal::new(TestBackend::new(100, 24)).expect("terminal");
    t.draw(|f| render(&app, f, Theme { color: false }))
        .expect("draw");
    let buf = t.backend().buffer();
    let coloured = buf
        .content()
        .iter()
        .any(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset);
    assert!(!coloured, "NO_COLOR: no cell has a colour");
}

#[test]
fn a_click_selects_a_row_and_the_wheel_scrolls() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, Action::Click(3));
    assert_eq!(
        app.selected_connection().map(|c| c.display_name.as_str()),
        Some("billing")
    );
    update(&mut app, Action::ScrollDown);
    assert_eq!(app.selected, 4);
    update(&mut app, Action::ScrollUp);
    update(&mut app, Action::ScrollUp);
    assert_eq!(app.selected, 2);
    update(&mut app, Action::Click(40));
    assert_eq!(app.selected, 2, "a click below the list changes nothing");
}

#[test]
fn the_wizard_needs_every_answer_but_the_jump_host() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, key(KeyCode::Char('s')));
    assert_eq!(app.mode, Mode::Setup);
    let answer = |app: &mut App, text: &str| {
        for c in text.chars() {
            update(app, key(KeyCode::Char(c)));
        }
        update(app, key(KeyCode::Enter))
    };
    // An empty engine is refused, with the reason on screen.
    assert!(answer(&mut app, "").is_empty());
    assert!(screen(&app, 100, 24).contains("an answer is needed"));
    for a in [
        "postgres",
        "10.0.0.5:5432",
        "orders2",
        "ops@bastion.example.com",
    ] {
        assert!(answer(&mut app, a).is_empty());
    }
    // The jump host may be left empty; the key may not.
    assert!(answer(&mut app, "").is_empty());
    assert!(answer(&mut app, "").is_empty());
    assert!(screen(&app, 100, 24).contains("an answer is needed"));
    // 'agent' has no key file, so there is no passphrase to ask for.
    let effects = answer(&mut app, "agent");
    assert!(
        matches!(effects.as_slice(), [Effect::Setup { answers: a, passphrase: None }]
            if a[3] == "ops@bastion.example.com" && a[4].is_empty() && a[5] == "agent"),
        "{effects:?}"
    );
}

#[test]
fn the_wizard_masks_a_new_keys_passphrase() {
    let mut app = App::new(connections(), vec![]);
    update(&mut app, key(KeyCode::Char('s')));
    let answer = |app: &mut App, text: &str| {
        for c in text.chars() {
            update(app, key(KeyCode::Char(c)));
        }
        update(app, key(KeyCode::Enter))
    };
    for a in [
        "postgres",
        "10.0.0.5:5432",
        "orders2",
        "bastion",
        "",
        "~/.ssh/new_key",
    ] {
        assert!(answer(&mut app, a).is_empty());
    }
    for c in " hunter2-horse".chars() {
        update(&mut app, key(KeyCode::Char(c)));
    }
    let typing = screen(&app, 100, 24);
    assert!(
        !typing.contains("hunter2") && typing.contains("**************_"),
        "{typing}"
    );
    let effects = update(&mut app, key(KeyCode::Enter));
    let [
        Effect::Setup {
            answers,
            passphrase: Some(p),
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}");
    };
    // Taken as typed: a leading space is part of the passphrase.
    assert_eq!(p.expose(), " hunter2-horse");
    // Neither the answers nor any debug output carry it.
    assert!(!answers.iter().any(|a| a.contains("hunter2")));
    assert!(!format!("{effects:?}").contains("hunter2"));
    assert!(!screen(&app, 100, 24).contains("hunter2"));
}
