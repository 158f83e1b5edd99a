//! The TUI's app state driven by keys and engine events, as a user would drive it: which
//! engine commands come out, what the list shows and in which order, the questions' safety
//! rules, the setup form, the settings' key bindings. (Every screen's picture is in
//! tests/tui_snapshots.rs.)

mod screens;

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use screens::*;
use warren::config::{Context, Secret};
use warren::engine::{Command, Event, TunnelState, TunnelStats};
use warren::prompt::Prompt;
use warren::settings::Settings;
use warren::tui::app::{Action, App, Effect, Mode, PROMPT_GUARD, update};
use warren::tui::theme::Theme;
use warren::tui::wizard::{Failure, Field, KeyKind, Saved, Stage};

fn names(app: &App) -> Vec<&str> {
    app.visible()
        .iter()
        .map(|c| c.display_name.as_str())
        .collect()
}

fn selected(app: &App) -> Option<&str> {
    app.selected_connection().map(|c| c.display_name.as_str())
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

fn text(app: &App) -> String {
    screen(app, Theme::mono())
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        update(app, ch(c));
    }
}

#[test]
fn the_list_is_a_table_with_a_header_and_whole_targets() {
    let app = busy_app(120, 40);
    let s = text(&app);
    let header = s
        .lines()
        .find(|l| l.contains("NAME"))
        .expect("a header row");
    for h in ["STATE", "NAME", "LOCAL", "TARGET", "VIA", "TRAFFIC"] {
        assert!(header.contains(h), "{h} in {header}");
    }
    // Columns line up: every target starts in the TARGET column.
    let column = |line: &str, t: &str| line.find(t).map(|i| line[..i].chars().count());
    let col = column(header, "TARGET");
    for t in ["orders-primary.db.internal:5432", "mysql.internal:3306"] {
        let line = s.lines().find(|l| l.contains(t)).expect(t);
        assert_eq!(column(line, t), col, "{line}");
    }
    // The details go under the list below 140 columns: the list keeps the full width.
    assert!(s.lines().nth(1).is_some_and(|l| l.chars().count() == 120));
}

#[test]
fn s_sorts_by_name_state_source_and_traffic() {
    let mut app = busy_app(120, 40);
    assert_eq!(
        names(&app),
        ["bastion", "billing", "cache", "legacy", "orders", "reports"]
    );
    update(&mut app, ch('S'));
    assert_eq!(
        names(&app),
        ["reports", "cache", "billing", "orders", "bastion", "legacy"],
        "state: failed, reconnecting, connecting, up, down"
    );
    assert_eq!(selected(&app), Some("orders"), "the selection stays put");
    update(&mut app, ch('S'));
    assert_eq!(
        names(&app),
        ["bastion", "legacy", "billing", "cache", "orders", "reports"],
        "source: ssh_config, then epoch.toml"
    );
    update(&mut app, ch('S'));
    assert_eq!(names(&app)[0], "orders", "traffic: the busiest first");
    assert!(text(&app).contains("sorted by traffic"));
    update(&mut app, ch('S'));
    assert_eq!(names(&app)[0], "bastion", "and back to names");
}

#[test]
fn g_groups_by_source_then_by_tag_under_headers_that_the_selection_skips() {
    let mut app = busy_app(120, 40);
    update(&mut app, ch('g'));
    let s = text(&app);
    assert!(
        s.contains("ssh_config (2)") && s.contains("epoch.toml (4)"),
        "{s}"
    );
    update(&mut app, key(KeyCode::Home));
    assert_eq!(selected(&app), Some("bastion"));
    update(&mut app, ch('j'));
    update(&mut app, ch('j'));
    assert_eq!(
        selected(&app),
        Some("billing"),
        "over the epoch.toml header"
    );
    update(&mut app, ch('k'));
    assert_eq!(selected(&app), Some("legacy"));
    // By tag: a section a tag, orders (eu, prod) in both, the untagged last.
    update(&mut app, ch('g'));
    let s = text(&app);
    assert!(
        s.contains("@eu (1)") && s.contains("@prod (2)") && s.contains("no tag (4)"),
        "{s}"
    );
    assert_eq!(
        names(&app),
        [
            "orders", "billing", "orders", "bastion", "cache", "legacy", "reports"
        ]
    );
    assert_eq!(selected(&app), Some("legacy"), "the selection stays put");
    update(&mut app, ch('g'));
    assert!(!text(&app).contains("ssh_config (2)") && !text(&app).contains("@prod"));
}

