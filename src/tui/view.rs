//! Drawing the app: pure functions of the state into a frame.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, List, ListItem, ListState, Paragraph, Sparkline, Wrap,
};

use super::app::{App, Mode};
use crate::config::{Connection, SourceKind};
use crate::diagnose::Status;
use crate::engine::TunnelState;
use crate::prompt::Prompt;

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

/// Colours, or none at all (NO_COLOR).
#[derive(Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn selected(self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
}

fn badge(app: &App, state: &TunnelState, theme: Theme) -> Span<'static> {
    let spin = SPINNER[(app.tick % SPINNER.len() as u64) as usize];
    match state {
        TunnelState::Down => Span::styled("down ", theme.fg(Color::Gray)),
        TunnelState::Connecting => Span::styled(format!("{spin} conn"), theme.fg(Color::Yellow)),
        TunnelState::Up => Span::styled(" up  ", theme.fg(Color::Green)),
        TunnelState::Reconnecting { in_secs, .. } => Span::styled(
            format!("re {:>2.0}s", in_secs.ceil()),
            theme.fg(Color::Yellow),
        ),
        TunnelState::Failed { .. } => Span::styled("FAIL ", theme.fg(Color::Red)),
        TunnelState::Expired { .. } => Span::styled("ended", theme.fg(Color::Gray)),
    }
}

fn forward_summary(c: &Connection, app: &App) -> String {
    let local = app
        .live
        .get(&c.display_name)
        .and_then(|l| l.listening.first().cloned());
    let first = c.forwards.first().map(|f| f.value.summary());
    match (local, first) {
        (Some(l), _) => format!("{l} -> {}", c.target().unwrap_or_default()),
        (None, Some(f)) => f,
        (None, None) => c.target().map(|t| format!("-> {t}")).unwrap_or_default(),
    }
}

pub fn render(app: &App, f: &mut Frame, theme: Theme) {
    let [title, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let visible = app.visible();
    let open = app
        .connections
        .iter()
        .filter(|c| app.is_open(&c.display_name))
        .count();
    let mut head = format!(
        " warren  {} connections, {open} open{}",
        app.connections.len(),
        if app.attached {
            "  (attached to the daemon)"
        } else {
            ""
        }
    );
    if !app.filter.value().is_empty() || app.mode == Mode::Filter {
        head.push_str(&format!("   filter: /{}", app.filter.value()));
    }
    f.render_widget(
        Paragraph::new(head).style(theme.fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        title,
    );
    if app.connections.is_empty() {
        empty_state(app, f, body);
    } else {
        let [list_area, details] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(body);
        let items: Vec<ListItem> = visible
            .iter()
            .map(|c| {
                let tag = match c.source {
                    SourceKind::Ssh => "ssh",
                    SourceKind::Epoch => "epo",
                };
                ListItem::new(Line::from(vec![
                    badge(app, &app.state(&c.display_name), theme),
                    Span::raw(" "),
                    Span::styled(format!("{tag} "), theme.fg(Color::DarkGray)),
                    Span::styled(
                        c.display_name.clone(),
                        Style::default().add_modifier(Modifier::BOLD),
                    ),
                    Span::raw("  "),
                    Span::raw(forward_summary(c, app)),
                ]))
            })
            .collect();
        let mut state =
            ListState::default().with_selected((!visible.is_empty()).then_some(app.selected));
        let list = List::new(items)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" connections "),
            )
            .highlight_style(theme.selected());
        f.render_stateful_widget(list, list_area, &mut state);
        match app.selected_connection() {
            Some(c) => details_pane(app, c, f, details, theme),
            None => f.render_widget(
                Paragraph::new("nothing matches the filter")
                    .block(Block::default().borders(Borders::ALL)),
                details,
            ),
        }
    }
    f.render_widget(
        Paragraph::new(status_line(app, status.width)).style(theme.fg(Color::Gray)),
        status,
    );
    match app.mode {
        Mode::Help => help(f, theme),
        Mode::Log => log_pane(app, f, theme),
        Mode::Diagnose => diagnose_pane(app, f, theme),
        Mode::Prompt => prompt_modal(app, f, theme),
        Mode::ConfirmQuit => {
            let area = centered(f.area(), 76, 5);
            f.render_widget(Clear, area);
            let text = if app.standalone {
                "Tunnels are open: they close on quit.\n\n  y quit    any other key: stay"
            } else if app.attached {
                "Tunnels run in the daemon: they keep running.\n\n  y quit    c close them and quit    any other key: stay"
            } else {
                "Tunnels are open: they close on quit.\n\n  y quit    l leave them running in the background    other: stay"
            };
            f.render_widget(
                Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" quit? ")),
                area,
            );
        }
        Mode::Setup => wizard(app, f, theme),
        Mode::Normal | Mode::Filter => {}
    }
}

