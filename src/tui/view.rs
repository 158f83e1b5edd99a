//! Drawing the app: pure functions of the state into a frame. The main screen (title, the
//! list, the details pane, the status line) is here; the list is [`super::table`], the pane
//! [`super::details`], the screens over it [`super::overlays`] and the form
//! [`super::wizard_view`]. Every text goes through [`super::fit`]: what does not fit is cut
//! with `…`, never silently, and control characters from peers are shown escaped.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::app::{App, Mode};
use super::fit::{fit, width, wrap};
use super::keys::Command as Key;
use super::layout;
use super::theme::Theme;
use crate::engine::TunnelState;
use crate::prompt::Prompt;
use crate::settings::{GROUPS, GroupBy, SORTS, name_of};

pub const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

/// A tunnel's state as a symbol and a word (so it reads without colour), and its colour; a
/// reconnect's wait counts down.
pub fn badge(app: &App, name: &str, theme: Theme) -> (String, Style) {
    let spin = SPINNER[(app.tick % SPINNER.len() as u64) as usize];
    match app.state(name) {
        TunnelState::Down => ("○ down".into(), theme.dim()),
        TunnelState::Connecting => (format!("{spin} connecting"), theme.busy()),
        TunnelState::Up if app.on_demand(name) => ("● up (on demand)".into(), theme.up()),
        TunnelState::Up => ("● up".into(), theme.up()),
        TunnelState::OnDemand { error: None } => ("◌ on demand".into(), theme.up()),
        TunnelState::OnDemand { error: Some(_) } => ("◌ on demand ✘".into(), theme.busy()),
        TunnelState::Reconnecting { in_secs, .. } => {
            let left = app
                .live
                .get(name)
                .and_then(|l| l.retry_in(app.now()))
                .unwrap_or(in_secs);
            (format!("↻ retry {}", time_left(left)), theme.busy())
        }
        TunnelState::NeedsYou { asking: true, .. } => ("? needs you".into(), theme.busy()),
        TunnelState::NeedsYou { asking: false, .. } => ("! needs you".into(), theme.failed()),
        TunnelState::Failed { .. } => ("✘ failed".into(), theme.failed()),
        TunnelState::Expired { .. } => ("⊘ expired".into(), theme.dim()),
    }
}

/// A sparkline of the last `n` samples, as text: `▁▂▅▇`.
pub fn spark(history: &VecDeque<u64>, n: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail: Vec<u64> = history.iter().rev().take(n).rev().copied().collect();
    let max = tail.iter().copied().max().unwrap_or(0).max(1);
    let mut s: String = std::iter::repeat_n(' ', n - tail.len()).collect();
    s.extend(tail.iter().map(|v| {
        if *v == 0 {
            ' '
        } else {
            BARS[((v * 7) / max) as usize]
        }
    }));
    s
}