#[test]
fn many_connections_scroll_a_page_at_a_time_and_keep_the_selection_on_screen() {
    let ctx = std::sync::Arc::new(Context::new("/h".into(), "me", Default::default()));
    let cfg: String = (0..200)
        .map(|i| format!("Host db{i:03}\n    LocalForward {} x:5432\n", 20000 + i))
        .collect();
    let ssh = warren::config::ssh_config::SshConfig::from_texts(
        std::sync::Arc::clone(&ctx),
        &[(
            std::path::Path::new("/h/.ssh/config"),
            cfg.as_str(),
            warren::config::ssh_config::FileKind::User,
        )],
    );
    let conns = ssh
        .aliases
        .iter()
        .map(|a| warren::config::from_ssh::connection(&ssh, &a.name, a.origin.clone()))
        .collect();
    let mut app = App::new(conns, vec![]);
    update(&mut app, Action::Resize(80, 24));
    let page = app.page();
    update(&mut app, key(KeyCode::PageDown));
    assert_eq!(selected(&app), Some(format!("db{page:03}").as_str()));
    assert!(text(&app).contains(&format!("db{page:03}")), "on screen");
    update(&mut app, key(KeyCode::End));
    assert_eq!(selected(&app), Some("db199"));
    assert!(text(&app).contains("db199"));
    // A click on the first row on screen selects it.
    let first_shown = app.offset;
    update(&mut app, Action::Click(3));
    assert_eq!(selected(&app), Some(format!("db{first_shown:03}").as_str()));
}

#[test]
fn i_hides_the_details_and_the_list_takes_the_height() {
    let mut app = busy_app(100, 30);
    let rows = app.page();
    update(&mut app, ch('i'));
    assert!(!text(&app).contains(" details "));
    assert!(app.page() > rows);
}

#[test]
fn the_details_show_the_timeline_with_times() {
    let app = busy_app(120, 40);
    let s = text(&app);
    for line in [
        "09:00:01 ● opened",
        "09:10:01 ↯ dropped",
        "09:10:03 ● reconnected",
    ] {
        assert!(s.contains(line), "{line}:\n{s}");
    }
}

#[test]
fn the_diagnostics_pane_fills_in_step_by_step() {
    let mut app = busy_app(100, 30);
    let effects = update(&mut app, ch('d'));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Diagnose(c))] if c.display_name == "orders")
    );
    assert!(text(&app).contains("running..."));
    event(
        &mut app,
        Event::Diagnosed {
            name: "orders".into(),
            ok: true,
        },
    );
    assert!(text(&app).contains("no step failed"));
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn the_host_key_prompt_and_its_answers() {
    let mut app = app(100, 30);
    event(&mut app, host_key_question(7));
    assert_eq!(app.mode, Mode::Prompt);
    let s = text(&app);
    assert!(s.contains("answer within 1:5"), "{s}");
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
    let mut app = app(100, 30);
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
fn a_question_waits_while_the_user_types_in_the_filter_or_the_form() {
    let mut app = app(100, 30);
    update(&mut app, ch('/'));
    update(&mut app, ch('o'));
    event(&mut app, host_key_question(9));
    // Still filtering: 's', 'y' go into the filter, not to the question.
    for c in ['s', 'y'] {
        assert!(update(&mut app, ch(c)).is_empty());
    }
    assert_eq!(app.mode, Mode::Filter);
    assert_eq!(app.filter.value(), "osy");
    assert!(text(&app).contains("a question is waiting"));
    // Done typing: the question comes up, and needs a fresh key press.
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Prompt);
    assert!(update(&mut app, ch('y')).is_empty());

    let mut app = self::app(100, 30);
    update(&mut app, ch('s'));
    event(&mut app, host_key_question(10));
    update(&mut app, key(KeyCode::Tab));
    typed(&mut app, "yes");
    assert_eq!(app.mode, Mode::Setup, "the form keeps the keyboard");
    assert_eq!(app.wizard.typed(Field::Target), "yes");
}

#[test]
fn a_withdrawn_question_goes_and_cannot_be_answered() {
    let mut app = app(100, 30);
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
    assert!(text(&app).contains("withdrawn"), "the user is told");
    assert!(
        !update(&mut app, ch('y'))
            .iter()
            .any(|e| matches!(e, Effect::Engine(Command::Answer { .. })))
    );
}

#[test]
fn keys_typed_for_a_question_that_went_do_not_reach_the_list() {
    let mut app = app(100, 30);
    update(&mut app, ch('/'));
    typed(&mut app, "cach");
    update(&mut app, key(KeyCode::Enter));
    let group = app.group;
    event(
        &mut app,
        Event::Prompt {
            id: 5,
            name: "orders".into(),
            prompt: Prompt::Password {
                user: "ops".into(),
                host: "bastion.example.com".into(),
            },
            timeout_secs: 120,
        },
    );
    settle(&mut app);
    typed(&mut app, "wro");
    // The question times out (the engine withdraws it) while the user types.
    event(
        &mut app,
        Event::PromptWithdrawn {
            id: 5,
            name: "orders".into(),
        },
    );
    assert_eq!(app.mode, Mode::Normal);
    let mut effects = Vec::new();
    for c in "ng".chars() {
        effects.extend(update(&mut app, ch(c)));
    }
    effects.extend(update(&mut app, key(KeyCode::Enter)));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(app.group, group, "g did not regroup the list");
    // A moment later the list has the keyboard again.
    app.prompt_gone_at = Some(Instant::now() - PROMPT_GUARD);
    let effects = update(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Open { conn: c, .. })] if c.display_name == "cache"),
        "{effects:?}"
    );
}