fn wizard(app: &App, f: &mut Frame, theme: Theme) {
    use super::app::{WIZARD, WIZARD_PASSPHRASE};
    let area = f.area().inner(ratatui::layout::Margin {
        horizontal: 2,
        vertical: 1,
    });
    f.render_widget(Clear, area);
    let w = &app.wizard;
    let mut lines: Vec<Line> = Vec::new();
    if let Some((name, text)) = &w.done {
        lines.push(Line::styled(
            format!("5. saved '{name}'. 4. On the bastion:"),
            theme.fg(Color::Green),
        ));
        lines.extend(text.lines().map(|l| Line::from(l.to_string())));
        lines.push(Line::styled(
            "6. Enter: test it (the diagnostics)    Esc: close",
            theme.fg(Color::Cyan),
        ));
    } else {
        for (q, a) in WIZARD.iter().zip(&w.answers) {
            lines.push(Line::from(vec![
                Span::styled(format!("{q}: "), theme.fg(Color::DarkGray)),
                Span::raw(a.clone()),
            ]));
        }
        if let Some(q) = WIZARD.get(w.answers.len()) {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{q}: "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(if w.answers.len() == WIZARD_PASSPHRASE {
                    "*".repeat(w.input.value().chars().count())
                } else {
                    w.input.value().to_string()
                }),
                Span::raw("_"),
            ]));
        } else {
            lines.push(Line::from("saving..."));
        }
        if let Some(e) = &w.error {
            lines.push(Line::styled(format!("error: {e}"), theme.fg(Color::Red)));
        }
        lines.push(Line::styled(
            "Enter: next    Esc: cancel",
            theme.fg(Color::DarkGray),
        ));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" setup ")),
        area,
    );
}

/// The keys that apply now (the short form on a narrow terminal).
pub fn status_line(app: &App, width: u16) -> String {
    if let Some(m) = &app.message {
        return format!(" {m}");
    }
    if !app.prompts.is_empty() && app.typing() {
        return " a question is waiting: it opens when you finish typing (Enter or Esc)".into();
    }
    match app.mode {
        Mode::Normal if app.connections.is_empty() => " s setup  q quit  r reload  ? help".into(),
        Mode::Normal if width < 100 => " ↑↓ move  Enter open/close  d diagnose  / filter  c copy  ? help  q quit".into(),
        Mode::Normal => " ↑↓/jk move  Enter open/close  d diagnose  / filter  l log  c copy  a all  r reload  R reconnect  ? help  q quit".into(),
        Mode::Filter => " type to filter  Enter keep  Esc clear".into(),
        Mode::Help | Mode::Log => " Esc close".into(),
        Mode::Setup => " Enter next  Esc cancel".into(),
        Mode::Diagnose => " Esc close".into(),
        Mode::Prompt => match app.prompts.front().map(|q| &q.prompt) {
            Some(Prompt::HostKey { .. }) => " y yes, trust and save  o once  n no".into(),
            Some(Prompt::Confirm { .. }) => " y yes  n no".into(),
            _ => " Enter send  Esc cancel".into(),
        },

        Mode::ConfirmQuit if app.attached => " y quit (tunnels keep running)  c close them  any other key stays".into(),
        Mode::ConfirmQuit => " y quit (tunnels close)  l leave them running  any other key stays".into(),
    }
}

/// `42s`, `5m 07s`, `1h 02m`, `3d 4h`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

