//! Splits an ssh_config line into its keyword and arguments, as OpenSSH's `strdelim` and
//! `argv_split` do: `Keyword value`, `Keyword=value`, `Keyword = value`; double or single
//! quotes group words; `\` escapes a quote, a backslash or a space; `#` at the start of an
//! argument ends the line.

/// A line's keyword (lowercased) and arguments; `None` for a blank or comment line.
pub fn split(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let Some((keyword, rest)) = keyword_and_rest(line) else {
        return Ok(None);
    };
    let args = argv(rest)?;
    Ok(Some((keyword, args)))
}

/// The keyword (lowercased) and the rest of the line as written: what OpenSSH keeps for a
/// command (`ProxyCommand`, `KnownHostsCommand`), quotes and `#` included.
pub fn keyword_and_rest(line: &str) -> Option<(String, &str)> {
    let line = line.trim_start_matches([' ', '\t', '\r', '\n']);
    let line = line.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find([' ', '\t', '=']).unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = &line[end..];
    let had_equals = rest.starts_with('=');
    if had_equals {
        rest = &rest[1..];
    }
    rest = rest.trim_start_matches([' ', '\t']);
    if !had_equals && let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start_matches([' ', '\t']);
    }
    Some((keyword, rest))
}

/// `argv_split` with comments: words separated by spaces or tabs.
pub fn argv(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => break,
            _ => {}
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match c {
                '\\' => {
                    chars.next();
                    match chars.peek() {
                        Some(&n)
                            if n == '\''
                                || n == '"'
                                || n == '\\'
                                || (quote.is_none() && n == ' ') =>
                        {
                            arg.push(n);
                            chars.next();
                        }
                        _ => arg.push('\\'),
                    }
                    continue;
                }
                ' ' | '\t' if quote.is_none() => break,
                '"' | '\'' if quote.is_none() => quote = Some(c),
                c if Some(c) == quote => quote = None,
                c => arg.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return Err("a quote is not closed".into());
        }
        args.push(arg);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(line: &str) -> (String, Vec<String>) {
        split(line).expect("lexes").expect("not blank")
    }

    #[test]
    fn keyword_forms() {
        assert_eq!(
            kw("  HostName db.example"),
            ("hostname".into(), vec!["db.example".into()])
        );
        assert_eq!(kw("Port=2222"), ("port".into(), vec!["2222".into()]));
        assert_eq!(kw("Port = 2222"), ("port".into(), vec!["2222".into()]));
        assert_eq!(
            kw("User\tbob # comment"),
            ("user".into(), vec!["bob".into()])
        );
        assert_eq!(split("   # only a comment").expect("lexes"), None);
        assert_eq!(split("").expect("lexes"), None);
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            kw(r#"IdentityFile "/path with/space" 'b c' d\ e"#).1,
            vec!["/path with/space", "b c", "d e"]
        );
        assert_eq!(kw("Host a#b").1, vec!["a#b"]);
        assert!(split("Host \"open").is_err());
    }
}