#[test]
fn a_passphrase_prompt_is_masked() {
    let mut app = app(100, 30);
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
    typed(&mut app, "hunter2");
    let s = text(&app);
    assert!(s.contains("> *******") && !s.contains("hunter2"), "{s}");
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
fn filter_then_toggle_opens_the_match() {
    let mut app = app(100, 30);
    update(&mut app, ch('/'));
    typed(&mut app, "cach");
    assert_eq!(names(&app), ["cache"]);
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
    update(&mut app, ch('/'));
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.visible().len(), app.connections.len());
}

#[test]
fn a_busy_port_asks_to_take_the_free_one_for_this_session() {
    let mut app = app(100, 30);
    state(
        &mut app,
        "cache",
        TunnelState::Failed {
            error: "cannot listen on 127.0.0.1:16379: the port is in use by python3 (pid 811); 16380 is free (warren up --port-fallback takes it)".into(),
        },
    );
    assert_eq!(app.mode, Mode::PortBusy);
    assert!(
        text(&app).contains(
            "cache: its port is used by python3 (pid 811). Use 16380 for this session? y yes  n no"
        ),
        "{}",
        text(&app)
    );
    let effects = update(&mut app, ch('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Open { conn: c, .. })] if c.display_name == "cache" && c.policy.port_fallback),
        "{effects:?}"
    );
    assert_eq!(app.mode, Mode::Normal);
    // n leaves it failed.
    state(&mut app, "cache", TunnelState::Down);
    state(
        &mut app,
        "cache",
        TunnelState::Failed {
            error: "the port is in use by python3 (pid 811); 16380 is free (warren up --port-fallback takes it)".into(),
        },
    );
    assert!(update(&mut app, ch('n')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn tags_in_the_filter_select_and_the_rest_is_fuzzy() {
    let mut app = app(100, 30);
    update(&mut app, ch('/'));
    typed(&mut app, "@prod");
    let tagged: Vec<&str> = app
        .connections
        .iter()
        .filter(|c| c.has_tag("prod"))
        .map(|c| c.display_name.as_str())
        .collect();
    assert!(!tagged.is_empty(), "the sample has prod tags");
    let mut shown = names(&app);
    shown.sort();
    let mut want = tagged.clone();
    want.sort();
    assert_eq!(shown, want);
    typed(&mut app, " ord");
    assert!(
        names(&app).iter().all(|n| n.contains("ord")),
        "{:?}",
        names(&app)
    );
}

#[test]
fn a_reload_with_errors_takes_the_entries_that_load_and_says_where_the_error_is() {
    use warren::tui::reload::{self, LoadError, Loaded};
    let load = |connections, errors| Loaded {
        connections,
        broken: Vec::new(),
        errors,
        looked_in: Vec::new(),
    };
    let mut app = app(100, 30);
    let all = app.connections.clone();
    let err = |line: u32, msg: &str| LoadError {
        key: format!("/home/me/.ssh/config\0{msg}"),
        text: format!("config:{line}: {msg}"),
    };
    reload::apply(&mut app, load(all.clone(), Vec::new()), false);
    assert!(app.config_error.is_none(), "{:?}", app.config_error);
    // An error (ssh_config's, say): the list is what loads, as `warren list` shows it, and
    // the status line says where the error is and which key shows it whole.
    let fewer: Vec<_> = all[1..].to_vec();
    update(
        &mut app,
        Action::Loaded(load(
            fewer.clone(),
            vec![err(4, "bad port"), err(9, "unclosed quote")],
        )),
    );
    assert_eq!(app.connections.len(), fewer.len());
    let s = text(&app);
    assert!(
        s.contains("2 config errors (l shows them whole): config:4: bad port"),
        "{s}"
    );
    // `l` has every one of them.
    update(&mut app, ch('l'));
    let s = text(&app);
    assert!(
        s.contains("config:4: bad port") && s.contains("config:9: unclosed quote"),
        "{s}"
    );
    update(&mut app, key(KeyCode::Esc));
    // Fixed: the error goes.
    update(&mut app, Action::Loaded(load(all.clone(), Vec::new())));
    assert!(app.config_error.is_none(), "{:?}", app.config_error);
    assert!(!text(&app).contains("config error"));
}

#[test]
fn an_open_tunnel_whose_entry_left_the_config_stays_until_it_closes() {
    let mut app = app(100, 30);
    state(&mut app, "cache", TunnelState::Up);
    let without: Vec<_> = app
        .connections
        .iter()
        .filter(|c| c.display_name != "cache" && c.display_name != "legacy")
        .cloned()
        .collect();
    state(&mut app, "legacy", TunnelState::Down);
    update(
        &mut app,
        Action::Loaded(warren::tui::reload::Loaded {
            connections: without,
            broken: Vec::new(),
            errors: Vec::new(),
            looked_in: Vec::new(),
        }),
    );
    assert!(names(&app).contains(&"cache"), "open: still listed");
    assert!(!names(&app).contains(&"legacy"), "closed: gone at once");
    assert!(
        app.message
            .as_deref()
            .is_some_and(|m| m.contains("config changed for open cache")),
        "{:?}",
        app.message
    );
    state(&mut app, "cache", TunnelState::Down);
    assert!(!names(&app).contains(&"cache"), "gone once closed");
}

#[test]
fn fuzzy_filter_matches_host_and_target() {
    let mut app = app(100, 30);
    update(&mut app, ch('/'));
    typed(&mut app, "edge");
    assert_eq!(names(&app), ["cache"], "matched by its bastion's host");
    typed(&mut app, "zzz");
    assert!(text(&app).contains("nothing matches 'edgezzz'"));
}

#[test]
fn a_opens_every_visible_tunnel_then_closes_them() {
    let mut app = app(100, 30);
    let effects = update(&mut app, ch('a'));
    let opened: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Engine(Command::Open { conn: c, .. }) => Some(c.display_name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        opened,
        ["billing", "cache", "legacy", "orders", "reports"],
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
    let mut app = app(100, 30);
    update(&mut app, ch('q'));
    assert!(app.quit, "nothing open: q quits at once");

    let mut app = self::app(100, 30);
    state(&mut app, "orders", TunnelState::Up);
    update(&mut app, ch('q'));
    assert!(!app.quit);
    assert_eq!(app.mode, Mode::ConfirmQuit);
    update(&mut app, ch('n'));
    assert_eq!((app.quit, &app.mode), (false, &Mode::Normal));
    update(&mut app, ch('q'));
    update(&mut app, ch('y'));
    assert!(app.quit);
}

#[test]
fn leaving_tunnels_running_quits_only_once_the_daemon_has_them_up() {
    use warren::tui::commands::NotHandedOver;
    let mut app = app(100, 30);
    state(&mut app, "orders", TunnelState::Up);
    update(&mut app, ch('q'));
    let s = text(&app);
    for k in [
        "y  quit (tunnels close)",
        "l  leave them running",
        "any other key: stay",
    ] {
        assert!(s.contains(k), "{k}:\n{s}");
    }
    let effects = update(&mut app, ch('l'));
    assert!(
        matches!(effects.as_slice(), [Effect::HandOver(c)] if c.len() == 1 && c[0].display_name == "orders"),
        "{effects:?}"
    );
    assert!(!app.quit, "not before the daemon says");
    assert!(
        update(&mut app, key(KeyCode::Enter)).is_empty(),
        "keys wait"
    );
    let effects = update(
        &mut app,
        Action::HandedOver(Err(NotHandedOver {
            names: vec!["orders".into()],
            failed: vec![("orders".into(), "Host key verification failed".into())],
        })),
    );
    assert!(!app.quit);
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Open { conn: c, .. })] if c.display_name == "orders"),
        "opened here again: {effects:?}"
    );
    assert!(text(&app).contains("Host key verification failed"));
    update(&mut app, ch('q'));
    update(&mut app, ch('l'));
    update(&mut app, Action::HandedOver(Ok(())));
    assert!(app.quit);
}

#[test]
fn copy_gives_a_connection_string_once_open() {
    let mut app = app(100, 30);
    select(&mut app, "orders");
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
fn mono_draws_without_colours_and_every_state_reads_from_its_symbol() {
    let app = busy_app(100, 30);
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).expect("t");
    t.draw(|f| warren::tui::view::render(&app, f, Theme::mono()))
        .expect("draw");
    let coloured = t
        .backend()
        .buffer()
        .content()
        .iter()
        .any(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset);
    assert!(!coloured, "NO_COLOR: no cell has a colour");
    let s = text(&app);
    for badge in ["● up", "○ down", "connecting", "↻ retry 4s", "✘ failed"] {
        assert!(s.contains(badge), "{badge}");
    }
}

#[test]
fn the_retry_countdown_shows_the_time_left_not_the_delay() {
    let mut app = app(120, 30);
    state(&mut app, "orders", TunnelState::Up);
    state(
        &mut app,
        "orders",
        TunnelState::Reconnecting {
            in_secs: 14.0,
            attempt: 3,
        },
    );
    assert!(text(&app).contains("↻ retry 14s"), "{}", text(&app));
    later(&mut app, 5);
    let s = text(&app);
    assert!(s.contains("↻ retry 9s") && !s.contains("retry 14s"), "{s}");
    later(&mut app, 20);
    assert!(text(&app).contains("↻ retry 0s"), "never below zero");
    // The next attempt's wait counts from when it was told.
    state(
        &mut app,
        "orders",
        TunnelState::Reconnecting {
            in_secs: 28.0,
            attempt: 4,
        },
    );
    later(&mut app, 3);
    assert!(text(&app).contains("↻ retry 25s"), "{}", text(&app));
    // A wait no clock holds (it comes over the daemon's wire) is no wait, not a panic.
    for in_secs in [f64::INFINITY, f64::NAN, -1.0, 1e300] {
        state(
            &mut app,
            "orders",
            TunnelState::Reconnecting {
                in_secs,
                attempt: 5,
            },
        );
        assert!(
            text(&app).contains("↻ retry 0s"),
            "{in_secs}: {}",
            text(&app)
        );
    }
}

#[test]
fn d_on_the_empty_list_starts_the_demo() {
    let mut empty = App::new(Vec::new(), vec![]);
    assert!(text(&empty).contains("D   see warren work"));
    let effects = update(&mut empty, ch('D'));
    assert!(matches!(effects.as_slice(), [Effect::Demo]), "{effects:?}");
    // With connections, D says how instead of replacing them.
    let mut app = app(100, 30);
    assert!(update(&mut app, ch('D')).is_empty());
    assert!(text(&app).contains("warren demo"));
}

#[test]
fn a_drop_rings_the_bell_as_the_settings_say() {
    let mut app = app(100, 30);
    state(&mut app, "orders", TunnelState::Up);
    let effects = update(
        &mut app,
        Action::Engine(Event::State {
            name: "orders".into(),
            state: TunnelState::Reconnecting {
                in_secs: 1.0,
                attempt: 1,
            },
        }),
    );
    assert!(
        matches!(effects.as_slice(), [Effect::Notify { text, bell: true, desktop: false }] if text == "orders dropped"),
        "{effects:?}"
    );
    let ctx = Context::new("/h".into(), "me", Default::default());
    let s = Settings::parse(
        std::path::Path::new("/h/.config/warren/config.toml"),
        "[notifications]\non = [\"reconnected\"]\nbell = false\ndesktop = true\n",
        &ctx,
    );
    app.apply_settings(&s);
    let effects = update(
        &mut app,
        Action::Engine(Event::State {
            name: "orders".into(),
            state: TunnelState::Up,
        }),
    );
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Notify {
                bell: false,
                desktop: true,
                ..
            }]
        ),
        "{effects:?}"
    );
}