fn human_bytes(n: u64) -> String {
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

fn details_pane(app: &App, c: &Connection, f: &mut Frame, area: Rect, theme: Theme) {
    let live = app.live.get(&c.display_name);
    let mut lines: Vec<Line> = Vec::new();
    let dim = theme.fg(Color::DarkGray);
    lines.push(Line::from(vec![
        Span::styled(
            c.display_name.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("  {} · {}", c.kind(), c.origin.short()), dim),
    ]));
    let mut chain = vec!["you".to_string()];
    chain.extend(
        c.hops
            .iter()
            .map(|h| format!("{}@{}", h.user.value, h.address())),
    );
    if let Some(t) = c.target()
        && (c.database.is_some() || c.hops.is_empty())
    {
        chain.push(t);
    }
    lines.push(Line::from(chain.join(" -> ")));
    for fw in &c.forwards {
        lines.push(Line::from(vec![
            Span::raw(format!("{}  ", fw.value.summary())),
            Span::styled(fw.origin.short(), dim),
        ]));
    }
    if let Some(h) = c.hops.last() {
        let key = h
            .identity_files
            .iter()
            .find(|k| k.value.exists())
            .or(h.identity_files.first());
        let settings: Vec<(String, String, String)> = vec![
            ("user".into(), h.user.value.clone(), h.user.origin.short()),
            (
                "key".into(),
                key.map(|k| k.value.display().to_string())
                    .unwrap_or("-".into()),
                key.map(|k| k.origin.short()).unwrap_or_default(),
            ),
            (
                "host keys".into(),
                h.host_key_policy.value.to_string(),
                h.host_key_policy.origin.short(),
            ),
            (
                "keepalive".into(),
                h.keepalive_interval.value.to_string(),
                h.keepalive_interval.origin.short(),
            ),
        ];
        for (k, v, src) in settings {
            lines.push(Line::from(vec![
                Span::raw(format!("{k:<10} {v}  ")),
                Span::styled(src, dim),
            ]));
        }
    }
    let state = app.state(&c.display_name);
    lines.push(Line::from(vec![
        Span::raw("state      "),
        badge(app, &state, theme),
        Span::raw(match &state {
            TunnelState::Failed { error } => format!(" {error}"),
            TunnelState::Expired { reason } => format!(" closed: {reason}"),
            _ => String::new(),
        }),
    ]));
    if let Some(l) = live {
        lines.push(Line::from(format!(
            "traffic    in {}  out {}   conns {} open / {} total",
            human_bytes(l.stats.bytes_in),
            human_bytes(l.stats.bytes_out),
            l.stats.active,
            l.stats.total
        )));
        let up = l.stats.uptime_secs.map(duration).unwrap_or("-".into());
        lines.push(Line::from(format!(
            "uptime     {up}   reconnects {}",
            l.stats.reconnects
        )));
        if let Some(e) = &l.stats.last_error {
            lines.push(Line::from(vec![
                Span::raw("last error "),
                Span::styled(e.clone(), theme.fg(Color::Red)),
            ]));
        }
    }
    let block = Block::default().borders(Borders::ALL).title(" details ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let spark_h = if live.is_some_and(|l| !l.history.is_empty()) {
        3
    } else {
        0
    };
    let [text_area, spark_area, log_area] = Layout::vertical([
        Constraint::Length(lines.len() as u16),
        Constraint::Length(spark_h),
        Constraint::Min(0),
    ])
    .areas(inner);
    // Not wrapped: each setting keeps its one row, and what is too long is cut at the edge.
    f.render_widget(Paragraph::new(lines), text_area);
    if let Some(l) = live {
        if spark_h > 0 {
            let data: Vec<u64> = l.history.iter().copied().collect();
            f.render_widget(
                Sparkline::default()
                    .block(Block::default().title("throughput"))
                    .data(&data)
                    .style(theme.fg(Color::Green)),
                spark_area,
            );
        }
        let n = log_area.height as usize;
        let tail: Vec<Line> = l
            .log
            .iter()
            .rev()
            .take(n)
            .rev()
            .map(|s| Line::styled(s.clone(), dim))
            .collect();
        f.render_widget(Paragraph::new(tail), log_area);
    }
}

fn empty_state(app: &App, f: &mut Frame, area: Rect) {
    let mut text = vec![
        Line::from("No connections yet."),
        Line::from(""),
        Line::from("warren looked in:"),
    ];
    text.extend(app.looked_in.iter().map(|l| Line::from(format!("  {l}"))));
    text.extend([
        Line::from(""),
        Line::from("See warren work with nothing set up:   warren demo   (all on loopback, removed on exit)"),
        Line::from("Set up access to a database:           press s       (a key, the bastion's lines, the entry, a test)"),
        Line::from("Or add a Host with a LocalForward to ~/.ssh/config, or an entry to epoch.toml, then press r."),
    ]);
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" welcome ")),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn help(f: &mut Frame, _theme: Theme) {
    let keys = [
        ("↑ ↓  j k", "move"),
        ("Enter  Space", "open / close the selected tunnel"),
        ("d", "diagnose the selection, step by step"),
        (
            "/",
            "filter (fuzzy: name, host, target); Esc clears, Enter keeps",
        ),
        ("l", "the selection's full log"),
        ("c", "copy a connection string (OSC 52)"),
        ("a", "open / close every tunnel in the list"),
        ("r", "read the config files again"),
        ("R", "reconnect every open tunnel now"),
        (
            "s",
            "set up a new connection (key, bastion lines, entry, test)",
        ),
        ("?", "this help"),
        ("q", "quit (asks first when tunnels are open)"),
    ];
    let area = centered(f.area(), 72, keys.len() as u16 + 2);
    f.render_widget(Clear, area);
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, d)| Line::from(format!(" {k:<14} {d}")))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        area,
    );
}

