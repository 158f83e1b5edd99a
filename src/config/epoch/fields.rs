//! Typed, located access to the keys of one epoch.toml table: every value comes back with its
//! line, `${VAR}` interpolated, and every wrong type as a problem that names the line and the fix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml_edit::{Item, TableLike, Value};

use crate::config::context::Context;
use crate::config::expand;
use crate::config::model::Seconds;
use crate::config::origin::{Origin, Problem, Secret, Sourced};

/// The file being read: its path, and where each line starts (to turn spans into lines).
pub struct Source<'a> {
    pub path: Arc<Path>,
    line_starts: Vec<usize>,
    pub ctx: &'a Context,
}

impl<'a> Source<'a> {
    /// `v` as a path: `~` expanded, a relative path joined to this file's directory.
    pub fn resolve(&self, v: &str) -> PathBuf {
        let p = PathBuf::from(expand::tilde(v, &self.ctx.home));
        if p.is_absolute() {
            return p;
        }
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        dir.join(p)
    }

    pub fn new(path: Arc<Path>, text: &str, ctx: &'a Context) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path,
            line_starts,
            ctx,
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    pub fn origin(&self, span: Option<std::ops::Range<usize>>) -> Origin {
        Origin::file(&self.path, span.map(|s| self.line_of(s.start)).unwrap_or(1))
    }
}

/// One table of the file, with its dotted name for messages.
pub struct Table<'s, 'a> {
    pub src: &'s Source<'a>,
    pub table: &'s dyn TableLike,
    pub name: String,
    pub origin: Origin,
}

/// Problems found in one entry: any error makes the entry unusable.
#[derive(Default)]
pub struct Findings {
    pub problems: Vec<Problem>,
}

impl Findings {
    pub fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity == crate::config::origin::Severity::Error)
    }
    pub fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

fn item_type(i: &Item) -> &'static str {
    match i {
        Item::Value(v) => type_name(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::None => "nothing",
    }
}

impl<'s, 'a> Table<'s, 'a> {
    /// The item under `key` and the line it is on.
    pub fn item(&self, key: &str) -> Option<(&'s Item, Origin)> {
        let (k, item) = self.table.get_key_value(key)?;
        let span = k.span().or_else(|| item.span());
        Some((item, self.src.origin(span)))
    }

    pub fn sub(&self, key: &str) -> Option<Result<Table<'s, 'a>, Problem>> {
        let (item, origin) = self.item(key)?;
        Some(match item.as_table_like() {
            Some(t) => Ok(Table {
                src: self.src,
                table: t,
                name: format!("{}.{key}", self.name),
                origin,
            }),
            None => Err(self.wrong(key, &origin, item_type(item), "a table")),
        })
    }

    fn wrong(&self, key: &str, origin: &Origin, found: &str, expected: &str) -> Problem {
        Problem::error(
            origin.clone(),
            format!("{}.{key}: expected {expected}, found {found}", self.name),
        )
    }

    /// A string, with `${VAR}` taken from the environment.
    pub fn string(&self, key: &str, f: &mut Findings) -> Option<Sourced<String>> {
        let (item, origin) = self.item(key)?;
        match item.as_value() {
            Some(Value::String(s)) => self.interpolate(key, s.value(), origin, f),
            _ => {
                f.push(
                    self.wrong(key, &origin, item_type(item), "a string")
                        .with_fix(format!("quote the value: {key} = \"...\"")),
                );
                None
            }
        }
    }

    fn interpolate(
        &self,
        key: &str,
        s: &str,
        origin: Origin,
        f: &mut Findings,
    ) -> Option<Sourced<String>> {
        match expand::dollar(s, |v| self.src.ctx.var(v).map(str::to_string)) {
            Ok(v) => Some(Sourced::new(v, origin)),
            Err(e) => {
                let fix = match &e {
                    expand::ExpandError::Unset(v) => {
                        format!("export {v}=... before running warren, or write the value")
                    }
                    _ => "write ${NAME} with a letters, digits and _ name".to_string(),
                };
                f.push(Problem::error(origin, format!("{}.{key}: {e}", self.name)).with_fix(fix));
                None
            }
        }
    }

    /// A comma-separated list: a string (`"a,b"`, `"+a"`) or an array of strings, joined
    /// with commas.
    pub fn list(&self, key: &str, f: &mut Findings) -> Option<Sourced<String>> {
        let (item, origin) = self.item(key)?;
        match item.as_value() {
            Some(Value::Array(a)) => {
                let mut parts = Vec::new();
                for v in a.iter() {
                    match v.as_str() {
                        Some(s) => parts.push(s.to_string()),
                        None => {
                            f.push(
                                self.wrong(key, &origin, "an array with a non-string", "strings")
                                    .with_fix(format!("write {key} = [\"name\", \"name\"]")),
                            );
                            return None;
                        }
                    }
                }
                self.interpolate(key, &parts.join(","), origin, f)
            }
            _ => self.string(key, f),
        }
    }

