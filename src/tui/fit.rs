//! Text made to fit a width: cut with an ellipsis (`…`), never silently, and wrapped at word
//! boundaries. Every string the views draw goes through here, so a cut is always visible and a
//! control character from a peer (an SSH banner, a server's error) is shown escaped, never run.
//!
//! Widths are terminal columns (`unicode-width`), not bytes or chars.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The ellipsis that marks a cut.
pub const ELLIPSIS: char = '…';

/// Columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` (escaped) in at most `max` columns: whole if it fits, else cut with `…` at the end.
pub fn fit(s: &str, max: usize) -> Cow<'_, str> {
    let s = crate::text::escape(s);
    if width(&s) <= max {
        return s;
    }
    Cow::Owned(cut(&s, max))
}

/// `s` cut to `max` columns with `…` as the last column (`max` 0 gives "").
fn cut(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push(ELLIPSIS);
    out
}

/// `s` padded with spaces (or cut with `…`) to exactly `w` columns.
pub fn pad(s: &str, w: usize) -> String {
    let f = fit(s, w);
    let n = width(&f);
    let mut out = f.into_owned();
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(n)));
    out
}

/// `s` (escaped) wrapped at word boundaries into lines of at most `max` columns. A word longer
/// than a line is broken into pieces of a line each (a wrap, not a cut: nothing is lost).
/// `indent` starts every line after the first.
pub fn wrap(s: &str, max: usize, indent: usize) -> Vec<String> {
    let s = crate::text::escape(s);
    let max = max.max(indent + 1).max(1);
    let mut lines = Vec::new();
    // Leading spaces are the first line's own indent.
    let body = s.trim_start_matches(' ');
    let lead = (s.len() - body.len()).min(max.saturating_sub(1));
    let mut line = " ".repeat(lead);
    let mut used = lead;
    let pad = " ".repeat(indent);
    for word in body.split(' ') {
        let ww = width(word);
        let room = max - used;
        let sep = usize::from(!line.trim().is_empty());
        if ww + sep <= room {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            used += ww + sep;
            continue;
        }
        // Not on this line: start the next (unless this one is empty).
        if !line.trim().is_empty() {
            lines.push(std::mem::take(&mut line));
            line.push_str(&pad);
            used = indent;
        }
        // A word wider than a whole line: break it.
        let mut piece_w = 0;
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if used + piece_w + w > max {
                lines.push(std::mem::take(&mut line));
                line.push_str(&pad);
                used = indent;
                piece_w = 0;
            }
            line.push(c);
            piece_w += w;
        }
        used += piece_w;
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_always_ends_in_an_ellipsis_and_fits() {
        assert_eq!(fit("db.demo.internal:5432", 30), "db.demo.internal:5432");
        assert_eq!(fit("db.demo.internal:5432", 10), "db.demo.i…");
        assert_eq!(width(&fit("db.demo.internal:5432", 10)), 10);
        assert_eq!(fit("abc", 0), "");
        assert_eq!(fit("abc", 1), "…");
        assert_eq!(pad("ab", 4), "ab  ");
    }

    #[test]
    fn wide_characters_count_as_two_columns() {
        let s = fit("数据库数据库", 5);
        assert!(width(&s) <= 5, "{s}");
        assert!(s.ends_with(ELLIPSIS));
    }

    #[test]
    fn control_characters_are_escaped_before_fitting() {
        assert_eq!(fit("a\x1b[2Jb", 20), "a\\x1b[2Jb");
    }

    #[test]
    fn wrapping_keeps_every_word_and_each_line_fits() {
        let text = "the bastion forbids forwarding: AllowTcpForwarding no or a PermitOpen list";
        let lines = wrap(text, 20, 2);
        assert!(lines.iter().all(|l| width(l) <= 20), "{lines:?}");
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(joined.join(" "), text);
        let long = wrap("SHA256:mVPwvezndPv/ARoIadVY98vAC0g", 10, 0);
        assert_eq!(long.concat(), "SHA256:mVPwvezndPv/ARoIadVY98vAC0g");
        assert!(long.iter().all(|l| width(l) <= 10));
        assert_eq!(wrap("    -> a hint", 40, 7), ["    -> a hint"]);
    }
}
