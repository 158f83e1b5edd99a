//! The screens drawn over the list: help (made from the key table, scrollable), the
//! selection's timeline and log (with the load's config errors atop), the diagnostics as they
//! run, and the engine's questions. Long lines wrap at word boundaries; nothing is cut
//! without an ellipsis. The `l` and `d` views scroll (↑↓ j k, PgUp PgDn, Home End, the
//! wheel): their lines are made by [`history_lines`] and [`diagnose_lines`], which the keys
//! also count to know where the end is.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::App;
use super::details;
use super::fit::{fit, width, wrap};
use super::live::clock;
use super::theme::Theme;
use super::view::{SPINNER, backdrop, centered, text_width};
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

/// The box the `l` and `d` views take on a terminal of `size` (columns, rows), and the rows
/// of text it shows at once.
pub fn view_box(size: (u16, u16)) -> (Rect, usize) {
    let area = big(Rect::new(0, 0, size.0, size.1));
    (area, usize::from(area.height.saturating_sub(2)))
}

/// The first line a scrolled view shows: `scroll` (`None`: the end) within `n` lines shown
/// `h` at a time.
pub fn scroll_top(scroll: Option<usize>, n: usize, h: usize) -> usize {
    let max = n.saturating_sub(h);
    scroll.map_or(max, |s| s.min(max))
}

/// The lines of the view the mode shows (`l` or `d`) on this terminal, and how many show at
/// once.
pub fn view_size(app: &App) -> (usize, usize) {
    let (area, h) = view_box(app.size);
    let w = text_width(area);
    let n = match app.mode {
        super::app::Mode::History => history_lines(app, Theme::mono(), w).len(),
        super::app::Mode::Diagnose => diagnose_lines(app, Theme::mono(), w).len(),
        _ => 0,
    };
    (n, h)
}

/// `lines` in a bordered box over the screen, from line `scroll` on, the title saying where.
fn scrolled(
    f: &mut Frame,
    area: Rect,
    lines: Vec<Line<'static>>,
    scroll: Option<usize>,
    title: &str,
) {
    backdrop(f, area);
    let h = usize::from(area.height.saturating_sub(2));
    let top = scroll_top(scroll, lines.len(), h);
    let title = if lines.len() > h {
        format!(
            " {title} · {}-{} of {} (↑↓ PgUp PgDn Home End, Esc close) ",
            top + 1,
            (top + h).min(lines.len()),
            lines.len()
        )
    } else {
        format!(" {title} (Esc close) ")
    };
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(top).take(h).collect::<Vec<_>>()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(fit(&title, usize::from(area.width.saturating_sub(2))).into_owned()),
        ),
        area,
    );
}

/// The `l` view's lines in `w` columns: the load's config errors, then the selection's
/// broken entry error, timeline and log, each whole (wrapped).
pub fn history_lines(app: &App, theme: Theme, w: usize) -> Vec<Line<'static>> {
    let dim = theme.dim();
    let mut lines: Vec<Line<'static>> = Vec::new();
    if !app.load_errors.is_empty() {
        lines.push(Line::styled(
            fit(&format!("config errors ({})", app.load_errors.len()), w).into_owned(),
            theme.header(),
        ));
        for e in &app.load_errors {
            lines.extend(
                wrap(&e.text, w, 2)
                    .into_iter()
                    .map(|l| Line::styled(l, theme.failed())),
            );
        }
        lines.push(Line::from(""));
    }
    let Some(c) = app.selected_connection() else {
        return lines;
    };
    if app.broken.contains_key(&c.display_name) {
        lines.extend(details::facts(app, c, theme, w));
        lines.push(Line::from(""));
    }
    let live = app.live.get(&c.display_name);
    lines.push(Line::styled(
        fit("timeline", w).into_owned(),
        theme.header(),
    ));
    let moments: Vec<_> = live
        .map(|l| l.timeline.iter().collect())
        .unwrap_or_default();
    if moments.is_empty() {
        lines.push(Line::styled(fit("nothing yet", w).into_owned(), dim));
    }
    for m in moments {
        let style = match m.what {
            super::live::Happened::Failed(_) | super::live::Happened::Health { ok: false, .. } => {
                theme.failed()
            }
            super::live::Happened::Opened
            | super::live::Happened::Reconnected
            | super::live::Happened::Health { ok: true, .. } => theme.up(),
            super::live::Happened::Closed | super::live::Happened::Expired(_) => dim,
            _ => theme.busy(),
        };
        lines.extend(details::wrapped(
            &format!("{} ", clock(m.at, app.utc_offset)),
            &format!("{} {}", m.what.symbol(), m.what.text()),
            style,
            dim,
            w,
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(fit("log", w).into_owned(), theme.header()));
    let log: Vec<_> = live.map(|l| l.log.iter().collect()).unwrap_or_default();
    if log.is_empty() {
        lines.push(Line::styled(fit("nothing yet", w).into_owned(), dim));
    }
    for (at, text) in log {
        lines.extend(details::wrapped(
            &format!("{} ", clock(*at, app.utc_offset)),
            text,
            Style::default(),
            dim,
            w,
        ));
    }
    lines
}

/// The selection's config errors, timeline and log over the whole screen.
pub fn history(app: &App, f: &mut Frame, theme: Theme) {
    let (area, _) = view_box((f.area().width, f.area().height));
    let name = app
        .selected_connection()
        .map(|c| c.display_name.clone())
        .unwrap_or_default();
    let lines = history_lines(app, theme, text_width(area));
    scrolled(f, area, lines, app.view_scroll, &format!("history: {name}"));
}

/// The diagnostics' lines in `w` columns: step by step, hints under the failing ones.
pub fn diagnose_lines(app: &App, theme: Theme, w: usize) -> Vec<Line<'static>> {
    let Some(d) = &app.diagnosis else {
        return Vec::new();
    };
    let mut lines: Vec<Line<'static>> = Vec::new();
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
    lines
}

/// The diagnostics, step by step as they finish; from the top, scrolled with the keys.
pub fn diagnose(app: &App, f: &mut Frame, theme: Theme) {
    let Some(d) = &app.diagnosis else { return };
    let (area, _) = view_box((f.area().width, f.area().height));
    let lines = diagnose_lines(app, theme, text_width(area));
    scrolled(
        f,
        area,
        lines,
        app.view_scroll,
        &format!("doctor: {}", d.name),
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