    /// A path: a string with `${VAR}` and a leading `~` expanded.
    /// A path: `~` expanded, and a relative one taken from the file's own directory (so that
    /// a daemon, which works in `/`, reads the same file as the client that found it).
    pub fn path(&self, key: &str, f: &mut Findings) -> Option<Sourced<PathBuf>> {
        self.string(key, f).map(|s| s.map(|v| self.src.resolve(&v)))
    }

    /// A secret (a password, a passphrase), with `${VAR}` taken from the environment. A value
    /// that does not expand is an error that never shows it: not the value, not the variable
    /// name inside it (which may be part of the password).
    pub fn secret(&self, key: &str, f: &mut Findings) -> Option<Sourced<Secret>> {
        let (item, origin) = self.item(key)?;
        let Some(Value::String(s)) = item.as_value() else {
            f.push(
                self.wrong(key, &origin, item_type(item), "a string")
                    .with_fix(format!("quote the value: {key} = \"...\"")),
            );
            return None;
        };
        match expand::dollar(s.value(), |v| self.src.ctx.var(v).map(str::to_string)) {
            Ok(v) => Some(Sourced::new(Secret::new(v), origin)),
            Err(e) => {
                let (what, fix) = match e {
                    expand::ExpandError::Unset(_) => (
                        "it names an environment variable (${...}) that is not set",
                        "export the variable before running warren, or use password_file",
                    ),
                    _ => (
                        "it holds `${` without a variable name warren can read",
                        "a secret holding `${` cannot be written here (epoch.toml expands ${NAME}): put it in password_file, which is read as it is",
                    ),
                };
                f.push(
                    Problem::error(
                        origin,
                        format!(
                            "{}.{key}: the value is not valid: {what} (the value is not shown)",
                            self.name
                        ),
                    )
                    .with_fix(fix),
                );
                None
            }
        }
    }

