//! Parsing that survives a syntax error: the section holding the error (and its sub-tables)
//! is blanked out, line numbers kept, and the rest parsed again, so one typo costs one entry,
//! not the whole file.

use toml_edit::Document;

/// A syntax error, the line it is on, and the sections skipped because of it.
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
    pub fix: String,
    pub skipped: Vec<String>,
}

/// The most errors salvaged before giving up on the file.
const MAX_ERRORS: usize = 50;

/// Parses `text`; on errors, blanks the offending sections and tries again.
pub fn parse(text: &str) -> (Option<Document<String>>, Vec<SyntaxError>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut errors = Vec::new();
    let mut current = text.to_string();
    loop {
        let err = match Document::parse(current.clone()) {
            Ok(doc) => return (Some(doc), errors),
            Err(e) => e,
        };
        let offset = err.span().map(|s| s.start).unwrap_or(0).min(current.len());
        let line_idx = current[..offset].matches('\n').count();
        let message = err.message().trim().to_string();
        let (skipped, range) = section_around(&lines, line_idx);
        let fix = fix_for(&message);
        let blanked = range.clone().any(|i| !lines[i].trim().is_empty());
        errors.push(SyntaxError {
            line: line_idx + 1,
            message,
            fix,
            skipped: skipped.clone(),
        });
        if !blanked || errors.len() >= MAX_ERRORS {
            return (None, errors);
        }
        for i in range {
            lines[i].clear();
        }
        // Sub-tables of a skipped section would otherwise come back as half an entry.
        if let Some(name) = skipped
            .first()
            .map(|s| s.trim_matches(['[', ']']).to_string())
        {
            blank_children(&mut lines, &name);
        }
        current = lines.join("\n");
        current.push('\n');
    }
}

/// The dotted name of a `[table]` or `[[array]]` header line.
fn header_name(line: &str) -> Option<String> {
    let t = line.trim();
    if !t.starts_with('[') {
        return None;
    }
    let inner = t.trim_start_matches('[');
    // An unclosed header (`[storage.postgres.orders`) still names its section.
    let end = inner.find(']').unwrap_or(inner.len());
    let name = inner[..end]
        .split('.')
        .map(|p| p.trim().trim_matches(['"', '\'']))
        .collect::<Vec<_>>()
        .join(".");
    Some(name)
}

/// The section holding line `idx`: from its header to the next header.
fn section_around(lines: &[String], idx: usize) -> (Vec<String>, std::ops::Range<usize>) {
    let idx = idx.min(lines.len().saturating_sub(1));
    let start = (0..=idx).rev().find(|&i| header_name(&lines[i]).is_some());
    let end = (idx + 1..lines.len())
        .find(|&i| header_name(&lines[i]).is_some())
        .unwrap_or(lines.len());
    match start {
        Some(s) => {
            let name = header_name(&lines[s]).unwrap_or_default();
            (vec![format!("[{name}]")], s..end)
        }
        None => (vec!["the top-level keys".to_string()], 0..end),
    }
}

fn blank_children(lines: &mut [String], parent: &str) {
    let prefix = format!("{parent}.");
    let mut in_child = false;
    for line in lines.iter_mut() {
        if let Some(name) = header_name(line) {
            in_child = name.starts_with(&prefix);
        }
        if in_child {
            line.clear();
        }
    }
}

fn fix_for(message: &str) -> String {
    let m = message.to_ascii_lowercase();
    if m.contains("string") || m.contains("quote") {
        "close the string with a matching quote".into()
    } else if m.contains("duplicate") {
        "remove the duplicate key or table".into()
    } else if m.contains("key") {
        "write key = value, with strings in double quotes".into()
    } else {
        "fix the TOML syntax on this line (strings in double quotes, one key = value a line)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_section_is_skipped_and_the_rest_parses() {
        let text = "[a]\nx = 1\n[b]\ny = \"oops\n[b.sub]\nz = 1\n[c]\nw = 2\n";
        let (doc, errs) = parse(text);
        let doc = doc.expect("salvaged");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 4);
        assert_eq!(errs[0].skipped, vec!["[b]".to_string()]);
        assert!(doc.get("a").is_some());
        assert!(doc.get("b").is_none());
        assert!(doc.get("c").is_some());
    }

    #[test]
    fn an_unclosed_header_still_names_the_section_it_skips() {
        let text = "[a]\nx = 1\n[b.c\ny = 2\n[d]\nw = 2\n";
        let (doc, errs) = parse(text);
        let doc = doc.expect("salvaged");
        assert_eq!(errs[0].skipped, vec!["[b.c]".to_string()]);
        assert!(doc.get("a").is_some() && doc.get("d").is_some());
    }

    #[test]
    fn valid_text_has_no_errors() {
        let (doc, errs) = parse("[a]\nx = 1\n");
        assert!(doc.is_some());
        assert!(errs.is_empty());
    }
}
