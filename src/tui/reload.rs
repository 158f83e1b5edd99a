//! Taking a new load of the config files into the list, as a live reload does (the files
//! changed on disk) or `r` asks: connections added, removed and changed appear without a key
//! press; an open tunnel whose settings changed is marked ("config changed: Enter twice to
//! reopen": Enter closes it, Enter opens it with the new settings); an open tunnel whose
//! entry went away stays listed until it is closed. A load with errors is taken as `warren
//! list` takes it: the entries that load are listed, an entry with an error (a TOML syntax
//! error in its section, a bad value) is listed as broken with its error, and the load's
//! errors stay in the status line until the files are fixed (`l` shows them whole). Keeping
//! the last good list instead would show entries that are no longer in the file, and hide
//! the ones that are.

use std::collections::HashMap;

use super::app::App;
use crate::config::epoch::Broken;
use crate::config::load::FileStatus;
use crate::config::{Catalog, Connection, Policy, Severity, SourceKind};

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
    /// Entries that did not load.
    pub broken: Vec<Broken>,
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

/// The row a broken entry has in the list: a connection with its name and nothing to open.
/// [`App::broken`] says why; the commands refuse it with that.
pub fn placeholder(b: &Broken) -> Connection {
    Connection {
        name: b.name.clone(),
        display_name: b.display_name.clone(),
        source: SourceKind::Epoch,
        origin: b.error.origin.clone(),
        hops: Vec::new(),
        forwards: Vec::new(),
        database: None,
        policy: Policy::defaults(),
        tags: Vec::new(),
        problems: vec![b.error.clone()],
        other: Vec::new(),
        untrusted: None,
    }
}

/// What the status line says while a load has errors: where the whole text is, and the first.
pub fn summary(errors: &[LoadError], history_key: &str) -> Option<String> {
    let first = errors.first()?;
    Some(match errors.len() {
        1 => format!(
            "config error ({history_key} shows it whole): {}",
            first.text
        ),
        n => format!(
            "{n} config errors ({history_key} shows them whole): {}",
            first.text
        ),
    })
}

/// Takes a load. `live`: it came from a change on disk (what changed is said in the status
/// line).
pub fn apply(app: &mut App, loaded: Loaded, live: bool) {
    let Loaded {
        connections,
        broken,
        errors,
        looked_in,
    } = loaded;
    let new_error = errors
        .iter()
        .any(|e| !app.load_errors.iter().any(|o| o.key == e.key));
    let newly_broken: Vec<String> = broken
        .iter()
        .filter(|b| !app.broken.contains_key(&b.display_name))
        .map(|b| b.display_name.clone())
        .collect();
    let mut connections = connections;
    for b in &broken {
        if !connections.iter().any(|c| c.display_name == b.display_name) {
            connections.push(placeholder(b));
        }
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
    connections.extend(kept);
    app.changed.extend(changed_open.iter().cloned());
    app.changed
        .retain(|n| connections.iter().any(|c| &c.display_name == n));
    app.broken = broken
        .into_iter()
        .map(|b| (b.display_name.clone(), b))
        .collect();
    app.set_connections(connections);
    app.config_error = summary(
        &errors,
        &app.keymap.first_key(super::keys::Command::History),
    );
    app.load_errors = errors;
    app.looked_in = looked_in;
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
    if !newly_broken.is_empty() {
        parts.push(format!("broken: {}", newly_broken.join(", ")));
    }
    if new_error {
        // The new error is what the status line says (it holds the broken entries' too).
        app.message = None;
        return;
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

/// Why a command may not run on connection `name`: its entry did not load (`None`: it did).
pub fn refusal(app: &App, name: &str) -> Option<String> {
    app.broken.get(name).map(|b| {
        format!(
            "{name} did not load, fix it first: {}: {} (the details have the fix)",
            b.error.origin.short(),
            b.error.message
        )
    })
}
