//! warren's own settings: `~/.config/warren/config.toml` (`$XDG_CONFIG_HOME` respected): the
//! theme, notifications, defaults and key bindings. Every value keeps the line it came from,
//! and a bad one is a problem naming the file, the line and the fix (as in epoch.toml: the
//! located reader is [`crate::config::epoch::fields`]); the default stands in for it and the
//! rest of the file still applies. A missing file is not an error: every setting has a default.
//!
//! ```toml
//! theme = "dark"                 # dark | light | mono (NO_COLOR always means mono)
//!
//! [defaults]
//! health_interval = "30s"        # for entries that set none (0: no health checks)
//! sort = "name"                  # name | state | source | traffic
//! group = "none"                 # none | source | tag
//!
//! [notifications]
//! on = ["failed", "dropped", "expired", "health-failing", "needs-you"]
//!                                # also: up, reconnected, health-ok (see crate::notify)
//! bell = true                    # ring the terminal's bell
//! desktop = false                # a desktop notification through the terminal (OSC 777/9)
//! command = "notify-send warren \"$WARREN_MESSAGE\""
//!                                # run by the daemon for each of these, for its tunnels
//!
//! [metrics]                      # absent: the daemon serves no metrics
//! listen = "127.0.0.1:9750"      # Prometheus text at http://127.0.0.1:9750/metrics
//!                                # (an address that is not loopback is served, with a warning)
//!
//! [keys]                         # command = key or [keys]; see `?` in the TUI
//! diagnose = "x"
//! toggle = ["Enter", "o"]
//! ```
//!
//! This module reads the file only; it imports nothing of the TUI (the TUI checks the key
//! bindings against its key table, with the lines kept here).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml_edit::{Document, Item, Value};

use crate::config::epoch::fields::{Findings, Source, Table};
use crate::config::model::Seconds;
use crate::config::{Connection, Context, Origin, Problem, Sourced};
use crate::notify::{KINDS, Kind};

/// The colours (see the TUI's theme).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThemeName {
    #[default]
    Dark,
    Light,
    Mono,
}

/// The list's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Name,
    State,
    Source,
    Traffic,
}

/// The list's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupBy {
    #[default]
    None,
    Source,
    /// A section per tag (a connection with two tags is in both), then the untagged.
    Tag,
}

pub const THEMES: [(&str, ThemeName); 3] = [
    ("dark", ThemeName::Dark),
    ("light", ThemeName::Light),
    ("mono", ThemeName::Mono),
];
pub const SORTS: [(&str, SortBy); 4] = [
    ("name", SortBy::Name),
    ("state", SortBy::State),
    ("source", SortBy::Source),
    ("traffic", SortBy::Traffic),
];
pub const GROUPS: [(&str, GroupBy); 3] = [
    ("none", GroupBy::None),
    ("source", GroupBy::Source),
    ("tag", GroupBy::Tag),
];
/// The name of a value in one of the tables above (for messages and the title bar).
pub fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table
        .iter()
        .find(|(_, x)| *x == v)
        .map(|(n, _)| *n)
        .unwrap_or("?")
}

#[derive(Clone, Debug)]
pub struct Notifications {
    /// The kinds of news worth telling (`crate::notify`'s names).
    pub on: Sourced<Vec<Kind>>,
    pub bell: Sourced<bool>,
    pub desktop: Sourced<bool>,
    /// Run (`sh -c`) by the daemon for each notice of a kind in `on` (see [`crate::notify`]).
    pub command: Option<Sourced<String>>,
}

/// The effective settings, each with where it came from.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the file is (or would be).
    pub path: PathBuf,
    pub theme: Sourced<ThemeName>,
    /// How often the database behind an open tunnel is checked, for entries that set no
    /// `health_interval` of their own (0: never).
    pub health_interval: Sourced<Seconds>,
    /// Whether entries that say nothing of it open their session on demand.
    pub on_demand: Sourced<bool>,
    pub sort: Sourced<SortBy>,
    pub group: Sourced<GroupBy>,
    pub notifications: Notifications,
    /// `[metrics] listen`: where the daemon serves Prometheus metrics (none when absent).
    pub metrics_listen: Option<Sourced<SocketAddr>>,
    /// `[keys]`: a command's name and its keys, as written (the TUI checks them).
    pub keys: Vec<(Sourced<String>, Vec<Sourced<String>>)>,
    pub problems: Vec<Problem>,
}