#[test]
fn settings_rebind_keys_and_help_shows_them_and_their_problems() {
    let ctx = Context::new("/h".into(), "me", Default::default());
    let s = Settings::parse(
        std::path::Path::new("/h/.config/warren/config.toml"),
        "theme = \"blue\"\n[defaults]\nsort = \"state\"\n[keys]\ndiagnose = [\"x\", \"F5\"]\n",
        &ctx,
    );
    let mut app = busy_app(100, 30);
    app.apply_settings(&s);
    assert_eq!(names(&app)[0], "reports", "sorted by state from the start");
    assert!(
        text(&app).contains("config.toml:1: theme: 'blue'"),
        "the problem on the status line"
    );
    select(&mut app, "orders");
    assert!(
        update(&mut app, ch('d')).is_empty(),
        "d is no longer diagnose"
    );
    let effects = update(&mut app, key(KeyCode::F(5)));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Engine(Command::Diagnose(_))]
    ));
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, ch('?'));
    let help = text(&app);
    assert!(
        help.contains("x, F5") && help.contains("diagnose the selection"),
        "{help}"
    );
    assert!(
        help.contains("'blue' is not one of dark | light | mono"),
        "{help}"
    );
}

#[test]
fn the_readme_key_table_is_the_help() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let start = readme
        .find("<!-- keys -->")
        .expect("<!-- keys --> in the README");
    let end = readme.find("<!-- /keys -->").expect("<!-- /keys -->");
    let table = readme[start + "<!-- keys -->".len()..end].trim();
    assert_eq!(
        table,
        warren::tui::keys::Keymap::default().markdown().trim(),
        "README's key table differs from the key table: copy Keymap::markdown() in"
    );
}

