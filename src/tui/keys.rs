//! The one key table: every command of the list with its default keys and what it does. The
//! help screen, the status line hints and the README's key table are all made from it, and the
//! settings file may bind other keys to a command (`[keys] diagnose = "x"`), as gitui and k9s
//! allow. Keys of dialogs and of the filter and the wizard (Enter, Esc, Tab, y/o/n) are fixed:
//! a question's answers must never move.

use std::collections::HashMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::{Origin, Problem, Sourced};

/// What a key does in the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Toggle,
    Diagnose,
    Filter,
    History,
    Copy,
    Connect,
    All,
    Extend,
    Reload,
    Reconnect,
    Sort,
    Group,
    Details,
    Setup,
    Demo,
    Help,
    Quit,
}

/// One row of the key table.
pub struct KeyDef {
    pub command: Command,
    /// Its name in the settings file's `[keys]` table.
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub help: &'static str,
    /// The word in the status line's hints ("" = not hinted).
    pub hint: &'static str,
}

const fn def(
    command: Command,
    name: &'static str,
    keys: &'static [&'static str],
    help: &'static str,
    hint: &'static str,
) -> KeyDef {
    KeyDef {
        command,
        name,
        keys,
        help,
        hint,
    }
}

/// The list's commands, in the order help shows them (and the status line hints them).
pub const KEYS: &[KeyDef] = &[
    def(Command::Up, "up", &["Up", "k"], "move up", ""),
    def(Command::Down, "down", &["Down", "j"], "move down", ""),
    def(Command::PageUp, "page_up", &["PageUp"], "a page up", ""),
    def(
        Command::PageDown,
        "page_down",
        &["PageDown"],
        "a page down",
        "",
    ),
    def(Command::Top, "top", &["Home"], "the first connection", ""),
    def(
        Command::Bottom,
        "bottom",
        &["End"],
        "the last connection",
        "",
    ),
    def(
        Command::Toggle,
        "toggle",
        &["Enter", "Space"],
        "open / close the selected tunnel",
        "open/close",
    ),
    def(
        Command::Diagnose,
        "diagnose",
        &["d"],
        "diagnose the selection: the walk of warren doctor, step by step",
        "diagnose",
    ),
    def(
        Command::Filter,
        "filter",
        &["/"],
        "filter as you type (fuzzy: name, host, target; @tag: by tag); Esc clears, Enter keeps",
        "filter",
    ),
    def(
        Command::Sort,
        "sort",
        &["S"],
        "sort by name, state, source, traffic (cycles)",
        "sort",
    ),
    def(
        Command::Group,
        "group",
        &["g"],
        "group by source, by tag, or not (cycles)",
        "group",
    ),
    def(
        Command::History,
        "history",
        &["l"],
        "the config's errors, then the selection's timeline and full log (↑↓ PgUp PgDn Home End scroll)",
        "log",
    ),
    def(
        Command::Details,
        "details",
        &["i"],
        "show / hide the details pane",
        "details",
    ),
    def(
        Command::Copy,
        "copy",
        &["c"],
        "copy the connection: url, dsn, jdbc, env or psql (OSC 52)",
        "copy",
    ),
    def(
        Command::Connect,
        "connect",
        &["x"],
        "run the database client on the selection (as warren connect), back on exit",
        "connect",
    ),
    def(
        Command::All,
        "all",
        &["a"],
        "open / close every tunnel in the (filtered) list",
        "all",
    ),
    def(
        Command::Extend,
        "extend",
        &["+"],
        "push the selection's time limit back by its max_duration (as warren extend)",
        "",
    ),
    def(
        Command::Reload,
        "reload",
        &["r"],
        "read the config files again",
        "reload",
    ),
    def(
        Command::Reconnect,
        "reconnect",
        &["R"],
        "reconnect every open tunnel now; on one that needs you, ask it again",
        "",
    ),
    def(
        Command::Setup,
        "setup",
        &["s"],
        "set up a new connection: a form, as warren setup",
        "setup",
    ),
    def(
        Command::Demo,
        "demo",
        &["D"],
        "start the demo (with no connections): bastions and a database on loopback",
        "",
    ),
    def(Command::Help, "help", &["?"], "this help", "help"),
    def(
        Command::Quit,
        "quit",
        &["q"],
        "quit; asks first when tunnels are open",
        "quit",
    ),
];

/// Keys that cannot be rebound, shown after the table.
pub const FIXED: &[(&str, &str)] = &[
    ("Esc", "clear the filter; close a screen or the wizard"),
    ("Ctrl-C", "quit (asks first when tunnels are open)"),
    ("mouse", "click selects, the wheel scrolls"),
    ("y o n", "in a host key question: yes and save, once, no"),
    (
        "Tab Shift-Tab",
        "in the setup form: next and previous field; ← → choose",
    ),
];

