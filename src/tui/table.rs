//! The connection list as a table: a header row and columns sized to their content, made
//! from one list, [`COLUMNS`]. The columns whose `keep` is 0 are always there (cut with `…`
//! down to their `min` when the terminal is narrow); the others are added, in `keep` order,
//! while they fit. Only the rows on screen are built, so 10,000 connections draw as fast as 30.
//!
//! To add a column (a health check's "db ok 3 ms", tags, time left): write its cell function
//! (text and style from the app and the connection's index; `""` when it has nothing to say),
//! optionally a cheap width function, and put a [`Column`] for it in [`COLUMNS`] where it
//! should appear, with a `keep` rank saying how soon it is dropped on a narrow terminal.
//! The ranks put what tells a problem first: the database's verdict (DB), then the way
//! (VIA), then the traffic's sparkline, which is mostly blank.

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row as TableRow, Table, TableState};

use super::app::App;
use super::fit::{fit, width};
use super::rows::{Row, source_label};
use super::theme::Theme;
use super::view::{badge, human_rate, spark, time_left};
use crate::settings::SortBy;

/// What a cell function sees.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

/// One column of the list.
pub struct Column {
    pub header: &'static str,
    /// 0: always shown. Others are added in this order (1 first) while the terminal has room.
    pub keep: u8,
    /// The narrowest it may be cut to, with `…`. `None`: shown whole or not at all.
    pub min: Option<usize>,
    /// The cell of connection `i`: its text (not yet fitted) and style.
    pub cell: for<'a> fn(&Ctx<'a>, usize) -> (Cow<'a, str>, Style),
    /// The width of connection `i`'s cell, cheaply; `None`: measured from `cell`.
    pub width: Option<fn(&Ctx, usize) -> usize>,
    /// The sort that orders by this column (its header is marked).
    pub sort: Option<SortBy>,
}

/// The columns, in the order they appear.
pub const COLUMNS: &[Column] = &[
    Column {
        header: "STATE",
        keep: 0,
        min: None,
        cell: state_cell,
        width: Some(state_width),
        sort: Some(SortBy::State),
    },
    Column {
        header: "NAME",
        keep: 0,
        min: Some(8),
        cell: name_cell,
        width: Some(|x, i| usize::from(x.app.cells[i].widths[0])),
        sort: Some(SortBy::Name),
    },
    Column {
        header: "LOCAL",
        keep: 1,
        min: None,
        cell: |x, i| (local(x.app, i), Style::default()),
        width: Some(local_width),
        sort: None,
    },
    Column {
        header: "TARGET",
        keep: 0,
        min: Some(12),
        cell: target_cell,
        width: Some(|x, i| usize::from(x.app.cells[i].widths[2])),
        sort: None,
    },
    Column {
        header: "VIA",
        keep: 3,
        min: Some(10),
        cell: via_cell,
        width: Some(|x, i| usize::from(x.app.cells[i].widths[3])),
        sort: None,
    },
    Column {
        header: "DB",
        keep: 2,
        min: Some(8),
        cell: db_cell,
        width: None,
        sort: None,
    },
    Column {
        header: "LEFT",
        keep: 1,
        min: None,
        cell: left_cell,
        width: None,
        sort: None,
    },
    Column {
        header: "TRAFFIC",
        keep: 4,
        min: Some(12),
        cell: traffic,
        width: Some(|x, i| {
            if traffic_shown(x.app, i) {
                TRAFFIC_W
            } else {
                0
            }
        }),
        sort: Some(SortBy::Traffic),
    },
    Column {
        header: "SOURCE",
        keep: 6,
        min: None,
        cell: |x, i| {
            (
                Cow::Borrowed(source_label(x.app.connections[i].source)),
                x.theme.dim(),
            )
        },
        width: Some(|x, i| width(source_label(x.app.connections[i].source))),
        sort: Some(SortBy::Source),
    },
    Column {
        header: "TAGS",
        keep: 5,
        min: Some(6),
        cell: |x, i| {
            let tags = &x.app.connections[i].tags;
            if tags.is_empty() {
                return (Cow::Borrowed(""), Style::default());
            }
            let text: Vec<&str> = tags.iter().map(|t| t.value.as_str()).collect();
            (Cow::Owned(text.join(",")), x.theme.dim())
        },
        width: None,
        sort: None,
    },
];

