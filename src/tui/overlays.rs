//! The screens drawn over the list: help (made from the key table, scrollable), the
//! selection's timeline and log, the diagnostics as they run, and the engine's questions.
//! Long lines wrap at word boundaries; nothing is cut without an ellipsis.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::App;
use super::details;
use super::fit::{fit, width, wrap};
use super::theme::Theme;
use super::view::{SPINNER, backdrop, centered};
use crate::diagnose::Status;
use crate::prompt::Prompt;

/// The whole screen but a margin (none on a small terminal).
fn big(area: Rect) -> Rect {
    if area.width >= 100 && area.height >= 30 {
        area.inner(Margin {
            horizontal: 2,
            vertical: 1,
        })
    } else {
        area
    }
}

/// Help: the key table (with the settings' bindings), then the fixed keys; settings problems
/// first. Scrolls with ↑ ↓ PgUp PgDn.
pub fn help(app: &App, f: &mut Frame, theme: Theme) {
    let area = centered(f.area(), 96, f.area().height);
    let area = if f.area().height >= 30 {
        area.inner(Margin {
            horizontal: 0,
            vertical: 1,
        })
    } else {
        area
    };
    let w = usize::from(area.width.saturating_sub(3));
    let rows = app.keymap.help_rows();
    let kw = rows
        .iter()
        .map(|(k, _)| width(k))
        .max()
        .unwrap_or(0)
        .min(16);
    let mut lines: Vec<Line> = Vec::new();
    for p in &app.settings_problems {
        for l in wrap(p, w, 2) {
            lines.push(Line::styled(l, theme.failed()));
        }
    }
    if !app.settings_problems.is_empty() {
        lines.push(Line::from(""));
    }
    for (k, h) in rows {
        let desc = wrap(h, w.saturating_sub(kw + 2).max(10), 0);
        for (n, d) in desc.into_iter().enumerate() {
            let key = if n == 0 {
                fit(&k, kw).into_owned()
            } else {
                String::new()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{key:<kw$}  "), theme.accent()),
                Span::raw(d),
            ]));
        }
    }
    let inner_h = usize::from(area.height.saturating_sub(2));
    let max_scroll = lines.len().saturating_sub(inner_h);
    let scroll = app.help_scroll.min(max_scroll);
    let more = if max_scroll > 0 {
        format!(
            " keys {}/{} (↑↓ scroll, Esc close) ",
            scroll + inner_h.min(lines.len()),
            lines.len()
        )
    } else {
        " keys (Esc close) ".to_string()
    };
    backdrop(f, area);
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(scroll).collect::<Vec<_>>()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(fit(&more, usize::from(area.width.saturating_sub(2))).into_owned()),
        ),
        area,
    );
}

/// The selection's timeline and log over the whole screen.
pub fn history(app: &App, f: &mut Frame, theme: Theme) {
    let area = big(f.area());
    backdrop(f, area);
    let name = app
        .selected_connection()
        .map(|c| c.display_name.clone())
        .unwrap_or_default();
    let block = Block::default().borders(Borders::ALL).title(
        fit(
            &format!(" history: {name} "),
            usize::from(area.width.saturating_sub(2)),
        )
        .into_owned(),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    details::activity(app, app.live.get(&name), f, inner, theme);
}

/// The diagnostics, step by step as they finish, hints under the failing ones.
pub fn diagnose(app: &App, f: &mut Frame, theme: Theme) {
    let Some(d) = &app.diagnosis else { return };
    let area = big(f.area());
    backdrop(f, area);
    let w = usize::from(area.width.saturating_sub(3));
    let mut lines: Vec<Line> = Vec::new();
    for s in &d.steps {
        let (mark, style) = match s.status {
            Status::Pass => ("✔", theme.up()),
            Status::Warn => ("!", theme.busy()),
            Status::Fail => ("✘", theme.failed()),
            Status::Skip => ("-", theme.dim()),
        };
        let text = format!(
            "hop {} {:<9} {:>5} ms  {}",
            s.hop, s.id, s.duration_ms, s.detail
        );
        for (n, l) in wrap(&text, w.saturating_sub(2), 4).into_iter().enumerate() {
            let head = if n == 0 {
                format!("{mark} ")
            } else {
                "  ".into()
            };
            lines.push(Line::from(vec![Span::styled(head, style), Span::raw(l)]));
        }
        if let Some(h) = &s.hint {
            for l in wrap(&format!("    -> {h}"), w, 7) {
                lines.push(Line::styled(l, theme.busy()));
            }
        }
    }
    let (last, style) = match d.done {
        None => (
            format!(
                "{} running...",
                SPINNER[(app.tick % SPINNER.len() as u64) as usize]
            ),
            Style::default(),
        ),
        Some(true) => ("no step failed".into(), theme.up()),
        Some(false) => (
            "a step failed: see the hint under it".into(),
            theme.failed(),
        ),
    };
    lines.push(Line::styled(fit(&last, w).into_owned(), style));
    // The newest lines stay on screen.
    let h = usize::from(area.height.saturating_sub(2));
    let skip = lines.len().saturating_sub(h);
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>()).block(
            Block::default().borders(Borders::ALL).title(
                fit(
                    &format!(" doctor: {} ", d.name),
                    usize::from(area.width.saturating_sub(2)),
                )
                .into_owned(),
            ),
        ),
        area,
    );
}

