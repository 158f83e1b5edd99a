//! The details pane of the selection: the hop chain, the forwards and the settings with the
//! file:line each comes from, the state, live traffic (a sparkline), uptime and the last
//! error; then its timeline beside its log. On a wide pane the facts sit left and the
//! activity right; on a narrow one they stack, and what does not fit is cut with `…` but
//! errors, which wrap: an error is read whole. A broken entry (one that did not load) shows
//! its error and the fix.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::App;
use super::fit::{fit, width, wrap};
use super::live::{Live, clock};
use super::theme::Theme;
use super::view::{badge, duration, fit_line, human_bytes, human_rate, spark, time_left};
use crate::config::Connection;
use crate::config::epoch::Broken;
use crate::engine::TunnelState;

/// `label` (dim) then `text` (in `style`) wrapped in `w` columns, its lines under the
/// first's text: the whole of it, however long.
pub fn wrapped(label: &str, text: &str, style: Style, dim: Style, w: usize) -> Vec<Line<'static>> {
    let pad = width(label);
    wrap(&format!("{label}{text}"), w, pad)
        .into_iter()
        .enumerate()
        .map(|(n, l)| match l.strip_prefix(label) {
            Some(rest) if n == 0 => Line::from(vec![
                Span::styled(label.to_string(), dim),
                Span::styled(rest.to_string(), style),
            ]),
            _ => Line::styled(l, style),
        })
        .collect()
}

/// What a broken entry's pane says: where it is, its error and the fix, whole.
fn broken(app: &App, b: &Broken, theme: Theme, w: usize) -> Vec<Line<'static>> {
    let dim = theme.dim();
    let mut lines = vec![fit_line(
        vec![
            (b.display_name.clone(), theme.strong()),
            (format!("  {}", super::table::BROKEN), theme.failed()),
            (format!(" · [{}] {}", b.table, b.error.origin.short()), dim),
        ],
        w,
    )];
    lines.extend(wrapped(
        "error      ",
        &format!("{}: {}", b.error.origin.short(), b.error.message),
        theme.failed(),
        dim,
        w,
    ));
    if let Some(fix) = &b.error.fix {
        lines.extend(wrapped("fix        ", fix, Style::default(), dim, w));
    }
    lines.extend(wrapped(
        "",
        &format!(
            "It did not load, so it is not opened: the list takes it when the file is fixed ({} reads the files now).",
            app.keymap.first_key(super::keys::Command::Reload)
        ),
        dim,
        dim,
        w,
    ));
    lines
}