impl Settings {
    pub fn defaults(path: PathBuf) -> Self {
        Settings {
            path,
            theme: Sourced::default_value(ThemeName::Dark),
            health_interval: Sourced::default_value(Seconds::from_secs(30)),
            on_demand: Sourced::default_value(false),
            sort: Sourced::default_value(SortBy::Name),
            group: Sourced::default_value(GroupBy::None),
            notifications: Notifications {
                on: Sourced::default_value(vec![
                    Kind::Failed,
                    Kind::Dropped,
                    Kind::Expired,
                    Kind::HealthFailing,
                    Kind::NeedsYou,
                ]),
                bell: Sourced::default_value(true),
                desktop: Sourced::default_value(false),
                command: None,
            },
            metrics_listen: None,
            keys: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Gives the connections that set no `health_interval` or `on_demand` of their own the
    /// user's default (with this file's line as its source).
    pub fn apply(&self, connections: &mut [Connection]) {
        for c in connections {
            if c.policy.health_interval.is_none() {
                c.policy.health_interval = Some(self.health_interval.clone());
            }
            if c.policy.on_demand.is_none() {
                c.policy.on_demand = Some(self.on_demand.clone());
            }
        }
    }

    /// Where the settings file is: `$XDG_CONFIG_HOME/warren/config.toml`, else
    /// `~/.config/warren/config.toml`.
    pub fn path(ctx: &Context) -> PathBuf {
        ctx.var("XDG_CONFIG_HOME")
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from)
            .unwrap_or_else(|| ctx.home.join(".config"))
            .join("warren/config.toml")
    }

    /// Reads the settings file (absent: the defaults; unreadable: the defaults and a problem).
    pub fn load(ctx: &Context) -> Self {
        let path = Self::path(ctx);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text, ctx),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::defaults(path),
            Err(e) => {
                let mut s = Self::defaults(path.clone());
                s.problems.push(
                    Problem::error(
                        Origin::file(&Arc::from(path.as_path()), 1),
                        format!("cannot read the settings: {e}"),
                    )
                    .with_fix("make the file readable (chmod u+r), or remove it for the defaults"),
                );
                s
            }
        }
    }

    /// The settings in `text` (read from `path`).
    pub fn parse(path: &Path, text: &str, ctx: &Context) -> Self {
        let mut s = Self::defaults(path.to_path_buf());
        let arc: Arc<Path> = Arc::from(path);
        let doc = match Document::parse(text.to_string()) {
            Ok(d) => d,
            Err(e) => {
                let src = Source::new(Arc::clone(&arc), text, ctx);
                s.problems.push(
                    Problem::error(
                        src.origin(e.span()),
                        format!("not valid TOML: {}", e.message().trim()),
                    )
                    .with_fix("fix the line; until then every setting is its default"),
                );
                return s;
            }
        };
        let src = Source::new(arc, text, ctx);
        let root = Table {
            src: &src,
            table: doc.as_table(),
            name: "settings".into(),
            origin: src.origin(None),
        };
        let mut f = Findings::default();
        root.unknown_keys(
            &["theme", "defaults", "notifications", "metrics", "keys"],
            &mut f,
        );
        if let Some(v) = choice(&root, "theme", &THEMES, &mut f) {
            s.theme = v;
        }
        if let Some(t) = table(&root, "defaults", &mut f) {
            t.unknown_keys(&["health_interval", "on_demand", "sort", "group"], &mut f);
            if let Some(v) = t.boolean("on_demand", &mut f) {
                s.on_demand = v;
            }
            match t.seconds("health_interval", &mut f) {
                Some(v) if !v.value.0.is_zero() && v.value.0.as_secs_f64() < 1.0 => f.push(
                    Problem::error(
                        v.origin,
                        "defaults.health_interval: under a second would flood the database",
                    )
                    .with_fix("write health_interval = \"30s\" (1 second or more; 0 turns the checks off)"),
                ),
                Some(v) => s.health_interval = v,
                None => {}
            }
            if let Some(v) = choice(&t, "sort", &SORTS, &mut f) {
                s.sort = v;
            }
            if let Some(v) = choice(&t, "group", &GROUPS, &mut f) {
                s.group = v;
            }
        }
        if let Some(t) = table(&root, "notifications", &mut f) {
            t.unknown_keys(&["on", "bell", "desktop", "command"], &mut f);
            s.notifications.command = t
                .string("command", &mut f)
                .filter(|c| !c.value.trim().is_empty());
            if let Some(v) = t.boolean("bell", &mut f) {
                s.notifications.bell = v;
            }
            if let Some(v) = t.boolean("desktop", &mut f) {
                s.notifications.desktop = v;
            }
            if let Some(v) = t.list("on", &mut f) {
                let mut on = Vec::new();
                for word in v.value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    match KINDS.iter().find(|(n, _)| *n == word) {
                        Some((_, e)) => on.push(*e),
                        None => f.push(bad_choice(
                            &v.origin,
                            "notifications.on",
                            word,
                            &KINDS,
                            "on = [\"failed\", \"dropped\"]",
                        )),
                    }
                }
                s.notifications.on = Sourced::new(on, v.origin);
            }
        }
        if let Some(t) = table(&root, "metrics", &mut f) {
            t.unknown_keys(&["listen"], &mut f);
            s.metrics_listen = t.string("listen", &mut f).and_then(|v| {
                match v.value.trim().parse::<SocketAddr>() {
                    Ok(addr) => Some(Sourced::new(addr, v.origin)),
                    Err(_) => {
                        f.push(
                            Problem::error(
                                v.origin,
                                format!(
                                    "metrics.listen: '{}' is not an IP address and port",
                                    crate::text::escape(&v.value)
                                ),
                            )
                            .with_fix("write listen = \"127.0.0.1:9750\" (an IP address, not a host name, and a port; remove [metrics] for no metrics)"),
                        );
                        None
                    }
                }
            });
        }
        if let Some(t) = table(&root, "keys", &mut f) {
            s.keys = keys(&t, &mut f);
        }
        s.problems = f.problems;
        s
    }
}

