//! The list's rows: the connections the filter lets through, sorted (name, state, source,
//! traffic) and optionally grouped under section headers, with the selection kept on the same
//! connection when the order changes. Recomputed on a change, not on every frame: with 10,000
//! connections a keystroke filters once and draws only the rows on screen.

use crate::config::{Connection, SourceKind};
use crate::engine::TunnelState;
use crate::settings::{GroupBy, SortBy};

use super::app::App;
use super::layout;

/// One row of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// A section header (when grouping).
    Group { label: String, count: usize },
    /// A connection, by its index in `App::connections`.
    Conn(usize),
}

/// The texts of a connection's table cells that do not change while it runs, made once.
#[derive(Clone, Debug, Default)]
pub struct Cells {
    /// Lowercase name, hosts and target: what the filter searches.
    pub haystack: String,
    /// The local end of the first forward as configured (`127.0.0.1:auto`), "" for none.
    pub local: String,
    pub target: String,
    /// The hops: `bastion.example.com`, `jump → bastion:2222`.
    pub via: String,
    /// Columns the name, local, target and via take (measured once: the table sizes its
    /// columns over every row on each frame).
    pub widths: [u16; 4],
}

impl Cells {
    pub fn of(c: &Connection) -> Cells {
        let hosts = c
            .hops
            .iter()
            .map(|h| h.host.value.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let target = c.target().unwrap_or_default();
        let local = c
            .forwards
            .first()
            .and_then(|f| f.value.ends().0)
            .map(|l| match c.forwards.len() {
                1 => l,
                n => format!("{l} +{}", n - 1),
            })
            .unwrap_or_default();
        // An ssh_config host's last hop is the host itself: it is the way, not the target.
        let via = c
            .hops
            .iter()
            .map(|h| {
                if h.port.value == 22 {
                    h.host.value.clone()
                } else {
                    format!("{}:{}", h.host.value, h.port.value)
                }
            })
            .collect::<Vec<_>>()
            .join(" → ");
        let w =
            |s: &str| super::fit::width(&crate::text::escape(s)).min(usize::from(u16::MAX)) as u16;
        Cells {
            haystack: format!("{} {hosts} {target}", c.display_name).to_ascii_lowercase(),
            widths: [w(&c.display_name), w(&local), w(&target), w(&via)],
            local,
            target,
            via,
        }
    }
}

/// The name of a connection's source in the list.
pub fn source_label(s: SourceKind) -> &'static str {
    match s {
        SourceKind::Ssh => "ssh_config",
        SourceKind::Epoch => "epoch.toml",
    }
}

/// A fuzzy match: the pattern's characters appear in order.
pub fn fuzzy(pattern: &str, text: &str) -> bool {
    let mut it = text.chars();
    pattern.chars().all(|p| it.any(|c| c == p))
}

/// Problems first: broken (did not load), failed, reconnecting, connecting, up with its
/// database failing, up, expired, down.
fn state_rank(app: &App, name: &str) -> u8 {
    if app.broken.contains_key(name) && !app.is_open(name) {
        return 0;
    }
    match app.states.get(name) {
        Some(TunnelState::Failed { .. } | TunnelState::NeedsYou { .. }) => 1,
        Some(TunnelState::Reconnecting { .. }) => 2,
        Some(TunnelState::Connecting) => 3,
        Some(TunnelState::Up)
            if app
                .live
                .get(name)
                .and_then(|l| l.health.as_ref())
                .is_some_and(|h| !h.ok) =>
        {
            4
        }
        Some(TunnelState::OnDemand { error: Some(_) }) => 4,
        Some(TunnelState::Up | TunnelState::OnDemand { .. }) => 5,
        Some(TunnelState::Expired { .. }) => 6,
        Some(TunnelState::Down) | None => 7,
    }
}

impl App {
    /// Rebuilds `rows` from the filter, the sort and the grouping, keeping the selection on
    /// the connection it was on.
    pub fn refresh_rows(&mut self) {
        self.refresh_rows_keeping(self.selected_index());
    }

    /// [`App::refresh_rows`], with the selection on connection `keep` if it is listed.
    pub(super) fn refresh_rows_keeping(&mut self, keep: Option<usize>) {
        let f = self.filter.value().to_ascii_lowercase();
        // `@prod` words select by tag (every one named, exactly, as `warren up @prod` does);
        // the rest is a fuzzy match on name, hosts and target.
        let (tags, words): (Vec<&str>, Vec<&str>) =
            f.split_whitespace().partition(|w| w.starts_with('@'));
        let text = words.join(" ");
        let mut idx: Vec<usize> = self
            .by_name
            .iter()
            .copied()
            .filter(|&i| {
                tags.iter().all(|t| self.connections[i].has_tag(&t[1..]))
                    && (text.is_empty() || fuzzy(&text, &self.cells[i].haystack))
            })
            .collect();
        // `by_name` is in name order and the sorts are stable: ties stay by name.
        match self.sort {
            SortBy::Name => {}
            SortBy::State => {
                idx.sort_by_key(|&i| state_rank(self, &self.connections[i].display_name))
            }
            SortBy::Source => idx.sort_by_key(|&i| self.connections[i].source as u8),
            SortBy::Traffic => idx.sort_by_key(|&i| {
                let live = self.live.get(&self.connections[i].display_name);
                std::cmp::Reverse((
                    live.map(|l| l.rate()).unwrap_or(0),
                    live.map(|l| l.stats.bytes_in + l.stats.bytes_out)
                        .unwrap_or(0),
                ))
            }),
        }
        self.rows = Vec::with_capacity(idx.len() + 2);
        match self.sections(&idx) {
            None => self.rows.extend(idx.into_iter().map(Row::Conn)),
            Some(sections) => {
                for (label, members) in sections {
                    self.rows.push(Row::Group {
                        label,
                        count: members.len(),
                    });
                    self.rows.extend(members.into_iter().map(Row::Conn));
                }
            }
        }
        self.selected = keep
            .and_then(|k| self.rows.iter().position(|r| *r == Row::Conn(k)))
            .or_else(|| self.first_conn_from(self.selected.min(self.rows.len()), 1))
            .or_else(|| self.first_conn_from(self.rows.len().saturating_sub(1), -1))
            .unwrap_or(0);
        self.scroll_to_selection();
    }