    /// An integer, or a string holding one (so `"${PORT}"` works).
    fn integer(
        &self,
        key: &str,
        f: &mut Findings,
        expected: &str,
        fix: &str,
    ) -> Option<Sourced<i64>> {
        let (item, origin) = self.item(key)?;
        let value = match item.as_value() {
            Some(Value::Integer(i)) => Some(*i.value()),
            Some(Value::String(s)) => {
                let v = self.interpolate(key, s.value(), origin.clone(), f)?;
                match v.value.trim().parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        f.push(
                            Problem::error(
                                origin,
                                format!(
                                    "{}.{key}: expected {expected}, found the string \"{}\"",
                                    self.name, v.value
                                ),
                            )
                            .with_fix(fix.to_string()),
                        );
                        return None;
                    }
                }
            }
            _ => None,
        };
        match value {
            Some(n) => Some(Sourced::new(n, origin)),
            None => {
                f.push(
                    self.wrong(key, &origin, item_type(item), expected)
                        .with_fix(fix.to_string()),
                );
                None
            }
        }
    }

    /// A TCP port; `allow_zero` for local ports (0 picks a free one).
    pub fn port(&self, key: &str, allow_zero: bool, f: &mut Findings) -> Option<Sourced<u16>> {
        let range = if allow_zero { "0-65535" } else { "1-65535" };
        let fix = format!("write {key} = 5432 (a number from {range})");
        let n = self.integer(key, f, &format!("a port number ({range})"), &fix)?;
        let low = if allow_zero { 0 } else { 1 };
        if n.value < low || n.value > 65535 {
            f.push(
                Problem::error(
                    n.origin.clone(),
                    format!(
                        "{}.{key}: port {} is out of range ({range})",
                        self.name, n.value
                    ),
                )
                .with_fix(fix),
            );
            return None;
        }
        Some(n.map(|v| v as u16))
    }

    pub fn count(&self, key: &str, f: &mut Findings) -> Option<Sourced<u32>> {
        let fix = format!("write {key} = 3 (a whole number, 0 or more)");
        let n = self.integer(key, f, "a whole number", &fix)?;
        match u32::try_from(n.value) {
            Ok(v) => Some(Sourced::new(v, n.origin)),
            Err(_) => {
                f.push(
                    Problem::error(
                        n.origin,
                        format!("{}.{key}: {} is out of range", self.name, n.value),
                    )
                    .with_fix(fix),
                );
                None
            }
        }
    }

    /// Seconds: an integer, a float, or a string like `"30"`, `"30s"`, `"5m"`.
    pub fn seconds(&self, key: &str, f: &mut Findings) -> Option<Sourced<Seconds>> {
        let (item, origin) = self.item(key)?;
        let fix = format!("write {key} = 30 (seconds), or \"30s\" / \"5m\"");
        let secs = match item.as_value() {
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            Some(Value::Float(x)) => Some(*x.value()),
            Some(Value::String(s)) => {
                let v = self.interpolate(key, s.value(), origin.clone(), f)?;
                parse_duration(&v.value)
            }
            _ => None,
        };
        match secs {
            Some(s) if s.is_finite() && (0.0..=86400.0 * 365.0).contains(&s) => Some(Sourced::new(
                Seconds(std::time::Duration::from_secs_f64(s)),
                origin,
            )),
            _ => {
                let shown = item.as_value().map(|v| v.to_string()).unwrap_or_default();
                f.push(
                    Problem::error(
                        origin,
                        format!(
                            "{}.{key}: expected a duration in seconds, found {}",
                            self.name,
                            shown.trim()
                        ),
                    )
                    .with_fix(fix),
                );
                None
            }
        }
    }

    /// A boolean, or a string "true"/"false"/"yes"/"no".
    pub fn boolean(&self, key: &str, f: &mut Findings) -> Option<Sourced<bool>> {
        let (item, origin) = self.item(key)?;
        let v = match item.as_value() {
            Some(Value::Boolean(b)) => Some(*b.value()),
            Some(Value::String(s)) => {
                let v = self.interpolate(key, s.value(), origin.clone(), f)?;
                match v.value.to_ascii_lowercase().as_str() {
                    "true" | "yes" => Some(true),
                    "false" | "no" => Some(false),
                    _ => None,
                }
            }
            _ => None,
        };
        if v.is_none() {
            f.push(
                self.wrong(key, &origin, item_type(item), "true or false")
                    .with_fix(format!("write {key} = true or {key} = false")),
            );
        }
        v.map(|b| Sourced::new(b, origin))
    }

    /// Warns about keys not in `known`, suggesting the closest known one.
    pub fn unknown_keys(&self, known: &[&str], f: &mut Findings) {
        for (key, _) in self.table.iter() {
            if !known.contains(&key) {
                f.push(self.unknown_key(key, closest(key, known)));
            }
        }
    }

    /// Warns about keys one typo from one of `known` (and starting with `prefix`); the
    /// table's other keys are not this reader's to judge.
    pub fn near_misses(&self, known: &[&str], prefix: &str, f: &mut Findings) {
        for (key, _) in self.table.iter() {
            if known.contains(&key) || !key.to_ascii_lowercase().starts_with(prefix) {
                continue;
            }
            if let Some(best) = closest(key, known) {
                f.push(self.unknown_key(key, Some(best)));
            }
        }
    }

    fn unknown_key(&self, key: &str, best: Option<&str>) -> Problem {
        let origin = self
            .item(key)
            .map(|(_, o)| o)
            .unwrap_or_else(|| self.origin.clone());
        let p = Problem::warning(
            origin,
            format!("unknown key '{key}' in [{}] is ignored", self.name),
        );
        match best {
            Some(best) => p.with_fix(format!("did you mean '{best}'?")),
            None => p,
        }
    }
}

/// `30`, `1.5`, `30s`, `5m`, `1h`.
/// Seconds from `90`, `1.5`, `30s`, `5m`, `8h`, `1d`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1.0),
        (i, 'm') => (&s[..i], 60.0),
        (i, 'h') => (&s[..i], 3600.0),
        (i, 'd') => (&s[..i], 86400.0),
        _ => (s, 1.0),
    };
    num.trim().parse::<f64>().ok().map(|n| n * mult)
}

/// The known key nearest to `key`, if it is close enough to be a typo.
pub fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        let known = ["key_file", "known_hosts_file", "user", "host"];
        assert_eq!(closest("kye_file", &known), Some("key_file"));
        assert_eq!(closest("known_host_file", &known), Some("known_hosts_file"));
        assert_eq!(closest("usr", &known), Some("user"));
        assert_eq!(closest("completely_else", &known), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(30.0));
        assert_eq!(parse_duration("5m"), Some(300.0));
        assert_eq!(parse_duration("1.5s"), Some(1.5));
        assert_eq!(parse_duration("abc"), None);
    }
}