fn table<'s, 'a>(root: &Table<'s, 'a>, key: &str, f: &mut Findings) -> Option<Table<'s, 'a>> {
    match root.sub(key)? {
        Ok(mut t) => {
            t.name = key.to_string();
            Some(t)
        }
        Err(p) => {
            f.push(p.with_fix(format!("write it as a table: [{key}]")));
            None
        }
    }
}

/// A string that must be one of `choices`.
fn choice<T: Copy>(
    t: &Table,
    key: &str,
    choices: &[(&'static str, T)],
    f: &mut Findings,
) -> Option<Sourced<T>> {
    let v = t.string(key, f)?;
    match choices.iter().find(|(n, _)| *n == v.value) {
        Some((_, c)) => Some(Sourced::new(*c, v.origin)),
        None => {
            let name = if t.name == "settings" {
                key.to_string()
            } else {
                format!("{}.{key}", t.name)
            };
            let example = format!("{key} = \"{}\"", choices[0].0);
            f.push(bad_choice(&v.origin, &name, &v.value, choices, &example));
            None
        }
    }
}

fn bad_choice<T>(
    origin: &Origin,
    name: &str,
    found: &str,
    choices: &[(&'static str, T)],
    example: &str,
) -> Problem {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let mean = crate::config::epoch::closest(found, &names)
        .map(|n| format!("did you mean '{n}'? "))
        .unwrap_or_default();
    Problem::error(
        origin.clone(),
        format!(
            "{name}: '{found}' is not one of {}",
            names.join(", ").replace(", ", " | ")
        ),
    )
    .with_fix(format!("{mean}e.g. {example}"))
}

/// `[keys]`: `command = "key"` or `command = ["key", "key"]`.
fn keys(t: &Table, f: &mut Findings) -> Vec<(Sourced<String>, Vec<Sourced<String>>)> {
    let mut out = Vec::new();
    for (name, _) in t.table.iter() {
        let Some((item, origin)) = t.item(name) else {
            continue;
        };
        let at = |s: &str| Sourced::new(s.to_string(), origin.clone());
        let list = match item {
            Item::Value(Value::String(s)) => vec![at(s.value())],
            Item::Value(Value::Array(a)) if a.iter().all(|v| v.as_str().is_some()) => {
                a.iter().filter_map(|v| v.as_str()).map(at).collect()
            }
            _ => {
                f.push(
                    Problem::error(
                        origin.clone(),
                        format!("keys.{name}: expected a key or a list of keys"),
                    )
                    .with_fix(format!(
                        "write {name} = \"x\" or {name} = [\"x\", \"ctrl-x\"]"
                    )),
                );
                continue;
            }
        };
        out.push((Sourced::new(name.to_string(), origin), list));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Settings {
        let ctx = Context::new(PathBuf::from("/h"), "me", Default::default());
        Settings::parse(Path::new("/h/.config/warren/config.toml"), text, &ctx)
    }

    #[test]
    fn the_defaults_when_nothing_is_set() {
        let s = parse("");
        assert!(s.problems.is_empty());
        assert_eq!(s.theme.value, ThemeName::Dark);
        assert_eq!(s.theme.origin, Origin::Default);
        assert_eq!(s.health_interval.value, Seconds::from_secs(30));
    }

    #[test]
    fn values_keep_their_line() {
        let s = parse(
            "theme = \"light\"\n\n[defaults]\nhealth_interval = \"2m\"\nsort = \"state\"\ngroup = \"source\"\n\n[notifications]\non = [\"failed\"]\nbell = false\n\n[keys]\ndiagnose = \"x\"\ntoggle = [\"Enter\", \"o\"]\n",
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.theme.value, ThemeName::Light);
        assert_eq!(s.theme.origin.short(), "config.toml:1");
        assert_eq!(s.health_interval.value, Seconds::from_secs(120));
        assert_eq!(s.health_interval.origin.short(), "config.toml:4");
        assert_eq!(
            (s.sort.value, s.group.value),
            (SortBy::State, GroupBy::Source)
        );
        assert_eq!(s.notifications.on.value, [Kind::Failed]);
        assert!(!s.notifications.bell.value);
        assert_eq!(s.keys.len(), 2);
        assert_eq!(s.keys[1].1.len(), 2);
        assert_eq!(s.keys[1].0.origin.short(), "config.toml:14");
    }

    #[test]
    fn bad_values_name_the_file_the_line_and_the_fix_and_the_rest_applies() {
        let s = parse(
            "theme = \"drak\"\n[defaults]\nhealth_interval = \"soon\"\nsort = \"name\"\n[notifications]\nbell = \"loud\"\non = [\"failed\", \"exploded\"]\n[keys]\ncopy = 3\n",
        );
        let text: Vec<String> = s.problems.iter().map(|p| p.to_string()).collect();
        let all = text.join("\n");
        assert!(
            all.contains(
                "/h/.config/warren/config.toml:1: theme: 'drak' is not one of dark | light | mono"
            ) && all.contains("did you mean 'dark'?"),
            "{all}"
        );
        assert!(
            all.contains("config.toml:3: defaults.health_interval"),
            "{all}"
        );
        assert!(all.contains("config.toml:6: notifications.bell"), "{all}");
        assert!(
            all.contains("config.toml:7: notifications.on: 'exploded'"),
            "{all}"
        );
        assert!(all.contains("config.toml:9: keys.copy"), "{all}");
        assert_eq!(s.theme.value, ThemeName::Dark, "the default stands in");
        assert_eq!(s.sort.value, SortBy::Name);
        assert_eq!(
            s.notifications.on.value,
            [Kind::Failed],
            "the good one kept"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line_and_keeps_the_defaults() {
        let s = parse("theme = \"dark\"\n[defaults\nsort = \"state\"\n");
        assert_eq!(s.problems.len(), 1);
        assert!(
            s.problems[0].to_string().contains("config.toml:2"),
            "{}",
            s.problems[0]
        );
        assert_eq!(s.sort.value, SortBy::Name);
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_written_and_a_bad_one_names_its_line() {
        assert!(parse("").metrics_listen.is_none(), "absent: no listener");
        let s = parse("theme = \"dark\"\n\n[metrics]\nlisten = \"127.0.0.1:9750\"\n");
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let l = s.metrics_listen.expect("the address");
        assert_eq!(l.value, "127.0.0.1:9750".parse().expect("addr"));
        assert_eq!(l.origin.short(), "config.toml:4");
        let v6 = parse("[metrics]\nlisten = \"[::1]:9750\"\n");
        assert!(
            v6.metrics_listen
                .is_some_and(|l| l.value.ip().is_loopback())
        );
        for bad in ["localhost:9750", "127.0.0.1", "127.0.0.1:99999", ""] {
            let s = parse(&format!("[metrics]\nlisten = \"{bad}\"\n"));
            assert!(s.metrics_listen.is_none(), "{bad}");
            let all: Vec<String> = s.problems.iter().map(|p| p.to_string()).collect();
            let all = all.join("\n");
            assert!(
                all.contains("/h/.config/warren/config.toml:2: metrics.listen:")
                    && all.contains("listen = \"127.0.0.1:9750\""),
                "{bad}: {all}"
            );
        }
        let s = parse("[metrics]\nlisten = 9750\n");
        assert!(s.metrics_listen.is_none());
        assert!(
            s.problems[0]
                .to_string()
                .contains("config.toml:2: metrics.listen"),
            "{:?}",
            s.problems
        );
    }

    #[test]
    fn an_unknown_key_is_a_warning_with_a_suggestion() {
        let s = parse("[defaults]\nhealth_intervl = 10\n");
        assert!(
            s.problems[0]
                .to_string()
                .contains("did you mean 'health_interval'"),
            "{:?}",
            s.problems
        );
    }
}