fn form(app: &mut App, target: &str, bastion: &str) {
    update(app, ch('s'));
    assert_eq!(app.mode, Mode::Setup);
    update(app, key(KeyCode::Tab));
    typed(app, target);
    update(app, key(KeyCode::Tab));
    update(app, key(KeyCode::Tab));
    typed(app, bastion);
}

#[test]
fn the_form_shows_every_field_with_defaults_and_checks_each_as_it_is_left() {
    let mut app = app(100, 30);
    form(&mut app, "db.internal", "");
    let s = text(&app);
    for field in [
        "engine",
        "target",
        "name",
        "bastion",
        "jump host",
        "key",
        "key file",
        "passphrase",
    ] {
        assert!(s.contains(field), "{field}:\n{s}");
    }
    assert!(s.contains("step 2 of 3"), "{s}");
    assert!(s.contains("db (default)"), "the name from the target:\n{s}");
    assert!(
        s.contains("○ mysql") && s.contains("○ the agent's keys"),
        "{s}"
    );
    // A bad target, once left, says what is wrong.
    update(&mut app, key(KeyCode::BackTab));
    update(&mut app, key(KeyCode::BackTab));
    typed(&mut app, "@");
    update(&mut app, key(KeyCode::Tab));
    assert!(text(&app).contains("host[:port]"), "{}", text(&app));
    // ← → choose: mysql, and the agent (no key file, no passphrase then).
    update(&mut app, key(KeyCode::Home));
    let focus_engine = |app: &mut App| {
        while app.wizard.focus != Field::Engine {
            update(app, key(KeyCode::BackTab));
        }
    };
    focus_engine(&mut app);
    update(&mut app, key(KeyCode::Right));
    assert_eq!(app.wizard.value(Field::Engine), "mysql");
    while app.wizard.focus != Field::Key {
        update(&mut app, key(KeyCode::Tab));
    }
    update(&mut app, key(KeyCode::Left));
    assert_eq!(app.wizard.key, KeyKind::Agent);
    assert!(!app.wizard.fields().contains(&Field::Passphrase));
    assert!(!text(&app).contains("key file"));
}