/// `42s`, `5m 07s`, `1h 02m`, `3d 4h`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// "59s", "7m05s", "2h03m": seconds left, rounded up, as a countdown reads.
pub fn time_left(secs: f64) -> String {
    let s = secs.max(0.0).ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

pub fn human_rate(n: u64) -> String {
    format!("{}/s", human_bytes(n))
}

/// Pieces of text with their styles on one line of `max` columns: whole if they fit, else
/// cut with `…` where the room ends.
pub fn fit_line<'a>(parts: Vec<(String, Style)>, max: usize) -> Line<'a> {
    let mut spans = Vec::new();
    let mut used = 0;
    let total: usize = parts
        .iter()
        .map(|(t, _)| width(&crate::text::escape(t)))
        .sum();
    if total <= max {
        return Line::from(
            parts
                .into_iter()
                .map(|(t, s)| Span::styled(crate::text::escape(&t).into_owned(), s))
                .collect::<Vec<_>>(),
        );
    }
    for (t, s) in parts {
        let room = max.saturating_sub(used);
        if room == 0 {
            break;
        }
        let t = crate::text::escape(&t).into_owned();
        let w = width(&t);
        // The last piece that fits whole must leave a column for the ellipsis.
        if w < room {
            used += w;
            spans.push(Span::styled(t, s));
        } else {
            spans.push(Span::styled(fit(&t, room).into_owned(), s));
            break;
        }
    }
    Line::from(spans)
}

/// Clears the full-width band of rows a box over the screen takes, so that no word of what is
/// under it shows half covered.
pub fn backdrop(f: &mut Frame, area: Rect) {
    let full = f.area();
    f.render_widget(
        Clear,
        Rect {
            x: full.x,
            width: full.width,
            ..area
        },
    );
}

pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A bordered box's inner width, less the column kept free at its right edge.
pub fn text_width(area: Rect) -> usize {
    usize::from(area.width.saturating_sub(3))
}

pub fn render(app: &App, f: &mut Frame, theme: Theme) {
    let area = f.area();
    let s = layout::screen(
        area,
        app.details && !app.connections.is_empty(),
        app.rows.len(),
    );
    f.render_widget(
        Paragraph::new(fit_line(
            title(app),
            usize::from(area.width).saturating_sub(1),
        ))
        .style(theme.accent()),
        s.title,
    );
    if app.connections.is_empty() {
        empty_state(app, f, s.list, theme);
    } else {
        super::table::render(app, f, s.list, theme);
        if let Some(d) = s.details {
            match app.selected_connection() {
                Some(c) => super::details::render(app, c, f, d, theme),
                None => {
                    let block = Block::default().borders(Borders::ALL).title(" details ");
                    let inner = block.inner(d);
                    f.render_widget(block, d);
                    f.render_widget(
                        Line::styled(
                            fit("nothing selected", text_width(d)).into_owned(),
                            theme.dim(),
                        ),
                        inner,
                    );
                }
            }
        }
    }
    let status = status_line(app, s.status.width);
    f.render_widget(
        Paragraph::new(fit_line(
            vec![(status, theme.status())],
            usize::from(area.width).saturating_sub(1),
        )),
        s.status,
    );
    match app.mode {
        Mode::Help => super::overlays::help(app, f, theme),
        Mode::History => super::overlays::history(app, f, theme),
        Mode::Diagnose => super::overlays::diagnose(app, f, theme),
        Mode::Prompt => super::overlays::prompt(app, f, theme),
        Mode::ConfirmQuit => confirm_quit(app, f, theme),
        Mode::Setup => super::wizard_view::render(app, f, theme),
        Mode::Normal | Mode::Filter | Mode::CopyAs | Mode::PortBusy => {}
    }
}

fn title(app: &App) -> Vec<(String, Style)> {
    let open = app
        .connections
        .iter()
        .filter(|c| app.is_open(&c.display_name))
        .count();
    let n = app.connections.len();
    let mut t = format!(
        " warren  {n} connection{}, {open} open · sorted by {}",
        if n == 1 { "" } else { "s" },
        name_of(&SORTS, app.sort)
    );
    if app.group != GroupBy::None {
        t.push_str(&format!(" · grouped by {}", name_of(&GROUPS, app.group)));
    }
    if app.attached {
        t.push_str(" · attached to the daemon");
    }
    if !app.filter.value().is_empty() || app.mode == Mode::Filter {
        t.push_str(&format!("   filter: /{}", app.filter.value()));
    }
    vec![(t, Style::default())]
}

/// Every key the quit question takes (as [`super::app`] reads them) and what it does; any
/// other key stays. The dialog and the footer both say these.
pub fn quit_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    if app.standalone {
        vec![("y", "quit (tunnels close)")]
    } else if app.attached {
        vec![
            ("y", "quit (tunnels keep running)"),
            ("c", "close them and quit"),
        ]
    } else {
        vec![
            ("y", "quit (tunnels close)"),
            ("l", "leave them running in the background"),
        ]
    }
}

fn confirm_quit(app: &App, f: &mut Frame, theme: Theme) {
    let head = if app.attached {
        "Tunnels run in the daemon: they keep running."
    } else {
        "Tunnels are open: they close on quit."
    };
    let keys: String = quit_keys(app)
        .iter()
        .map(|(k, what)| format!("  {k}  {what}\n"))
        .collect();
    let text = format!("{head}\n\n{keys}  any other key: stay");
    let w = f.area().width.min(80);
    let lines: Vec<Line> = text
        .lines()
        .flat_map(|l| wrap(l, usize::from(w.saturating_sub(3)), 2))
        .map(Line::from)
        .collect();
    let area = centered(f.area(), w, lines.len() as u16 + 2);
    backdrop(f, area);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" quit? ")
                .border_style(theme.busy()),
        ),
        area,
    );
}

