//! Every screen of the TUI at 80x24, 100x30, 120x40 and 200x50, as insta snapshots: the list
//! with a tunnel in each state and the details pane, help, the diagnostics, a question, the
//! timeline, the empty state and the setup form; then the themes (light, and mono as
//! NO_COLOR gives it) with their styles. Every snapshot is first checked for words cut
//! without an ellipsis.

mod screens;

use crossterm::event::KeyCode;
use screens::*;
use warren::diagnose::{Status, Step};
use warren::engine::Event;
use warren::prompt::Prompt;
use warren::settings::ThemeName;
use warren::tui::app::{Action, App, Mode, update};
use warren::tui::theme::Theme;

const SIZES: [(u16, u16); 4] = [(80, 24), (100, 30), (120, 40), (200, 50)];

fn snap(name: &str, app: &mut App) {
    let (w, h) = app.size;
    let text = checked(name, app, Theme::mono());
    insta::assert_snapshot!(format!("{name}_{w}x{h}"), without_countdown(text));
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
fn the_list_with_every_state_and_the_details() {
    for (w, h) in SIZES {
        snap("list", &mut busy_app(w, h));
    }
}

#[test]
fn the_list_grouped_by_source_and_sorted_by_state() {
    for (w, h) in SIZES {
        let mut app = busy_app(w, h);
        update(&mut app, ch('g'));
        update(&mut app, ch('S'));
        snap("grouped", &mut app);
    }
}

#[test]
fn help() {
    for (w, h) in SIZES {
        let mut app = busy_app(w, h);
        update(&mut app, ch('?'));
        snap("help", &mut app);
    }
}

#[test]
fn the_diagnostics() {
    for (w, h) in SIZES {
        let mut app = busy_app(w, h);
        update(&mut app, ch('d'));
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
            step(
                "banner",
                Status::Fail,
                "this port speaks SMTP, not SSH: \"220 mail.example.com ESMTP\"",
                Some("the port is wrong: sshd usually listens on 22 (check port / Port)"),
            ),
        ] {
            event(
                &mut app,
                Event::Step {
                    name: "orders".into(),
                    step: s,
                },
            );
        }
        event(
            &mut app,
            Event::Diagnosed {
                name: "orders".into(),
                ok: false,
            },
        );
        snap("diagnostics", &mut app);
    }
}

#[test]
fn a_host_key_question() {
    for (w, h) in SIZES {
        let mut app = busy_app(w, h);
        event(
            &mut app,
            Event::Prompt {
                id: 7,
                name: "orders".into(),
                prompt: Prompt::HostKey {
                    host: "bastion.example.com".into(),
                    key_type: "ED25519".into(),
                    fingerprint: "SHA256:mVPwvezndPv/ARoIadVY98vAC0g+P/5633yTC4d/wXE".into(),
                    other_names: vec![],
                },
                timeout_secs: 120,
            },
        );
        assert_eq!(app.mode, Mode::Prompt);
        snap("question", &mut app);
    }
}

#[test]
fn the_timeline_and_the_log() {
    for (w, h) in SIZES {
        let mut app = busy_app(w, h);
        update(&mut app, ch('l'));
        assert_eq!(app.mode, Mode::History);
        snap("history", &mut app);
    }
}

#[test]
fn the_empty_state() {
    for (w, h) in SIZES {
        let mut app = App::new(
            Vec::new(),
            vec![
                "/home/tester/.ssh/config (not there)".into(),
                "/home/tester/.config/epoch/epoch.toml (not there)".into(),
            ],
        );
        update(&mut app, Action::Resize(w, h));
        snap("empty", &mut app);
    }
}

#[test]
fn the_setup_form() {
    for (w, h) in SIZES {
        let mut app = busy_app(w, h);
        update(&mut app, ch('s'));
        update(&mut app, key(KeyCode::Tab));
        for c in "orders-replica.db.internal".chars() {
            update(&mut app, ch(c));
        }
        update(&mut app, key(KeyCode::Tab));
        update(&mut app, key(KeyCode::Tab));
        for c in "ops@bastion".chars() {
            update(&mut app, ch(c));
        }
        snap("setup", &mut app);
        // The summary, before anything is written.
        while app.wizard.focus != warren::tui::wizard::Field::Passphrase {
            update(&mut app, key(KeyCode::Tab));
        }
        update(&mut app, key(KeyCode::Enter));
        update(
            &mut app,
            Action::Reviewed(Ok(vec![
                "create ~/.ssh, ~/.config, ~/.config/epoch (0700)".into(),
                "a new Ed25519 key ~/.ssh/id_ed25519_orders-replica (0600) and ~/.ssh/id_ed25519_orders-replica.pub".into(),
                "[storage.postgres.orders-replica]: orders-replica.db.internal:5432 through ops@bastion, a new file in ~/.config/epoch/epoch.toml".into(),
                "then: the lines for the bastion, and the diagnostics of the new entry".into(),
            ])),
        );
        snap("setup_summary", &mut app);
    }
}

