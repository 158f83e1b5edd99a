//! Expansion of `~`, `${VAR}` and OpenSSH's `%` tokens in config values.

use std::path::Path;

/// `~` or `~/rest` with `home`; anything else unchanged (`~user` is left as written).
pub fn tilde(s: &str, home: &Path) -> String {
    if s == "~" {
        return home.display().to_string();
    }
    if let Some(rest) = s.strip_prefix("~/") {
        return home.join(rest).display().to_string();
    }
    s.to_string()
}

/// `${VAR}` from `lookup`. An unset variable is an error naming it; a `$` not followed by `{`
/// is kept as is.
pub fn dollar(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(ExpandError::Unterminated(s.to_string()));
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ExpandError::BadName(name.to_string()));
        }
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => return Err(ExpandError::Unset(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `%x` tokens from `lookup` (which returns `None` for a token it does not know); `%%` is `%`.
pub fn percent(s: &str, lookup: impl Fn(char) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match lookup(t) {
                Some(v) => out.push_str(&v),
                None => return Err(ExpandError::UnknownToken(t)),
            },
            None => return Err(ExpandError::TrailingPercent),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("environment variable ${{{0}}} is not set")]
    Unset(String),
    #[error("'${{{0}}}' is not a valid variable name")]
    BadName(String),
    #[error("'{0}' has a '${{' without its closing '}}'")]
    Unterminated(String),
    #[error("unknown token %{0}")]
    UnknownToken(char),
    #[error("a '%' at the end of the value (write %% for a literal %)")]
    TrailingPercent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expands_only_own_home() {
        let home = Path::new("/home/a");
        assert_eq!(tilde("~/.ssh/id", home), "/home/a/.ssh/id");
        assert_eq!(tilde("~", home), "/home/a");
        assert_eq!(tilde("~bob/x", home), "~bob/x");
        assert_eq!(tilde("/abs/~", home), "/abs/~");
    }

    #[test]
    fn dollar_names_the_unset_variable() {
        let look = |n: &str| (n == "A").then(|| "1".to_string());
        assert_eq!(dollar("x${A}y$z", look).as_deref(), Ok("x1y$z"));
        assert_eq!(dollar("${B}", look), Err(ExpandError::Unset("B".into())));
        assert!(matches!(
            dollar("${A", look),
            Err(ExpandError::Unterminated(_))
        ));
    }

    #[test]
    fn percent_tokens() {
        let look = |t: char| (t == 'h').then(|| "host".to_string());
        assert_eq!(percent("/k/%h_%%", look).as_deref(), Ok("/k/host_%"));
        assert_eq!(percent("%q", look), Err(ExpandError::UnknownToken('q')));
        assert_eq!(percent("50%", look), Err(ExpandError::TrailingPercent));
    }
}