/// The keys that apply now: a message if there is one, else the hints that fit.
pub fn status_line(app: &App, width_cols: u16) -> String {
    if let Some(m) = &app.message {
        return format!(" {m}");
    }
    if let (Some(e), Mode::Normal) = (&app.config_error, &app.mode) {
        return format!(" ✘ {e}");
    }
    if !app.prompts.is_empty() && app.typing() {
        return " a question is waiting: it opens when you finish typing (Enter or Esc)".into();
    }
    let k = |c| app.keymap.first_key(c);
    match app.mode {
        Mode::Normal if app.connections.is_empty() => format!(
            " {} demo  {} setup  {} reload  {} help  {} quit",
            k(Key::Demo),
            k(Key::Setup),
            k(Key::Reload),
            k(Key::Help),
            k(Key::Quit)
        ),
        Mode::Normal => {
            let room = usize::from(width_cols).saturating_sub(2);
            let hints = app.keymap.hints();
            let tail: Vec<&String> = hints.iter().rev().take(2).rev().collect();
            let mut out = format!(" {}{} move", k(Key::Up), k(Key::Down));
            let tail_w: usize = tail.iter().map(|h| width(h) + 2).sum();
            for h in &hints[..hints.len().saturating_sub(2)] {
                if width(&out) + width(h) + 2 + tail_w > room {
                    break;
                }
                out.push_str("  ");
                out.push_str(h);
            }
            for h in tail {
                out.push_str("  ");
                out.push_str(h);
            }
            out
        }
        Mode::Filter => " type to filter  Enter keep  Esc clear  ↑↓ move".into(),
        Mode::PortBusy => match &app.port_busy {
            Some((name, who, free)) => format!(
                " {name}: its port is used by {who}. Use {free} for this session? y yes  n no"
            ),
            None => String::new(),
        },
        Mode::CopyAs => {
            let forms: Vec<String> = super::commands::COPY_FORMS
                .iter()
                .map(|(k, f)| format!("{k} {}", format!("{f:?}").to_ascii_lowercase()))
                .collect();
            format!(" copy as:  {}  Esc cancel", forms.join("  "))
        }
        Mode::Help => " ↑↓ PgUp PgDn scroll  Esc close".into(),
        Mode::History | Mode::Diagnose => " Esc close".into(),
        Mode::Setup => format!(" {}", app.wizard.footer()),
        Mode::Prompt => match app.prompts.front().map(|q| &q.prompt) {
            Some(Prompt::HostKey { .. }) => " y yes, trust and save  o once  n no".into(),
            Some(Prompt::Confirm { .. }) => " y yes  n no".into(),
            _ => " Enter send  Esc cancel".into(),
        },
        Mode::ConfirmQuit => {
            let keys: String = quit_keys(app)
                .iter()
                .map(|(k, what)| format!(" {k} {what} "))
                .collect();
            format!("{keys} any other key stays")
        }
    }
}

fn empty_state(app: &App, f: &mut Frame, area: Rect, theme: Theme) {
    let block = Block::default().borders(Borders::ALL).title(" welcome ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = text_width(area);
    let k = |c| app.keymap.first_key(c);
    let mut lines: Vec<Line> = vec![
        Line::styled(fit("No connections yet.", w).into_owned(), theme.strong()),
        Line::from(""),
    ];
    let offers = [
        (
            k(Key::Demo),
            "see warren work with nothing set up: the demo (all on loopback, removed on exit)",
        ),
        (
            k(Key::Setup),
            "set up access to a database: a key, the bastion's lines, the entry, a test",
        ),
        (
            k(Key::Reload),
            "read the files again, once you have added a Host with a LocalForward to ~/.ssh/config or an entry to epoch.toml",
        ),
    ];
    for (key, what) in offers {
        for (n, l) in wrap(what, w.saturating_sub(6), 0).into_iter().enumerate() {
            let head = if n == 0 {
                format!("  {key:<4}")
            } else {
                "      ".into()
            };
            lines.push(Line::from(vec![
                Span::styled(head, theme.accent()),
                Span::raw(l),
            ]));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        fit("warren looked in:", w).into_owned(),
        theme.dim(),
    ));
    for l in &app.looked_in {
        lines.push(Line::styled(
            fit(&format!("  {l}"), w).into_owned(),
            theme.dim(),
        ));
    }
    f.render_widget(Paragraph::new(lines), inner);
}
