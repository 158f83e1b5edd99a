//! `warren list [--json]`: every connection, one line each.

use std::io::Write;

use serde::Serialize;

use super::exit;
use crate::config::forward::{Endpoint, Forward, ForwardKind};
use crate::config::{Catalog, Connection, ConnectionKind, SourceKind};
use crate::text::escape;

#[derive(Serialize)]
pub struct SourceJson {
    pub kind: SourceKind,
    pub file: Option<String>,
    pub line: Option<usize>,
}

impl SourceJson {
    pub fn of(c: &Connection) -> Self {
        SourceJson {
            kind: c.source,
            file: c.origin.file_line().map(|(p, _)| p.display().to_string()),
            line: c.origin.file_line().map(|(_, l)| l),
        }
    }
}

#[derive(Serialize)]
pub struct ForwardJson {
    pub kind: ForwardKind,
    pub local: Option<String>,
    pub target: Option<String>,
}

#[derive(Serialize)]
struct HopJson<'a> {
    name: &'a str,
    host: &'a str,
    port: u16,
    user: &'a str,
}

#[derive(Serialize)]
struct ConnectionJson<'a> {
    name: &'a str,
    source: SourceJson,
    kind: ConnectionKind,
    forwards: Vec<ForwardJson>,
    target: Option<String>,
    hops: Vec<HopJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'a str>,
    tags: Vec<&'a str>,
}

/// The local end as a user would type it: a bind address is always shown, port 0 is "auto".
pub fn local_text(e: &Endpoint) -> String {
    e.local_text()
}

pub fn forward_json(f: &Forward) -> (Option<String>, Option<String>) {
    f.ends()
}

/// `local -> target` for the table.
pub fn forward_text(f: &Forward) -> String {
    f.summary()
}

fn to_json(c: &Connection) -> ConnectionJson<'_> {
    ConnectionJson {
        name: &c.display_name,
        source: SourceJson::of(c),
        kind: c.kind(),
        forwards: c
            .forwards
            .iter()
            .map(|f| {
                let (local, target) = forward_json(&f.value);
                ForwardJson {
                    kind: f.value.kind,
                    local,
                    target,
                }
            })
            .collect(),
        target: c.target(),
        hops: c
            .hops
            .iter()
            .map(|h| HopJson {
                name: &h.name,
                host: &h.host.value,
                port: h.port.value,
                user: &h.user.value,
            })
            .collect(),
        engine: c.database.as_ref().map(|d| d.engine.as_str()),
        tags: c.tags.iter().map(|t| t.value.as_str()).collect(),
    }
}

/// Prints the catalog (only the connections tagged `tag`, with one); returns the exit code.
pub fn run(
    catalog: &Catalog,
    json: bool,
    tag: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let shown: Vec<&Connection> = catalog
        .connections
        .iter()
        .filter(|c| tag.is_none_or(|t| c.has_tag(t)))
        .collect();
    let tagged = shown.iter().any(|c| !c.tags.is_empty());
    if json {
        let list: Vec<ConnectionJson> = shown.iter().map(|c| to_json(c)).collect();
        let _ = serde_json::to_writer_pretty(&mut *out, &list);
        let _ = writeln!(out);
    } else if let (Some(t), true) = (tag, shown.is_empty()) {
        let _ = writeln!(out, "No connection is tagged '{t}'.");
    } else if catalog.connections.is_empty() {
        let _ = writeln!(out, "No connections found. warren looked in:");
        for f in &catalog.files {
            let state = f.state("read, no connections");
            let _ = writeln!(
                out,
                "  {}  ({})",
                escape(&f.path.display().to_string()),
                escape(&state)
            );
        }
        let _ = writeln!(
            out,
            "Add a Host with a LocalForward to ~/.ssh/config, or an entry to epoch.toml\n(see assets/epoch.example.toml), then run `warren list` again."
        );
    } else {
        let rows: Vec<[String; 6]> = shown
            .iter()
            .map(|c| {
                let forwards = if c.forwards.is_empty() {
                    c.target().map(|t| format!("-> {t}")).unwrap_or_default()
                } else {
                    c.forwards
                        .iter()
                        .map(|f| forward_text(&f.value))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let via = match c.source {
                    SourceKind::Ssh => &c.hops[..c.hops.len().saturating_sub(1)],
                    SourceKind::Epoch => &c.hops[..],
                };
                let via = via
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" -> ");
                [
                    c.display_name.clone(),
                    format!("{} {}", c.source.prefix(), c.origin.short()),
                    c.kind().to_string(),
                    forwards,
                    if via.is_empty() { "-".into() } else { via },
                    c.tags
                        .iter()
                        .map(|t| t.value.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        if tagged {
            print_table(
                out,
                &["NAME", "SOURCE", "KIND", "LOCAL -> TARGET", "VIA", "TAGS"],
                &rows,
            );
        } else {
            // No tags anywhere: no empty column.
            let rows: Vec<[String; 5]> = rows
                .into_iter()
                .map(|[a, b, c, d, e, _]| [a, b, c, d, e])
                .collect();
            print_table(
                out,
                &["NAME", "SOURCE", "KIND", "LOCAL -> TARGET", "VIA"],
                &rows,
            );
        }
    }
    super::report_problems(catalog, err);
    if catalog.file_failed() {
        exit::BAD_CONFIG
    } else {
        exit::OK
    }
}

/// A table with aligned columns. Cells come from config files and peers: their control
/// characters are escaped ([`crate::text::escape`]).
pub fn print_table<const N: usize>(out: &mut dyn Write, header: &[&str; N], rows: &[[String; N]]) {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| r.clone().map(|c| crate::text::escape(&c).into_owned()))
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}