#[test]
fn the_light_theme_and_no_color() {
    let mut app = busy_app(100, 30);
    insta::assert_snapshot!(
        "theme_light_100x30",
        styled(&app, Theme::new(ThemeName::Light))
    );
    insta::assert_snapshot!("theme_mono_100x30", styled(&app, Theme::mono()));
    // NO_COLOR means mono whatever the settings say; the text is the same as in colour.
    let no_color = Theme::from_env(ThemeName::Dark, Some(std::ffi::OsStr::new("1")));
    assert_eq!(no_color, Theme::mono());
    assert_eq!(
        Theme::from_env(ThemeName::Light, Some(std::ffi::OsStr::new(""))),
        Theme::new(ThemeName::Light),
        "an empty NO_COLOR is not set"
    );
    assert_eq!(
        screen(&app, no_color),
        screen(&app, Theme::new(ThemeName::Dark))
    );
    let _ = checked("mono", &mut app, no_color);
}

/// The check itself: a word cut at a border without `…` is caught, one with `…` passes.
#[test]
#[should_panic(expected = "cut without an ellipsis")]
fn the_cut_check_catches_a_target_cut_silently() {
    let whole = "│ ○ down demo-db 127.0.0.1:auto -> db.demo.internal:5432 │";
    assert_no_silent_cut(
        "ok",
        "│ ○ down demo-db 127.0.0.1:auto -> db.demo.in… │",
        whole,
    );
    assert_no_silent_cut(
        "cut",
        "│ ○ down demo-db 127.0.0.1:auto -> db.demo.inter│",
        whole,
    );
}

/// A cell's colours as the terminal shows them: reversed swaps them; the terminal's own
/// colours (`Reset`) are its foreground and its background, which differ.
fn shown_colours(cell: &ratatui::buffer::Cell) -> (String, String) {
    use ratatui::style::{Color, Modifier};
    let name = |c: Color, own: &str| match c {
        Color::Reset => own.to_string(),
        c => format!("{c:?}"),
    };
    let (fg, bg) = (name(cell.fg, "terminal fg"), name(cell.bg, "terminal bg"));
    if cell.modifier.contains(Modifier::REVERSED) {
        (bg, fg)
    } else {
        (fg, bg)
    }
}

/// The cursor row (the line with `›`) of the app drawn in `theme`: its cells with their
/// shown colours, a run of one style at a time.
fn cursor_row(app: &App, theme: Theme) -> Vec<(String, String, String, String)> {
    let (w, h) = app.size;
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| warren::tui::view::render(app, f, theme))
        .expect("draw");
    let buf = t.backend().buffer();
    let y = (0..h)
        .find(|&y| (0..w).any(|x| buf[(x, y)].symbol() == "›"))
        .expect("a cursor row");
    let mut runs: Vec<(String, String, String, String)> = Vec::new();
    // Inside the list's box, its borders left out.
    for x in 1..w - 1 {
        let c = &buf[(x, y)];
        let (fg, bg) = shown_colours(c);
        let mods = format!("{:?}", c.modifier);
        match runs.last_mut() {
            Some((text, f, b, m)) if *f == fg && *b == bg && *m == mods => {
                text.push_str(c.symbol())
            }
            _ => runs.push((c.symbol().to_string(), fg, bg, mods)),
        }
    }
    runs
}

#[test]
fn every_cell_of_the_cursor_row_reads_in_every_theme() {
    let themes = [
        ("dark", Theme::new(ThemeName::Dark)),
        ("light", Theme::new(ThemeName::Light)),
        ("mono", Theme::mono()),
        (
            "no_color",
            Theme::from_env(ThemeName::Dark, Some(std::ffi::OsStr::new("1"))),
        ),
    ];
    for (w, h) in [(80, 24), (200, 50)] {
        let mut app = busy_app(w, h);
        update(&mut app, key(KeyCode::Home));
        for _ in 0..app.connections.len() {
            for (name, theme) in themes {
                for (text, fg, bg, _) in cursor_row(&app, theme) {
                    assert!(
                        text.trim().is_empty() || fg != bg,
                        "{name} at {w}x{h}: '{text}' is drawn in {fg} on {bg}"
                    );
                }
            }
            update(&mut app, ch('j'));
        }
    }
    // The cursor on a down ssh_config host (its state, VIA and SOURCE dim elsewhere), as
    // each theme draws it.
    let mut app = busy_app(80, 24);
    select(&mut app, "legacy");
    for (name, theme) in themes {
        let runs: Vec<String> = cursor_row(&app, theme)
            .into_iter()
            .map(|(text, fg, bg, mods)| format!("{text:?} fg={fg} bg={bg} {mods}"))
            .collect();
        insta::assert_snapshot!(format!("cursor_row_{name}_80x24"), runs.join("\n"));
    }
}