fn log_pane(app: &App, f: &mut Frame, _theme: Theme) {
    let area = f.area().inner(ratatui::layout::Margin {
        horizontal: 2,
        vertical: 1,
    });
    f.render_widget(Clear, area);
    let name = app
        .selected_connection()
        .map(|c| c.display_name.clone())
        .unwrap_or_default();
    let lines: Vec<Line> = app
        .live
        .get(&name)
        .map(|l| l.log.iter().map(|s| Line::from(s.clone())).collect())
        .unwrap_or_default();
    let n = area.height.saturating_sub(2) as usize;
    let start = lines.len().saturating_sub(n);
    f.render_widget(
        Paragraph::new(lines[start..].to_vec()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" log: {name} ")),
        ),
        area,
    );
}

fn diagnose_pane(app: &App, f: &mut Frame, theme: Theme) {
    let Some(d) = &app.diagnosis else { return };
    let area = f.area().inner(ratatui::layout::Margin {
        horizontal: 2,
        vertical: 1,
    });
    f.render_widget(Clear, area);
    let mut lines: Vec<Line> = Vec::new();
    for s in &d.steps {
        let (mark, style) = match s.status {
            Status::Pass => ("✔", theme.fg(Color::Green)),
            Status::Warn => ("!", theme.fg(Color::Yellow)),
            Status::Fail => ("✘", theme.fg(Color::Red)),
            Status::Skip => ("-", theme.fg(Color::DarkGray)),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), style),
            Span::raw(format!(
                "hop {} {:<9} {:>5} ms  {}",
                s.hop, s.id, s.duration_ms, s.detail
            )),
        ]));
        if let Some(h) = &s.hint {
            lines.push(Line::styled(format!("    -> {h}"), theme.fg(Color::Yellow)));
        }
    }
    match d.done {
        None => lines.push(Line::from(format!(
            "{} running...",
            SPINNER[(app.tick % SPINNER.len() as u64) as usize]
        ))),
        Some(true) => lines.push(Line::styled("no step failed", theme.fg(Color::Green))),
        Some(false) => lines.push(Line::styled(
            "a step failed: see the hint under it",
            theme.fg(Color::Red),
        )),
    }
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" doctor: {} ", d.name)),
        ),
        area,
    );
}

fn prompt_modal(app: &App, f: &mut Frame, theme: Theme) {
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
    let (title, mut lines): (&str, Vec<String>) = match &q.prompt {
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
            let (text, echo) = prompts.get(i).cloned().unwrap_or_default();
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
                    format!("  {text} {shown}"),
                ],
            )
        }
    };
    lines.push(String::new());
    lines.push(timeout);
    // The height the wrapped text needs, so nothing (the countdown) is cut off.
    let inner = usize::from(f.area().width.min(76).saturating_sub(2)).max(1);
    let height: usize = lines
        .iter()
        .map(|l| {
            // Word wrapping can take a line more than the characters alone need.
            let n = l.chars().count().div_ceil(inner).max(1);
            if n > 1 { n + 1 } else { n }
        })
        .sum();
    let area = centered(f.area(), 76, height.min(u16::MAX as usize) as u16 + 2);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines.join("\n"))
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .border_style(theme.fg(Color::Yellow)),
            ),
        area,
    );
}
