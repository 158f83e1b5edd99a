//! Taking a new load of the config files into the list, as a live reload does (the files
//! changed on disk) or `r` asks: connections added, removed and changed appear without a key
//! press; an open tunnel whose settings changed is marked ("config changed: Enter twice to
//! reopen": Enter closes it, Enter opens it with the new settings); an open tunnel whose
//! entry went away stays listed until it is closed. A live reload that brings errors the
//! last good load did not have (a TOML syntax error, a bad ssh_config line, which ssh would
//! refuse) keeps the last good list and shows the error until the file is fixed.

use std::collections::HashMap;

use super::app::App;
use crate::config::load::FileStatus;
use crate::config::{Catalog, Connection, Severity};

/// An error of a load: what the user reads (file:line, what, the fix), and what tells it
/// apart from the errors of another load (the file and the message, not the line: a line
/// added above an old error moves it without making it new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub key: String,
    pub text: String,
}

/// A load of the config files, as the list takes it.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// With the settings' defaults applied.
    pub connections: Vec<Connection>,
    pub errors: Vec<LoadError>,
    /// Where warren looked, and what it found there (for the empty state).
    pub looked_in: Vec<String>,
}

/// A load's errors.
pub fn errors(catalog: &Catalog) -> Vec<LoadError> {
    let mut out: Vec<LoadError> = catalog
        .files
        .iter()
        .filter(|f| matches!(f.status, FileStatus::Invalid))
        .filter(|f| {
            // The TOML error itself is a problem with the file's line: prefer it.
            !catalog.problems.iter().any(|p| {
                p.severity == Severity::Error
                    && p.origin.file_line().is_some_and(|(path, _)| path == f.path)
            })
        })
        .map(|f| LoadError {
            key: format!("{}\0{}", f.path.display(), f.invalid()),
            text: format!("{}: {}", f.path.display(), f.invalid()),
        })
        .collect();
    out.extend(
        catalog
            .problems
            .iter()
            .chain(catalog.connections.iter().flat_map(|c| c.problems.iter()))
            .filter(|p| p.severity == Severity::Error)
            .map(|p| {
                let fix = p.fix.as_ref().map(|f| format!(" (fix: {f})"));
                let file = match p.origin.file_line() {
                    Some((path, _)) => path.display().to_string(),
                    None => p.origin.to_string(),
                };
                LoadError {
                    key: format!("{file}\0{}", p.message),
                    text: crate::text::escape(&format!(
                        "{}: {}{}",
                        p.origin.short(),
                        p.message,
                        fix.unwrap_or_default()
                    ))
                    .into_owned(),
                }
            }),
    );
    out.dedup();
    out
}

/// Takes a load. `live`: it came from a change on disk (new errors keep the last good
/// list, and what changed is said in the status line).
pub fn apply(app: &mut App, loaded: Loaded, live: bool) {
    let Loaded {
        connections,
        errors,
        looked_in,
    } = loaded;
    if live && let Some(new) = errors.iter().find(|e| !app.config_errors.contains(&e.key)) {
        let new = &new.text;
        let more = errors.len() - 1;
        // Newer than whatever the status line said.
        app.message = None;
        app.config_error = Some(if more > 0 {
            format!("not reloaded, the last good config stays: {new} (and {more} more)")
        } else {
            format!("not reloaded, the last good config stays: {new}")
        });
        return;
    }
    let old: HashMap<&str, &Connection> = app
        .connections
        .iter()
        .map(|c| (c.display_name.as_str(), c))
        .collect();
    let mut added = 0;
    let mut changed_open = Vec::new();
    let mut changed = 0;
    for c in &connections {
        match old.get(c.display_name.as_str()) {
            None => added += 1,
            Some(o) if o.settings_key() != c.settings_key() => {
                changed += 1;
                if app.is_open(&c.display_name) {
                    changed_open.push(c.display_name.clone());
                }
            }
            Some(_) => {}
        }
    }
    // Open tunnels whose entry is gone stay listed (as they were) until closed.
    let mut kept: Vec<Connection> = Vec::new();
    let mut removed = 0;
    for o in &app.connections {
        if !connections.iter().any(|c| c.display_name == o.display_name) {
            if app.is_open(&o.display_name) {
                kept.push(o.clone());
                changed_open.push(o.display_name.clone());
            } else {
                removed += 1;
            }
        }
    }
    app.orphans = kept.iter().map(|c| c.display_name.clone()).collect();
    let mut connections = connections;
    connections.extend(kept);
    app.changed.extend(changed_open.iter().cloned());
    app.changed
        .retain(|n| connections.iter().any(|c| &c.display_name == n));
    app.set_connections(connections);
    app.config_errors = errors.into_iter().map(|e| e.key).collect();
    app.looked_in = looked_in;
    app.config_error = None;
    if !live {
        return;
    }
    let mut parts = Vec::new();
    if added > 0 {
        parts.push(format!("{added} added"));
    }
    if removed > 0 {
        parts.push(format!("{removed} removed"));
    }
    if changed > 0 {
        parts.push(format!("{changed} changed"));
    }
    if !parts.is_empty() || !changed_open.is_empty() {
        let mut m = format!("config reloaded: {}", parts.join(", "));
        if !changed_open.is_empty() {
            m.push_str(&format!(
                "; config changed for open {}: Enter twice to reopen",
                changed_open.join(", ")
            ));
        }
        app.message = Some(m);
    }
}

/// A tunnel is no longer open: if its entry left the config while it was open, it leaves the
/// list now.
pub fn closed(app: &mut App, name: &str) {
    app.changed.remove(name);
    if app.orphans.remove(name) {
        let rest: Vec<Connection> = app
            .connections
            .iter()
            .filter(|c| c.display_name != name)
            .cloned()
            .collect();
        app.set_connections(rest);
    }
}

/// Whether an open tunnel runs with settings the config no longer has.
pub fn is_changed(app: &App, name: &str) -> bool {
    app.changed.contains(name) && app.is_open(name)
}