/// The database's health behind an open tunnel: "ok 3 ms", or "failing: why".
fn db_cell<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    let name = &x.app.connections[i].display_name;
    match x.app.live.get(name).and_then(|l| l.health.as_ref()) {
        Some(h) if x.app.is_open(name) => {
            let text = h.verdict();
            let style = if h.ok { x.theme.up() } else { x.theme.failed() };
            (Cow::Owned(text), style)
        }
        _ => (Cow::Borrowed(""), Style::default()),
    }
}

/// Time left before an open tunnel's time limit closes it.
fn left_cell<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    let name = &x.app.connections[i].display_name;
    match x.app.live.get(name).and_then(|l| l.stats.expires_in_secs) {
        Some(secs) if x.app.is_open(name) => {
            let style = if secs < 300.0 {
                x.theme.busy()
            } else {
                Style::default()
            };
            (Cow::Owned(time_left(secs)), style)
        }
        _ => (Cow::Borrowed(""), Style::default()),
    }
}

/// The state of a broken entry (one that did not load) that is not open.
pub const BROKEN: &str = "✘ broken";

fn state_cell<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    let name = &x.app.connections[i].display_name;
    if x.app.broken.contains_key(name) && !x.app.is_open(name) {
        return (Cow::Borrowed(BROKEN), x.theme.failed());
    }
    let (mut text, style) = badge(x.app, name, x.theme);
    if super::reload::is_changed(x.app, name) {
        text.push_str(CHANGED);
    }
    (Cow::Owned(text), style)
}

/// After the state of an open tunnel whose settings changed in the config.
const CHANGED: &str = " ✎";

fn state_width(x: &Ctx, i: usize) -> usize {
    let name = &x.app.connections[i].display_name;
    if x.app.broken.contains_key(name) && !x.app.is_open(name) {
        return width(BROKEN);
    }
    match x.app.states.get(name) {
        // "○ down", without making the string: most rows are down.
        None | Some(crate::engine::TunnelState::Down) => 6,
        Some(_) => {
            let name = &x.app.connections[i].display_name;
            let mark = if super::reload::is_changed(x.app, name) {
                width(CHANGED)
            } else {
                0
            };
            width(&badge(x.app, name, x.theme).0) + mark
        }
    }
}

fn local_width(x: &Ctx, i: usize) -> usize {
    if x.app.is_open(&x.app.connections[i].display_name) {
        width(&local(x.app, i))
    } else {
        usize::from(x.app.cells[i].widths[1])
    }
}

fn name_cell<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    (
        Cow::Borrowed(x.app.connections[i].display_name.as_str()),
        x.theme.strong(),
    )
}

fn target_cell<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    (
        Cow::Borrowed(x.app.cells[i].target.as_str()),
        Style::default(),
    )
}

fn via_cell<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    (Cow::Borrowed(x.app.cells[i].via.as_str()), x.theme.dim())
}

/// Sparkline columns, a space and a rate.
const SPARK: usize = 8;
const TRAFFIC_W: usize = SPARK + 1 + 11;

/// The local end: where it listens when open, else as configured.
fn local(app: &App, i: usize) -> Cow<'_, str> {
    let c = &app.connections[i];
    match app
        .live
        .get(&c.display_name)
        .and_then(|l| l.listening.first())
    {
        Some(l) if app.is_open(&c.display_name) => Cow::Borrowed(l.as_str()),
        _ => Cow::Borrowed(app.cells[i].local.as_str()),
    }
}

fn traffic_shown(app: &App, i: usize) -> bool {
    let name = &app.connections[i].display_name;
    app.is_open(name) && app.live.get(name).is_some_and(|l| !l.history.is_empty())
}

fn traffic<'a>(x: &Ctx<'a>, i: usize) -> (Cow<'a, str>, Style) {
    if !traffic_shown(x.app, i) {
        return (Cow::Borrowed(""), Style::default());
    }
    let Some(l) = x.app.live.get(&x.app.connections[i].display_name) else {
        return (Cow::Borrowed(""), Style::default());
    };
    // The rate first: on a narrow terminal the sparkline is what is cut (with `…`).
    let text = format!(
        "{:>11} {}",
        human_rate(l.rate()),
        spark(&l.history, SPARK).trim_start()
    );
    (Cow::Owned(text), x.theme.up())
}