#[test]
fn the_form_checks_everything_then_shows_a_summary_before_writing() {
    let mut app = app(100, 30);
    form(&mut app, "10.0.0.5:5432", "");
    // Enter to the end: the bastion is missing, so the cursor goes there.
    while app.wizard.focus != Field::Passphrase {
        update(&mut app, key(KeyCode::Enter));
    }
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.wizard.focus, Field::Bastion);
    assert!(text(&app).contains("needed"), "{}", text(&app));
    typed(&mut app, "ops@bastion.example.com");
    let mut effects = Vec::new();
    for _ in 0..8 {
        effects = update(&mut app, key(KeyCode::Enter));
        if !effects.is_empty() {
            break;
        }
    }
    let [Effect::Review(a)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        (
            a.engine.as_str(),
            a.target.as_str(),
            a.name.as_str(),
            a.bastion.as_str()
        ),
        ("postgres", "10.0.0.5:5432", "10", "ops@bastion.example.com")
    );
    assert_eq!(a.key, KeyKind::New);
    assert_eq!(a.key_path, "~/.ssh/id_ed25519_10");
    update(
        &mut app,
        Action::Reviewed(Ok(vec![
            "create ~/.config/epoch (0700)".into(),
            "a new Ed25519 key ~/.ssh/id_ed25519_10 (0600)".into(),
        ])),
    );
    let s = text(&app);
    assert!(
        s.contains("nothing is yet") && s.contains("create ~/.config/epoch (0700)"),
        "{s}"
    );
    let effects = update(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Setup(_)]),
        "{effects:?}"
    );
    // The key exists after all: every answer kept, the cursor on the key file.
    update(
        &mut app,
        Action::SetUp(Err(Failure {
            field: Some(Field::KeyPath),
            message: "/h/.ssh/id_ed25519_10 already exists: warren never overwrites a key".into(),
        })),
    );
    assert_eq!(app.wizard.stage, Stage::Form);
    assert_eq!(app.wizard.focus, Field::KeyPath);
    assert_eq!(app.wizard.value(Field::Bastion), "ops@bastion.example.com");
    assert_eq!(app.wizard.value(Field::Target), "10.0.0.5:5432");
    assert!(text(&app).contains("warren never overwrites a key"));
    // Saved: Enter runs the diagnostics of the new entry (when it loaded).
    while update(&mut app, key(KeyCode::Enter)).is_empty() {}
    update(&mut app, Action::Reviewed(Ok(vec!["ok".into()])));
    update(&mut app, key(KeyCode::Enter));
    update(
        &mut app,
        Action::SetUp(Ok(Saved {
            name: "orders".into(),
            text: "# 1. On the bastion ...".into(),
            authorized_keys: "restrict,port-forwarding ssh-ed25519 AAAA".into(),
        })),
    );
    assert!(text(&app).contains("saved 'orders'"));
    // `c` copies the authorized_keys line and says so; `w` asks for the file.
    let effects = update(&mut app, key(KeyCode::Char('c')));
    assert!(
        matches!(effects.as_slice(), [Effect::Copy(l)] if l == "restrict,port-forwarding ssh-ed25519 AAAA"),
        "{effects:?}"
    );
    assert!(
        text(&app).contains("sent the authorized_keys line"),
        "{}",
        text(&app)
    );
    let effects = update(&mut app, key(KeyCode::Char('w')));
    assert!(
        matches!(effects.as_slice(), [Effect::WriteInstructions { name, text }] if name == "orders" && text.starts_with("# 1.")),
        "{effects:?}"
    );
    let effects = update(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Diagnose(c))] if c.name == "orders"),
        "{effects:?}"
    );
}

