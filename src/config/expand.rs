//! Expansion of `~`, `${VAR}` and OpenSSH's `%` tokens in config values.

use std::path::Path;

/// OpenSSH's `tilde_expand`: `~`, `~/rest` with `home`, `~user/rest` with that user's home
/// (unchanged if there is no such user); extra slashes after the `~` part are dropped.
pub fn tilde(s: &str, home: &Path) -> String {
    let Some(after) = s.strip_prefix('~') else {
        return s.to_string();
    };
    let (user, rest) = match after.find('/') {
        Some(i) => (&after[..i], after[i..].trim_start_matches('/')),
        None => (after, ""),
    };
    let base: std::borrow::Cow<str> = if user.is_empty() {
        home.to_string_lossy()
    } else {
        match crate::config::context::user_home(user) {
            Some(h) => h.into(),
            None => return s.to_string(),
        }
    };
    let base = base.trim_end_matches('/');
    // One allocation: every host's default key and known_hosts paths come through here.
    let mut out = String::with_capacity(base.len() + 1 + rest.len());
    out.push_str(base);
    out.push('/');
    out.push_str(rest);
    out
}

/// OpenSSH's `a2port`: a number (a leading `+` allowed) or a TCP service name from
/// /etc/services; 0 is allowed here and rejected by callers that need a real port.
pub fn port(s: &str) -> Option<u16> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().ok();
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let services = std::fs::read_to_string("/etc/services").ok()?;
    services.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut f = line.split_whitespace();
        let name = f.next()?;
        let (num, proto) = f.next()?.split_once('/')?;
        let aliases: Vec<&str> = f.collect();
        (proto == "tcp" && (name == s || aliases.contains(&s)))
            .then(|| num.parse().ok())
            .flatten()
    })
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
        assert_eq!(tilde("~//x", home), "/home/a/x");
        assert_eq!(tilde("~", home), "/home/a/");
        assert_eq!(tilde("~no-such-user-here/x", home), "~no-such-user-here/x");
        assert_eq!(
            tilde("~root/x", home),
            format!(
                "{}/x",
                crate::config::context::user_home("root")
                    .unwrap_or_default()
                    .trim_end_matches('/')
            )
        );
        assert_eq!(tilde("/abs/~", home), "/abs/~");
    }

    #[test]
    fn ports_as_ssh_reads_them() {
        assert_eq!(port("2200"), Some(2200));
        assert_eq!(port("+2200"), Some(2200));
        assert_eq!(port("ssh"), Some(22));
        assert_eq!(port("https"), Some(443));
        assert_eq!(port("no-such-service"), None);
        assert_eq!(port("12a"), None);
        assert_eq!(port("70000"), None);
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