/// Chosen columns and their widths for `avail` columns of room.
pub fn layout(x: &Ctx, avail: usize) -> Vec<(usize, usize)> {
    // Natural widths: the header's and the widest cell's (group labels sit in NAME).
    let mut natural: Vec<usize> = COLUMNS.iter().map(|c| width(c.header) + 1).collect();
    let mut any: Vec<bool> = COLUMNS.iter().map(|c| c.keep == 0).collect();
    for r in &x.app.rows {
        match r {
            Row::Conn(i) => {
                for (k, c) in COLUMNS.iter().enumerate() {
                    let w = match c.width {
                        Some(f) => f(x, *i),
                        None => width(&(c.cell)(x, *i).0),
                    };
                    natural[k] = natural[k].max(w);
                    any[k] |= w > 0;
                }
            }
            Row::Group { label, count } => {
                natural[1] = natural[1].max(width(&group_label(label, *count)));
            }
        }
    }
    // Every shown column is followed by one space.
    let mut chosen: Vec<(usize, usize)> = COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| c.keep == 0)
        .map(|(k, _)| (k, natural[k]))
        .collect();
    let total = |v: &[(usize, usize)]| v.iter().map(|(_, w)| w + 1).sum::<usize>();
    // Too narrow for the mandatory columns whole: cut the widest cuttable one, a column at a
    // time, down to its minimum.
    while total(&chosen) > avail {
        let widest = chosen
            .iter_mut()
            .filter(|(k, w)| COLUMNS[*k].min.is_some_and(|m| *w > m))
            .max_by_key(|(_, w)| *w);
        match widest {
            Some((_, w)) => *w -= 1,
            None => break,
        }
    }
    let mut optional: Vec<usize> = (0..COLUMNS.len())
        .filter(|k| COLUMNS[*k].keep > 0 && any[*k])
        .collect();
    optional.sort_by_key(|k| COLUMNS[*k].keep);
    for k in optional {
        let room = avail.saturating_sub(total(&chosen));
        if natural[k] < room {
            chosen.push((k, natural[k]));
        } else if let Some(m) = COLUMNS[k].min
            && room > m
        {
            chosen.push((k, room - 1));
        }
    }
    chosen.sort_by_key(|(k, _)| *k);
    chosen
}

fn group_label(label: &str, count: usize) -> String {
    format!("{label} ({count})")
}

/// Draws the list into `area`.
pub fn render(app: &App, f: &mut Frame, area: Rect, theme: Theme) {
    let x = Ctx { app, theme };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" connections ");
    let inner = block.inner(area);
    // Two columns for the selection's marker, and one kept free at the right edge.
    let avail = usize::from(inner.width).saturating_sub(3);
    let cols = layout(&x, avail);
    let header = TableRow::new(cols.iter().map(|(k, w)| {
        let c = &COLUMNS[*k];
        let mark = if c.sort == Some(app.sort) { "↓" } else { "" };
        Cell::from(Span::styled(
            fit(&format!("{}{mark}", c.header), *w).into_owned(),
            theme.header(),
        ))
    }));
    let page = usize::from(inner.height.saturating_sub(1));
    let end = (app.offset + page).min(app.rows.len());
    let first = app.offset.min(end);
    let rows: Vec<TableRow> = app.rows[first..end]
        .iter()
        .enumerate()
        .map(|(n, r)| match r {
            Row::Conn(i) => TableRow::new(cols.iter().map(|(k, w)| {
                let (text, mut style) = (COLUMNS[*k].cell)(&x, *i);
                if first + n == app.selected {
                    style = theme.on_cursor(style);
                }
                Cell::from(Span::styled(fit(&text, *w).into_owned(), style))
            })),
            Row::Group { label, count } => TableRow::new(cols.iter().map(|(k, w)| {
                let text = match *k {
                    0 => "──".to_string(),
                    1 => group_label(label, *count),
                    _ => String::new(),
                };
                Cell::from(Span::styled(fit(&text, *w).into_owned(), theme.header()))
            })),
        })
        .collect();
    if rows.is_empty() {
        f.render_widget(block, area);
        let text = if app.filter.value().is_empty() {
            "no connections".to_string()
        } else {
            format!(
                "nothing matches '{}': Esc clears the filter",
                app.filter.value()
            )
        };
        f.render_widget(
            Line::styled(
                fit(&text, usize::from(inner.width).saturating_sub(1)).into_owned(),
                theme.dim(),
            ),
            Rect {
                y: inner.y + 1,
                height: 1,
                ..inner
            },
        );
        return;
    }
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|(_, w)| Constraint::Length(*w as u16))
        .collect();
    let mut state = TableState::default()
        .with_selected(app.selected.checked_sub(app.offset).filter(|s| *s < page));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .highlight_symbol("› ")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always)
        .row_highlight_style(theme.selected());
    f.render_stateful_widget(table, area, &mut state);
}