#[test]
fn the_forms_passphrase_is_masked_and_leaves_only_as_a_secret() {
    let mut app = app(100, 30);
    form(&mut app, "10.0.0.5:5432", "bastion");
    while app.wizard.focus != Field::Passphrase {
        update(&mut app, key(KeyCode::Tab));
    }
    typed(&mut app, " hunter2-horse");
    let s = text(&app);
    assert!(
        !s.contains("hunter2") && s.contains("**************"),
        "{s}"
    );
    let effects = update(&mut app, key(KeyCode::Enter));
    let [Effect::Review(a)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    // Taken as typed: a leading space is part of the passphrase.
    assert_eq!(
        a.passphrase.as_ref().map(Secret::expose),
        Some(" hunter2-horse")
    );
    assert!(!format!("{effects:?}").contains("hunter2"));
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let mut app = app(100, 30);
    update(&mut app, ch('?'));
    update(
        &mut app,
        Action::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
}

#[test]
fn stats_feed_the_sparkline_and_the_traffic_column() {
    let mut app = app(120, 40);
    state(&mut app, "orders", TunnelState::Up);
    for i in 1..=3u64 {
        event(
            &mut app,
            Event::Stats {
                name: "orders".into(),
                stats: TunnelStats {
                    bytes_in: i * 2048,
                    ..Default::default()
                },
            },
        );
    }
    assert!(text(&app).contains("2.0 KiB/s"), "{}", text(&app));
}

#[test]
fn the_settings_health_interval_is_the_default_for_entries_without_one() {
    let ctx = Context::new("/h".into(), "me", Default::default());
    let s = Settings::parse(
        std::path::Path::new("/h/.config/warren/config.toml"),
        "[defaults]\nhealth_interval = \"10s\"\n",
        &ctx,
    );
    let mut conns = connections();
    let own = warren::config::Sourced::new(
        warren::config::model::Seconds::from_secs(60),
        warren::config::Origin::Default,
    );
    conns[0].policy.health_interval = Some(own.clone());
    s.apply(&mut conns);
    assert_eq!(
        conns[0].policy.health_interval,
        Some(own),
        "its own is kept"
    );
    let given = conns[1]
        .policy
        .health_interval
        .as_ref()
        .expect("the default");
    assert_eq!(given.value, warren::config::model::Seconds::from_secs(10));
    assert_eq!(given.origin.to_string(), "/h/.config/warren/config.toml:2");
}

/// A step of the doctor, one line long.
fn probe_step(n: usize) -> warren::diagnose::Step {
    warren::diagnose::Step {
        id: serde_json::from_value(serde_json::Value::String("probe".into())).expect("a step id"),
        hop: 0,
        status: warren::diagnose::Status::Pass,
        duration_ms: 1,
        detail: format!("step-{n:02}"),
        hint: None,
    }
}

#[test]
fn the_doctor_view_keeps_its_top_lines_at_80x24_and_scrolls_with_keys_and_the_wheel() {
    let mut app = busy_app(80, 24);
    update(&mut app, ch('d'));
    for n in 0..30 {
        event(
            &mut app,
            Event::Step {
                name: "orders".into(),
                step: probe_step(n),
            },
        );
    }
    // 30 steps and "running...": 31 lines, 22 on screen.
    let s = text(&app);
    assert!(s.contains("step-00") && !s.contains("step-29"), "{s}");
    assert!(s.contains("1-22 of 31"), "{s}");
    update(&mut app, key(KeyCode::End));
    let s = text(&app);
    assert!(
        s.contains("step-29") && s.contains("running...") && !s.contains("step-00"),
        "{s}"
    );
    assert!(s.contains("10-31 of 31"), "{s}");
    update(&mut app, key(KeyCode::Home));
    update(&mut app, ch('j'));
    assert!(text(&app).contains("2-23 of 31"));
    update(&mut app, Action::ScrollDown);
    assert!(text(&app).contains("3-24 of 31"), "the wheel scrolls");
    update(&mut app, Action::ScrollUp);
    update(&mut app, ch('k'));
    assert!(text(&app).contains("1-22 of 31"));
    update(&mut app, key(KeyCode::PageDown));
    assert!(text(&app).contains("10-31 of 31"), "a page, up to the end");
    update(&mut app, key(KeyCode::PageUp));
    assert!(text(&app).contains("1-22 of 31"));
    assert_eq!(app.mode, Mode::Diagnose, "scrolling keeps the view");
}

#[test]
fn the_log_view_opens_at_the_newest_and_scrolls_to_the_oldest() {
    let mut app = busy_app(80, 24);
    for n in 0..40 {
        event(
            &mut app,
            Event::Warning {
                name: "orders".into(),
                message: format!("note-{n:02}"),
            },
        );
    }
    update(&mut app, ch('l'));
    let s = text(&app);
    assert!(s.contains("note-39") && !s.contains("timeline"), "{s}");
    update(&mut app, key(KeyCode::Home));
    let s = text(&app);
    assert!(
        s.contains("timeline") && s.contains("09:00:01 ● opened"),
        "{s}"
    );
    assert!(!s.contains("note-39"), "{s}");
    for _ in 0..3 {
        update(&mut app, Action::ScrollDown);
    }
    assert!(text(&app).contains(" 4-25 of "), "{}", text(&app));
    update(&mut app, key(KeyCode::End));
    assert!(text(&app).contains("note-39"));
    update(&mut app, ch('l'));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn a_long_last_error_wraps_in_the_details_instead_of_being_cut() {
    let mut app = busy_app(100, 40);
    let long: String = (1..=9)
        .map(|i| format!("gateway-{i:02} refused the route to db.internal;"))
        .collect::<Vec<_>>()
        .join(" ");
    event(
        &mut app,
        Event::Error {
            name: "orders".into(),
            message: format!("{long} END"),
        },
    );
    let s = text(&app);
    let joined = s
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(joined.contains(&format!("last error {long} END")), "{s}");
}

#[test]
fn s_by_state_puts_an_up_tunnel_whose_database_fails_before_the_healthy_ones() {
    let mut app = busy_app(120, 40);
    state(&mut app, "legacy", TunnelState::Up);
    event(
        &mut app,
        Event::Health {
            name: "orders".into(),
            health: warren::engine::Health {
                ok: false,
                detail: "connection refused".into(),
                latency_ms: None,
                brief: None,
                checked_at: String::new(),
            },
        },
    );
    update(&mut app, ch('S'));
    assert_eq!(
        names(&app),
        ["reports", "cache", "billing", "orders", "legacy", "bastion"],
        "failed, reconnecting, connecting, up with the database failing, up, down"
    );
}

#[test]
fn the_title_counts_one_connection_in_the_singular() {
    let mut app = app(100, 30);
    let one = vec![app.connections[0].clone()];
    app.set_connections(one);
    let s = text(&app);
    assert!(s.contains(" 1 connection, 0 open"), "{s}");
    assert!(text(&busy_app(100, 30)).contains(" 6 connections, "));
}

#[test]
fn a_broken_entry_is_a_row_that_refuses_commands_but_closes_what_still_runs() {
    use std::path::Path;
    use warren::config::epoch::Broken;
    use warren::config::{Origin, Problem};
    use warren::tui::reload::{self, Loaded};
    let mut app = app(100, 30);
    state(&mut app, "cache", TunnelState::Up);
    let file: std::sync::Arc<Path> = std::sync::Arc::from(Path::new("/home/tester/epoch.toml"));
    let broken = |name: &str| Broken {
        name: name.into(),
        display_name: name.into(),
        table: format!("storage.postgres.{name}"),
        error: Problem::error(
            Origin::file(&file, 9),
            format!("storage.postgres.{name}.port: port 70000 is out of range (1-65535)"),
        )
        .with_fix("write port = 5432 (a number from 1-65535)"),
    };
    let rest: Vec<_> = app
        .connections
        .iter()
        .filter(|c| c.display_name != "cache" && c.display_name != "reports")
        .cloned()
        .collect();
    reload::apply(
        &mut app,
        Loaded {
            connections: rest,
            broken: vec![broken("cache"), broken("reports")],
            errors: Vec::new(),
            looked_in: Vec::new(),
        },
        true,
    );
    // Both listed, reports (closed) as broken; cache still runs and says so.
    assert!(names(&app).contains(&"reports") && names(&app).contains(&"cache"));
    select(&mut app, "reports");
    let s = text(&app);
    assert!(s.contains("✘ broken"), "{s}");
    assert!(
        s.contains("epoch.toml:9: storage.postgres.reports.port: port 70000"),
        "{s}"
    );
    for k in ['d', 'x', 'c'] {
        assert!(
            update(&mut app, ch(k)).is_empty(),
            "{k} ran on a broken entry"
        );
        assert!(
            app.message
                .as_deref()
                .is_some_and(|m| m.starts_with("reports did not load, fix it first: epoch.toml:9:")),
            "{:?}",
            app.message
        );
        assert_eq!(app.mode, Mode::Normal);
    }
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    // The open one: Enter closes it; then it is refused like the other.
    select(&mut app, "cache");
    let effects = update(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Close { names, .. })] if names == &["cache".to_string()]),
        "{effects:?}"
    );
    state(&mut app, "cache", TunnelState::Down);
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(
        app.message
            .as_deref()
            .is_some_and(|m| m.starts_with("cache did not load")),
        "{:?}",
        app.message
    );
}

#[test]
fn an_on_demand_tunnel_shows_whether_its_session_is_open() {
    let mut app = app(110, 30);
    let i = app
        .connections
        .iter()
        .position(|c| c.display_name == "orders")
        .expect("orders");
    app.connections[i].policy.on_demand = Some(warren::config::Sourced::new(
        true,
        warren::config::Origin::Flag("--on-demand"),
    ));
    state(&mut app, "orders", TunnelState::OnDemand { error: None });
    let screen = text(&app);
    assert!(screen.contains("◌ on demand"), "{screen}");
    state(&mut app, "orders", TunnelState::Up);
    let screen = text(&app);
    assert!(screen.contains("● up (on demand)"), "{screen}");
    state(
        &mut app,
        "orders",
        TunnelState::OnDemand {
            error: Some("connection refused".into()),
        },
    );
    let screen = text(&app);
    assert!(screen.contains("◌ on demand ✘"), "{screen}");
    // Space closes it, as any open tunnel.
    select(&mut app, "orders");
    let effects = update(&mut app, ch(' '));
    assert!(
        matches!(effects.as_slice(), [Effect::Engine(Command::Close { names, .. })] if names == &["orders".to_string()]),
        "{effects:?}"
    );
}
