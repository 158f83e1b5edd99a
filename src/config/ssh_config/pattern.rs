//! OpenSSH's wildcard patterns (`*`, `?`) and comma-separated pattern lists with `!` negation
//! (match.c: `match_pattern`, `match_pattern_list`).

/// `*` matches any run of characters, `?` one character; everything else literally.
pub fn wildcard(s: &str, pattern: &str) -> bool {
    let s = s.as_bytes();
    let p = pattern.as_bytes();
    let (mut si, mut pi) = (0, 0);
    // Position after the last `*` seen, and where in `s` it was tried.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether a pattern has wildcard characters.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

/// The result of matching a comma-separated list: a negated entry that matches wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    Negative,
    None,
    Positive,
}

/// `match_pattern_list`: `lowercase` lowercases the patterns (not the string), as
/// OpenSSH does for host names.
pub fn pattern_list(s: &str, list: &str, lowercase: bool) -> ListMatch {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, pat) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        let matched = if lowercase {
            wildcard(s, &pat.to_ascii_lowercase())
        } else {
            wildcard(s, pat)
        };
        if matched {
            if negated {
                return ListMatch::Negative;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("db.prod.example", "*.example"));
        assert!(wildcard("db1", "db?"));
        assert!(!wildcard("db12", "db?"));
        assert!(wildcard("anything", "*"));
        assert!(wildcard("", "*"));
        assert!(wildcard("abcabd", "*abd"));
        assert!(wildcard("a*b", "a*b"));
        assert!(!wildcard("Db", "db"));
        assert!(wildcard("aXbXc", "a*b*c"));
        assert!(!wildcard("aXbX", "a*b*c"));
    }

    #[test]
    fn lists_with_negation() {
        assert_eq!(
            pattern_list("web1", "web*,!web2", false),
            ListMatch::Positive
        );
        assert_eq!(
            pattern_list("web2", "web*,!web2", false),
            ListMatch::Negative
        );
        assert_eq!(pattern_list("db", "web*", false), ListMatch::None);
        assert_eq!(pattern_list("db", "DB", true), ListMatch::Positive);
        assert_eq!(pattern_list("DB", "db", true), ListMatch::None);
    }
}