/// A key as the settings file writes it: `d`, `S`, `Enter`, `ctrl-r`, `alt-x`, `F5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    /// Only Ctrl and Alt: Shift is in the character itself (`S`).
    pub mods: KeyModifiers,
}

const NAMED: &[(&str, KeyCode)] = &[
    ("Enter", KeyCode::Enter),
    ("Space", KeyCode::Char(' ')),
    ("Esc", KeyCode::Esc),
    ("Tab", KeyCode::Tab),
    ("BackTab", KeyCode::BackTab),
    ("Backspace", KeyCode::Backspace),
    ("Delete", KeyCode::Delete),
    ("Insert", KeyCode::Insert),
    ("Up", KeyCode::Up),
    ("Down", KeyCode::Down),
    ("Left", KeyCode::Left),
    ("Right", KeyCode::Right),
    ("PageUp", KeyCode::PageUp),
    ("PageDown", KeyCode::PageDown),
    ("Home", KeyCode::Home),
    ("End", KeyCode::End),
];

impl Key {
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => KeyCode::Char(c),
            _ => {
                if let Some((_, code)) = NAMED.iter().find(|(n, _)| n.eq_ignore_ascii_case(rest)) {
                    *code
                } else if let Some(n) = rest
                    .strip_prefix(['F', 'f'])
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=12).contains(n))
                {
                    KeyCode::F(n)
                } else {
                    return Err(format!(
                        "'{s}' is not a key: write one character (d, S, /), a name (Enter, Space, Esc, Tab, Up, PageDown, Home, F5...) or ctrl-/alt- and a key"
                    ));
                }
            }
        };
        Ok(Key { code, mods })
    }

    /// The key a terminal event is, in the table's terms.
    pub fn of(e: &KeyEvent) -> Key {
        Key {
            code: e.code,
            mods: e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            code => match NAMED.iter().find(|(_, k)| *k == code) {
                Some((n, _)) => f.write_str(n),
                None => write!(f, "{code:?}"),
            },
        }
    }
}

/// Which key runs which command: the defaults, with the settings' bindings over them.
#[derive(Clone, Debug)]
pub struct Keymap {
    by_key: HashMap<Key, Command>,
    /// Each command's keys, in table order.
    bindings: Vec<(Command, Vec<Key>)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&[]).0
    }
}

impl Keymap {
    /// The defaults with `overrides` (a command's name and its new keys, from the settings)
    /// applied. A bad name or key, or a key two commands want, is a problem naming the line;
    /// that binding is left out and the rest apply.
    pub fn new(overrides: &[(Sourced<String>, Vec<Sourced<String>>)]) -> (Keymap, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut keys: Vec<(Command, Vec<(Key, Origin)>)> = KEYS
            .iter()
            .map(|d| {
                let parsed = d
                    .keys
                    .iter()
                    .filter_map(|k| Key::parse(k).ok())
                    .map(|k| (k, Origin::Default))
                    .collect();
                (d.command, parsed)
            })
            .collect();
        for (name, list) in overrides {
            let Some(i) = KEYS.iter().position(|d| d.name == name.value) else {
                let names: Vec<&str> = KEYS.iter().map(|d| d.name).collect();
                let hint = crate::config::epoch::closest(&name.value, &names)
                    .map(|n| format!("did you mean '{n}'? "))
                    .unwrap_or_default();
                problems.push(
                    Problem::error(
                        name.origin.clone(),
                        format!("keys.{}: there is no such command", name.value),
                    )
                    .with_fix(format!("{hint}the commands: {}", names.join(", "))),
                );
                continue;
            };
            let mut parsed = Vec::new();
            for k in list {
                match Key::parse(&k.value) {
                    Ok(key) => parsed.push((key, k.origin.clone())),
                    Err(e) => problems.push(
                        Problem::error(k.origin.clone(), format!("keys.{}: {e}", name.value))
                            .with_fix(format!("e.g. {} = [\"x\", \"ctrl-x\"]", name.value)),
                    ),
                }
            }
            keys[i].1 = parsed;
        }
        // A key may run one command only: the one the file bound it to wins over a default;
        // two bindings in the file for one key are an error on the second.
        let mut by_key: HashMap<Key, (Command, Origin)> = HashMap::new();
        for pass_defaults in [false, true] {
            for (command, list) in &keys {
                for (key, origin) in list {
                    if (origin == &Origin::Default) != pass_defaults {
                        continue;
                    }
                    if let Some((other, other_origin)) = by_key.get(key) {
                        if !pass_defaults {
                            problems.push(
                                Problem::error(
                                    origin.clone(),
                                    format!(
                                        "keys.{}: {key} is already bound to {} ({other_origin})",
                                        name_of(*command),
                                        name_of(*other)
                                    ),
                                )
                                .with_fix("choose another key for one of them"),
                            );
                        }
                        continue;
                    }
                    by_key.insert(*key, (*command, origin.clone()));
                }
            }
        }
        let bindings = keys
            .iter()
            .map(|(command, list)| {
                let own = list
                    .iter()
                    .map(|(k, _)| *k)
                    .filter(|k| by_key.get(k).map(|(c, _)| c) == Some(command))
                    .collect();
                (*command, own)
            })
            .collect();
        let keymap = Keymap {
            by_key: by_key.into_iter().map(|(k, (c, _))| (k, c)).collect(),
            bindings,
        };
        (keymap, problems)
    }