/// The facts about a connection, one line each (errors wrapped over as many as they need).
pub fn facts(app: &App, c: &Connection, theme: Theme, w: usize) -> Vec<Line<'static>> {
    let live = app.live.get(&c.display_name);
    let dim = theme.dim();
    let mut broke = Vec::new();
    if let Some(b) = app.broken.get(&c.display_name) {
        broke = broken(app, b, theme, w);
        if !app.is_open(&c.display_name) {
            return broke;
        }
    }
    let tags: String = c.tags.iter().map(|t| format!(" @{}", t.value)).collect();
    let mut lines = broke;
    lines.push(fit_line(
        vec![
            (c.display_name.clone(), theme.strong()),
            (format!("  {} · {}", c.kind(), c.origin.short()), dim),
            (tags, theme.accent()),
        ],
        w,
    ));
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
    lines.push(fit_line(vec![(chain.join(" → "), Style::default())], w));
    let state = app.state(&c.display_name);
    let (text, style) = badge(app, &c.display_name, theme);
    let mut parts = vec![("state      ".to_string(), dim), (text, style)];
    if let TunnelState::Expired { reason } = &state {
        parts.push((format!("  closed: {reason}"), dim));
    }
    if let Some(h) = live.and_then(|l| l.health.as_ref()) {
        let style = if h.ok { theme.up() } else { theme.failed() };
        parts.push((format!("  · {}", h.short()), style));
    }
    if let Some(secs) = live
        .and_then(|l| l.stats.expires_in_secs)
        .filter(|_| app.is_open(&c.display_name))
    {
        parts.push((
            format!(
                "  · {} left ({} extends)",
                time_left(secs),
                app.keymap.first_key(super::keys::Command::Extend)
            ),
            theme.busy(),
        ));
    }
    lines.push(fit_line(parts, w));
    if let Some(secs) = live.and_then(|l| l.stats.certificate_expires_in_secs) {
        let (text, style) = if secs > 0 {
            (
                format!("expires in {}", time_left(secs as f64)),
                if secs > 60 { dim } else { theme.busy() },
            )
        } else {
            (
                "expired: the next connect gets a fresh one".to_string(),
                theme.busy(),
            )
        };
        lines.push(fit_line(
            vec![("cert       ".to_string(), dim), (text, style)],
            w,
        ));
    }
    let failed = match &state {
        TunnelState::Failed { error } => Some(error.as_str()),
        _ => None,
    };
    if let Some(e) = failed {
        lines.extend(wrapped("error      ", e, theme.failed(), dim, w));
    }
    if super::reload::is_changed(app, &c.display_name) {
        lines.push(fit_line(
            vec![(
                format!(
                    "✎ config changed: {} twice to reopen with the new settings",
                    app.keymap.first_key(super::keys::Command::Toggle)
                ),
                theme.busy(),
            )],
            w,
        ));
    }
    if let Some(l) = live {
        lines.push(fit_line(
            vec![
                ("traffic    ".into(), dim),
                (
                    format!(
                        "in {}  out {}  now {}  conns {} open / {} total",
                        human_bytes(l.stats.bytes_in),
                        human_bytes(l.stats.bytes_out),
                        human_rate(l.rate()),
                        l.stats.active,
                        l.stats.total
                    ),
                    Style::default(),
                ),
            ],
            w,
        ));
        let up = l.stats.uptime_secs.map(duration).unwrap_or("-".into());
        lines.push(fit_line(
            vec![
                ("uptime     ".into(), dim),
                (
                    format!("{up}   reconnects {}", l.stats.reconnects),
                    Style::default(),
                ),
            ],
            w,
        ));
        if let Some(e) = l.stats.last_error.as_deref().filter(|e| Some(*e) != failed) {
            lines.extend(wrapped("last error ", e, theme.failed(), dim, w));
        }
        if !l.history.is_empty() {
            let n = w.saturating_sub(12).min(l.history.len());
            lines.push(fit_line(
                vec![
                    ("history    ".into(), dim),
                    (spark(&l.history, n), theme.up()),
                ],
                w,
            ));
        }
    }
    for fw in &c.forwards {
        lines.push(fit_line(
            vec![
                (format!("{}  ", fw.value.summary()), Style::default()),
                (fw.origin.short(), dim),
            ],
            w,
        ));
    }
    if let Some(h) = c.hops.last() {
        let key = h
            .identity_files
            .iter()
            .find(|k| k.value.exists())
            .or(h.identity_files.first());
        let settings: [(&str, String, String); 4] = [
            ("user", h.user.value.clone(), h.user.origin.short()),
            (
                "key",
                key.map(|k| k.value.display().to_string())
                    .unwrap_or("-".into()),
                key.map(|k| k.origin.short()).unwrap_or_default(),
            ),
            (
                "host keys",
                h.host_key_policy.value.to_string(),
                h.host_key_policy.origin.short(),
            ),
            (
                "keepalive",
                h.keepalive_interval.value.to_string(),
                h.keepalive_interval.origin.short(),
            ),
        ];
        for (k, v, src) in settings {
            lines.push(fit_line(
                vec![
                    (format!("{k:<10} "), dim),
                    (format!("{v}  "), Style::default()),
                    (src, dim),
                ],
                w,
            ));
        }
    }
    lines
}

/// The timeline's last lines that fit in `h` rows of `w` columns, newest last.
pub fn timeline(
    app: &App,
    live: Option<&Live>,
    theme: Theme,
    w: usize,
    h: usize,
) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(
        fit("timeline", w).into_owned(),
        theme.header(),
    )];
    let moments: Vec<_> = live
        .map(|l| l.timeline.iter().collect())
        .unwrap_or_default();
    if moments.is_empty() {
        out.push(Line::styled(
            fit("nothing yet", w).into_owned(),
            theme.dim(),
        ));
    }
    let skip = moments.len().saturating_sub(h.saturating_sub(1));
    for m in moments.into_iter().skip(skip) {
        let style = match m.what {
            super::live::Happened::Failed(_) | super::live::Happened::Health { ok: false, .. } => {
                theme.failed()
            }
            super::live::Happened::Health { ok: true, .. } => theme.up(),
            super::live::Happened::Opened | super::live::Happened::Reconnected => theme.up(),
            super::live::Happened::Closed | super::live::Happened::Expired(_) => theme.dim(),
            _ => theme.busy(),
        };
        out.push(fit_line(
            vec![
                (format!("{} ", clock(m.at, app.utc_offset)), theme.dim()),
                (format!("{} {}", m.what.symbol(), m.what.text()), style),
            ],
            w,
        ));
    }
    out
}

