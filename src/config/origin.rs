//! Provenance: where an effective value came from.
//!
//! Every value warren uses remembers its origin (`~/.ssh/config:12`, `epoch.toml:8`,
//! `env EPOCH_SSH_USER`, `default`), so `warren show` and the TUI can answer
//! "why is it using this key?".

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

use serde::Serialize;

/// Where a value was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line of a config file (1-based).
    File { path: Arc<Path>, line: usize },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
    /// warren's or OpenSSH's built-in default.
    Default,
}

impl Origin {
    pub fn file(path: &Arc<Path>, line: usize) -> Self {
        Origin::File {
            path: Arc::clone(path),
            line,
        }
    }

    /// `epoch.toml:8`, `env EPOCH_SSH_USER`, `default`: the file's name without its folder.
    pub fn short(&self) -> String {
        match self {
            Origin::File { path, line } => format!(
                "{}:{line}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            other => other.to_string(),
        }
    }

    /// The file and line, when the value came from a file.
    pub fn file_line(&self) -> Option<(&Path, usize)> {
        match self {
            Origin::File { path, line } => Some((path, *line)),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Sourced { value, origin }
    }

    pub fn default_value(value: T) -> Self {
        Sourced {
            value,
            origin: Origin::Default,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            origin: self.origin,
        }
    }

    pub fn as_ref(&self) -> Sourced<&T> {
        Sourced {
            value: &self.value,
            origin: self.origin.clone(),
        }
    }
}

impl<T: Serialize> Serialize for Sourced<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Sourced", 2)?;
        st.serialize_field("value", &self.value)?;
        st.serialize_field("source", &self.origin)?;
        st.end()
    }
}

/// A secret (passphrase, password): it never reaches a log, the screen or JSON, and its
/// memory is overwritten with zeros when it is dropped (`zeroize`), so a freed buffer does
/// not keep it for a later allocation or a core dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(Zeroizing::new(s))
    }
    pub fn from_zeroizing(s: Zeroizing<String>) -> Self {
        Secret(s)
    }
    /// A copy that is zeroized in its turn, for an API that takes the secret by value.
    pub fn copied(&self) -> Zeroizing<String> {
        self.0.clone()
    }
    /// The secret itself, for the one place that needs it (authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The most of a password file that is read: a password is never this long, and a path
/// pointed at something else (a log, a device) is not read whole.
pub const MAX_SECRET_FILE: usize = 64 * 1024;

/// A password file as a secret, its line end taken off: read into one buffer allocated
/// whole up front (never grown, so no copy is left behind in freed memory) and zeroized when
/// dropped.
pub fn read_secret_file(path: &Path) -> std::io::Result<Zeroizing<String>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE + 1));
    f.take(MAX_SECRET_FILE as u64 + 1).read_to_end(&mut raw)?;
    if raw.len() > MAX_SECRET_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {} KiB: not a password", MAX_SECRET_FILE / 1024),
        ));
    }
    let text = std::str::from_utf8(&raw)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// How bad a problem found in a config file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The value was ignored or a default was used; everything else works.
    Warning,
    /// The entry (or line) could not be used.
    Error,
}

/// Something wrong in a config file, with where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub origin: Origin,
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

impl Problem {
    pub fn error(origin: Origin, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            origin,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(origin: Origin, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            origin,
            message: message.into(),
            fix: None,
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: {}: {}", self.origin, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_is_read_without_its_line_end_and_a_huge_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret pass\r\n").expect("write");
        assert_eq!(read_secret_file(&p).expect("reads").as_str(), "s3cret pass");
        std::fs::write(&p, vec![b'a'; MAX_SECRET_FILE]).expect("write");
        assert_eq!(read_secret_file(&p).expect("reads").len(), MAX_SECRET_FILE);
        std::fs::write(&p, vec![b'a'; MAX_SECRET_FILE + 1]).expect("write");
        let e = read_secret_file(&p).expect_err("too long");
        assert!(e.to_string().contains("longer than 64 KiB"), "{e}");
        std::fs::write(&p, [0xff, 0xfe]).expect("write");
        assert!(read_secret_file(&p).is_err());
    }

    #[test]
    fn a_secret_never_shows_itself() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"***\"");
        assert_eq!(s.copied().as_str(), "hunter2");
    }
}
