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

/// What a `# warren: KEY = VALUE` comment sets for the hosts of its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarrenSetting {
    /// `tags = prod, eu`
    Tags(Vec<String>),
    /// `local_bind = auto`: the host's forwards listen on its own loopback address.
    LocalBindAuto,
    /// `on_demand = true|false`
    OnDemand(bool),
    /// `certificate_command = COMMAND`: as written (surrounding double quotes removed).
    CertificateCommand(String),
}

/// A `# warren: tags = prod, eu` (or `local_bind = auto`, `on_demand = true`) comment: `None`
/// for any other line, the setting, or what is wrong with a line that starts `# warren:` but
/// says something else.
pub fn warren_comment(line: &str) -> Option<Result<WarrenSetting, String>> {
    let rest = line.trim().strip_prefix('#')?.trim_start();
    let rest = rest
        .strip_prefix("warren:")
        .or_else(|| rest.strip_prefix("Warren:"))?
        .trim();
    let Some((key, value)) = rest.split_once('=') else {
        return Some(Err(format!("`# warren: {rest}` has no `=`")));
    };
    let (key, word) = (key.trim(), value.trim().trim_matches('"'));
    if key.eq_ignore_ascii_case("local_bind") {
        return Some(match word {
            "auto" => Ok(WarrenSetting::LocalBindAuto),
            _ => Err(format!(
                "`# warren: local_bind = {word}`: only `auto` is a warren setting (write other addresses in LocalForward)"
            )),
        });
    }
    if key.eq_ignore_ascii_case("on_demand") {
        return Some(match word.to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(WarrenSetting::OnDemand(true)),
            "false" | "no" => Ok(WarrenSetting::OnDemand(false)),
            _ => Err(format!(
                "`# warren: on_demand = {word}` is not true or false"
            )),
        });
    }
    if key.eq_ignore_ascii_case("certificate_command") {
        let v = value.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        return Some(if v.trim().is_empty() {
            Err("`# warren: certificate_command =` names no command".to_string())
        } else {
            Ok(WarrenSetting::CertificateCommand(v.to_string()))
        });
    }
    if !key.eq_ignore_ascii_case("tags") {
        return Some(Err(format!(
            "`# warren: {key}` is not a warren setting (tags, local_bind, on_demand and certificate_command are)"
        )));
    }
    let tags: Vec<String> = value
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.is_empty() {
        return Some(Err("`# warren: tags =` names no tag".to_string()));
    }
    Some(Ok(WarrenSetting::Tags(tags)))
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

/// The words of a Match line as OpenSSH's `strdelim` cuts them: whitespace or one `=`
/// separates, double quotes (only) group, even inside a word; an empty word ends the line.
pub fn match_words(s: &str) -> Result<Vec<String>, String> {
    let b: Vec<char> = s.chars().collect();
    let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let skip_ws = |mut i: usize| {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = skip_ws(0);
    loop {
        let start = i;
        let mut j = i;
        while j < b.len() && !(ws(b[j]) || b[j] == '"' || b[j] == '=') {
            j += 1;
        }
        let mut word: String = b[start..j].iter().collect();
        if j == b.len() {
            if !word.is_empty() {
                out.push(word);
            }
            return Ok(out);
        }
        if b[j] == '"' {
            let Some(k) = (j + 1..b.len()).find(|&k| b[k] == '"') else {
                return Err("a quote is not closed".into());
            };
            word.extend(&b[j + 1..k]);
            i = skip_ws(k + 1);
        } else {
            let equals = b[j] == '=';
            i = skip_ws(j + 1);
            if !equals && i < b.len() && b[i] == '=' {
                i = skip_ws(i + 1);
            }
        }
        if word.is_empty() {
            return Ok(out);
        }
        out.push(word);
    }
}

/// `argv_split` with comments: words separated by spaces or tabs.
pub fn argv(s: &str) -> Result<Vec<String>, String> {
    split_words(s, true)
}

/// `argv_split` without comments, as OpenSSH splits KnownHostsCommand: a `#` is a character.
pub fn command_words(s: &str) -> Result<Vec<String>, String> {
    split_words(s, false)
}

fn split_words(s: &str, comments: bool) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        match chars.peek() {
            None => break,
            Some('#') if comments => break,
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
    fn match_lines_as_strdelim_cuts_them() {
        let w = |s: &str| match_words(s).expect("cuts");
        assert_eq!(
            w("host=a exec \"test %h = db\""),
            ["host", "a", "exec", "test %h = db"]
        );
        assert_eq!(w("host = a  user=b"), ["host", "a", "user", "b"]);
        assert_eq!(w("exec 'a b'"), ["exec", "'a", "b'"]);
        assert_eq!(w("all # c"), ["all", "#", "c"]);
        assert!(match_words("exec \"open").is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            kw(r#"IdentityFile "/path with/space" 'b c' d\ e"#).1,
            vec!["/path with/space", "b c", "d e"]
        );
        assert_eq!(kw("Host a#b").1, vec!["a#b"]);
        assert!(split("Host \"open").is_err());
        assert_eq!(
            command_words("/bin/kh '%H x' # not a comment").expect("splits"),
            vec!["/bin/kh", "%H x", "#", "not", "a", "comment"]
        );
    }
}