/// The log's last lines that fit in `h` rows of `w` columns.
pub fn log(app: &App, live: Option<&Live>, theme: Theme, w: usize, h: usize) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(fit("log", w).into_owned(), theme.header())];
    let lines: Vec<_> = live.map(|l| l.log.iter().collect()).unwrap_or_default();
    if lines.is_empty() {
        out.push(Line::styled(
            fit("nothing yet", w).into_owned(),
            theme.dim(),
        ));
    }
    let skip = lines.len().saturating_sub(h.saturating_sub(1));
    for (at, text) in lines.into_iter().skip(skip) {
        out.push(fit_line(
            vec![
                (format!("{} ", clock(*at, app.utc_offset)), theme.dim()),
                (text.clone(), Style::default()),
            ],
            w,
        ));
    }
    out
}

/// The timeline and the log side by side in `area` (stacked when it is narrow).
pub fn activity(app: &App, live: Option<&Live>, f: &mut Frame, area: Rect, theme: Theme) {
    if area.height == 0 || area.width < 4 {
        return;
    }
    if area.width >= 70 {
        let left = Rect {
            width: area.width * 9 / 20,
            ..area
        };
        let right = Rect {
            x: left.right() + 1,
            width: area.width - left.width - 1,
            ..area
        };
        let h = usize::from(area.height);
        f.render_widget(
            Paragraph::new(timeline(
                app,
                live,
                theme,
                usize::from(left.width).saturating_sub(1),
                h,
            )),
            left,
        );
        f.render_widget(
            Paragraph::new(log(
                app,
                live,
                theme,
                usize::from(right.width).saturating_sub(1),
                h,
            )),
            right,
        );
    } else {
        // The timeline takes the rows it needs, up to half; the log the rest.
        let moments = live.map(|l| l.timeline.len()).unwrap_or(0).max(1) + 2;
        let top = Rect {
            height: area
                .height
                .div_ceil(2)
                .min(u16::try_from(moments).unwrap_or(u16::MAX)),
            ..area
        };
        let bottom = Rect {
            y: top.bottom(),
            height: area.height - top.height,
            ..area
        };
        let w = usize::from(area.width).saturating_sub(1);
        f.render_widget(
            Paragraph::new(timeline(app, live, theme, w, usize::from(top.height))),
            top,
        );
        f.render_widget(
            Paragraph::new(log(app, live, theme, w, usize::from(bottom.height))),
            bottom,
        );
    }
}

pub fn render(app: &App, c: &Connection, f: &mut Frame, area: Rect, theme: Theme) {
    let block = Block::default().borders(Borders::ALL).title(" details ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let live = app.live.get(&c.display_name);
    // Wide: the facts left, the activity right.
    if inner.width >= 100 {
        let left = Rect {
            width: inner.width * 11 / 20,
            ..inner
        };
        let right = Rect {
            x: left.right() + 1,
            width: inner.width - left.width - 1,
            ..inner
        };
        let lines = facts(app, c, theme, usize::from(left.width).saturating_sub(1));
        f.render_widget(Paragraph::new(lines), left);
        activity(app, live, f, right, theme);
        return;
    }
    let lines = facts(app, c, theme, usize::from(inner.width).saturating_sub(1));
    let n = (lines.len() as u16).min(inner.height);
    f.render_widget(Paragraph::new(lines), Rect { height: n, ..inner });
    let y = inner.y + n + 1;
    if inner.bottom() >= y + 3 {
        activity(
            app,
            live,
            f,
            Rect {
                y,
                height: inner.bottom() - y,
                ..inner
            },
            theme,
        );
    }
}