    pub fn command(&self, e: &KeyEvent) -> Option<Command> {
        self.by_key.get(&Key::of(e)).copied()
    }

    /// The command's keys as help shows them: `Enter, Space`.
    pub fn keys_of(&self, command: Command) -> String {
        self.bindings
            .iter()
            .find(|(c, _)| *c == command)
            .map(|(_, keys)| {
                keys.iter()
                    .map(Key::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    /// The first key of a command (for hints), or "-" when it has none.
    pub fn first_key(&self, command: Command) -> String {
        self.bindings
            .iter()
            .find(|(c, _)| *c == command)
            .and_then(|(_, keys)| keys.first())
            .map(Key::to_string)
            .unwrap_or_else(|| "-".into())
    }

    /// Help's rows: (keys, what they do), the table then the fixed keys.
    pub fn help_rows(&self) -> Vec<(String, &'static str)> {
        let mut rows: Vec<(String, &'static str)> = KEYS
            .iter()
            .map(|d| (self.keys_of(d.command), d.help))
            .collect();
        rows.extend(FIXED.iter().map(|(k, h)| (k.to_string(), *h)));
        rows
    }

    /// The status line's hints: `key word` for each hinted command, in table order.
    pub fn hints(&self) -> Vec<String> {
        KEYS.iter()
            .filter(|d| !d.hint.is_empty())
            .map(|d| format!("{} {}", self.first_key(d.command), d.hint))
            .collect()
    }

    /// The key table as Markdown (the README's copy is checked against it).
    pub fn markdown(&self) -> String {
        let mut out = String::from("| key | does |\n|---|---|\n");
        for (k, h) in self.help_rows() {
            out.push_str(&format!("| {k} | {h} |\n"));
        }
        out
    }
}

fn name_of(c: Command) -> &'static str {
    KEYS.iter()
        .find(|d| d.command == c)
        .map(|d| d.name)
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn at(line: usize, s: &str) -> Sourced<String> {
        let p: Arc<Path> = Arc::from(Path::new("/h/.config/warren/config.toml"));
        Sourced::new(s.to_string(), Origin::file(&p, line))
    }

    #[test]
    fn keys_parse_and_print() {
        for (s, shown) in [
            ("d", "d"),
            ("S", "S"),
            ("enter", "Enter"),
            ("ctrl-r", "Ctrl-r"),
            ("F5", "F5"),
            ("Space", "Space"),
            ("PageDown", "PageDown"),
        ] {
            assert_eq!(Key::parse(s).map(|k| k.to_string()), Ok(shown.into()));
        }
        assert!(Key::parse("ctrl-").is_err());
        assert!(Key::parse("Enterr").is_err());
    }

    #[test]
    fn every_default_key_parses_and_none_is_bound_twice() {
        let (map, problems) = Keymap::new(&[]);
        assert!(problems.is_empty(), "{problems:?}");
        let total: usize = KEYS.iter().map(|d| d.keys.len()).sum();
        assert_eq!(map.by_key.len(), total);
    }

    #[test]
    fn a_remapped_key_moves_and_conflicts_name_the_line() {
        let (map, problems) = Keymap::new(&[(at(3, "diagnose"), vec![at(3, "x")])]);
        assert!(problems.is_empty());
        let x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE);
        let d = KeyEvent::new(KeyCode::Char('d'), KeyModifiers::NONE);
        assert_eq!(map.command(&x), Some(Command::Diagnose));
        assert_eq!(map.command(&d), None);
        // Taking a default key from another command: the file wins.
        let (map, problems) = Keymap::new(&[(at(4, "diagnose"), vec![at(4, "j")])]);
        assert!(problems.is_empty());
        let j = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(map.command(&j), Some(Command::Diagnose));
        assert_eq!(map.keys_of(Command::Down), "↓");
        // Two lines of the file for one key: an error on the second.
        let (_, problems) = Keymap::new(&[
            (at(4, "diagnose"), vec![at(4, "x")]),
            (at(5, "copy"), vec![at(5, "x")]),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].to_string().contains("config.toml:5"));
        let (_, problems) = Keymap::new(&[(at(6, "diagnos"), vec![at(6, "x")])]);
        assert!(problems[0].to_string().contains("did you mean 'diagnose'"));
    }
}