/// The front question, with its countdown.
pub fn prompt(app: &App, f: &mut Frame, theme: Theme) {
    let Some(q) = app.prompts.front() else {
        return;
    };
    let name = &q.name;
    let left = q
        .deadline
        .saturating_duration_since(std::time::Instant::now())
        .as_secs();
    let timeout = format!(
        "(answer within {}:{:02}, or it is withdrawn)",
        left / 60,
        left % 60
    );
    let masked = "*".repeat(app.prompt_input.value().chars().count());
    let (title, mut text): (&str, Vec<String>) = match &q.prompt {
        Prompt::HostKey {
            host,
            key_type,
            fingerprint,
            other_names,
        } => {
            let mut l = vec![
                format!("{name}: the authenticity of host '{host}' can't be established."),
                format!("{key_type} key fingerprint is {fingerprint}."),
            ];
            if other_names.is_empty() {
                l.push("This key is not known by any other names.".into());
            } else {
                l.push("This host key is known by the following other names/addresses:".into());
                l.extend(other_names.iter().map(|n| format!("    {n}")));
            }
            l.push(String::new());
            l.push("Compare the fingerprint with the one the bastion's owner gives you.".into());
            l.push(String::new());
            l.push("  y yes, trust and save    o once, for this session    n no".into());
            (" unknown host key ", l)
        }
        Prompt::Confirm { text } => (
            " host key warning ",
            vec![
                format!("{name}: {text}"),
                String::new(),
                "Continue connecting?   y yes    n no".into(),
            ],
        ),
        Prompt::Passphrase { key_file } => (
            " key passphrase ",
            vec![
                format!("{name}: passphrase for {key_file}"),
                String::new(),
                format!("  > {masked}"),
            ],
        ),
        Prompt::Password { user, host } => (
            " password ",
            vec![
                format!("{name}: password for {user}@{host}"),
                String::new(),
                format!("  > {masked}"),
            ],
        ),
        Prompt::KeyboardInteractive {
            instructions,
            prompts,
            ..
        } => {
            let i = app
                .prompt_answers
                .len()
                .min(prompts.len().saturating_sub(1));
            let (p, echo) = prompts.get(i).cloned().unwrap_or_default();
            let shown = if echo {
                app.prompt_input.value().to_string()
            } else {
                masked.clone()
            };
            (
                " the server asks ",
                vec![
                    format!("{name}: {instructions}"),
                    String::new(),
                    format!("  {p} {shown}"),
                ],
            )
        }
    };
    text.push(String::new());
    text.push(timeout);
    let box_w = f.area().width.min(80);
    let w = usize::from(box_w.saturating_sub(3));
    let lines: Vec<Line> = text
        .iter()
        .flat_map(|l| wrap(l, w, 4))
        .map(Line::from)
        .collect();
    let area = centered(f.area(), box_w, (lines.len() as u16).saturating_add(2));
    backdrop(f, area);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(title)
                .border_style(theme.busy()),
        ),
        area,
    );
}