    /// The sections of the list for the grouping (`None`: not grouped), each with its
    /// members in list order; empty sections are left out. By tag: a section per tag (in
    /// name order, as first written), a connection with two tags in both, the untagged last.
    fn sections(&self, idx: &[usize]) -> Option<Vec<(String, Vec<usize>)>> {
        match self.group {
            GroupBy::None => None,
            GroupBy::Source => Some(
                [SourceKind::Ssh, SourceKind::Epoch]
                    .into_iter()
                    .map(|source| {
                        let members: Vec<usize> = idx
                            .iter()
                            .copied()
                            .filter(|&i| self.connections[i].source == source)
                            .collect();
                        (source_label(source).to_string(), members)
                    })
                    .filter(|(_, m)| !m.is_empty())
                    .collect(),
            ),
            GroupBy::Tag => {
                let mut tags: Vec<(String, Vec<usize>)> = Vec::new();
                let mut untagged = Vec::new();
                for &i in idx {
                    let c = &self.connections[i];
                    if c.tags.is_empty() {
                        untagged.push(i);
                    }
                    for t in &c.tags {
                        match tags
                            .iter_mut()
                            .find(|(name, _)| name.eq_ignore_ascii_case(&t.value))
                        {
                            Some((_, members)) => members.push(i),
                            None => tags.push((t.value.clone(), vec![i])),
                        }
                    }
                }
                tags.sort_by_key(|(name, _)| name.to_ascii_lowercase());
                let mut out: Vec<(String, Vec<usize>)> = tags
                    .into_iter()
                    .map(|(name, m)| (format!("@{name}"), m))
                    .collect();
                if !untagged.is_empty() {
                    out.push(("no tag".to_string(), untagged));
                }
                Some(out)
            }
        }
    }

    /// The connection index of the selected row.
    pub fn selected_index(&self) -> Option<usize> {
        match self.rows.get(self.selected) {
            Some(Row::Conn(i)) => Some(*i),
            _ => None,
        }
    }

    /// The first connection row from `start` going `dir` (1 or -1), `start` included.
    fn first_conn_from(&self, start: usize, dir: i64) -> Option<usize> {
        let mut i = start as i64;
        while i >= 0 && (i as usize) < self.rows.len() {
            if matches!(self.rows[i as usize], Row::Conn(_)) {
                return Some(i as usize);
            }
            i += dir;
        }
        None
    }

    /// Moves the selection by `d` connections (section headers are skipped).
    pub fn move_by(&mut self, d: i64) {
        if self.rows.is_empty() {
            return;
        }
        let step = d.signum();
        let mut at = self.selected;
        for _ in 0..d.unsigned_abs() {
            let next = at as i64 + step;
            if next < 0 || next as usize >= self.rows.len() {
                break;
            }
            match self.first_conn_from(next as usize, step) {
                Some(n) => at = n,
                None => break,
            }
        }
        self.selected = at;
        self.scroll_to_selection();
    }

    pub fn select_first(&mut self) {
        self.selected = self.first_conn_from(0, 1).unwrap_or(0);
        self.scroll_to_selection();
    }

    pub fn select_last(&mut self) {
        self.selected = self
            .first_conn_from(self.rows.len().saturating_sub(1), -1)
            .unwrap_or(0);
        self.scroll_to_selection();
    }

    /// How many rows the list shows at once on this terminal.
    pub fn page(&self) -> usize {
        let (w, h) = self.size;
        let s = layout::screen(
            ratatui::layout::Rect::new(0, 0, w, h),
            self.details,
            self.rows.len(),
        );
        layout::list_rows(s.list).max(1)
    }

    /// Scrolls as little as needed to keep the selection (and its section header) on screen.
    pub fn scroll_to_selection(&mut self) {
        let page = self.page();
        let mut top = self.selected;
        if top > 0 && matches!(self.rows.get(top - 1), Some(Row::Group { .. })) {
            top -= 1;
        }
        if top < self.offset {
            self.offset = top;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        let max = self.rows.len().saturating_sub(page);
        self.offset = self.offset.min(max);
    }

    /// Selects the row shown at terminal line `y` (a click), if it is a connection.
    pub fn click(&mut self, y: u16) {
        let (w, h) = self.size;
        let s = layout::screen(
            ratatui::layout::Rect::new(0, 0, w, h),
            self.details,
            self.rows.len(),
        );
        let first = layout::first_row(s.list);
        if y < first {
            return;
        }
        let row = self.offset + usize::from(y - first);
        if row < (self.offset + self.page()).min(self.rows.len())
            && matches!(self.rows[row], Row::Conn(_))
        {
            self.selected = row;
        }
    }
}
