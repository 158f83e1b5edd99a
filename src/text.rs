//! Text that came from a peer (an SSH banner, a database's error, a version string) or from a
//! config file, made safe to print on a terminal: control characters are shown escaped, so a
//! server cannot move the cursor, retitle the window or hide text behind an escape sequence.
//!
//! One function, [`escape`], used by every text printer of the CLI (and open to the engine).
//! JSON output is not escaped: serde_json writes control characters as `\u001b` already, and
//! the strings stay exact for programs.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as it is: C0 controls (but none is allowed, not even
/// tab or newline, so one value stays on one line), DEL, C1 controls (0x80-0x9f: 0x9b is CSI on
/// some terminals), and the bidirectional overrides and isolates that can reorder what is shown
/// ("Trojan Source", CVE-2021-42574).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// [`escape`] for text of several lines (an error with its hint): each line escaped, the line
/// breaks kept.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.contains('\n') {
        return escape(s);
    }
    Cow::Owned(s.split('\n').map(escape).collect::<Vec<_>>().join("\n"))
}

/// `s` with every unsafe character written as an escape: `\n`, `\r`, `\t`, `\xNN` for the
/// other ASCII controls, `\u{NNNN}` for the rest. A string with nothing to escape is returned
/// as it is, without a copy.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_osc_title_sequence_is_shown_not_run() {
        assert_eq!(
            escape("SSH-2.0-x\x1b]0;pwned\x07"),
            "SSH-2.0-x\\x1b]0;pwned\\x07"
        );
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(
            escape("PostgreSQL 16.2 — ok"),
            Cow::Borrowed("PostgreSQL 16.2 — ok")
        ));
    }

    #[test]
    fn c1_bidi_and_line_breaks_are_escaped() {
        assert_eq!(escape("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("one\r\ntwo\tthree\x7f"), "one\\r\\ntwo\\tthree\\x7f");
    }

    #[test]
    fn nothing_unsafe_is_left_in_any_string() {
        // Every code point below U+3000 once, in one string.
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let shown = escape(&all);
        assert!(!shown.chars().any(unsafe_char), "{shown:?}");
    }

    #[test]
    fn lines_keep_their_breaks_and_nothing_else() {
        assert_eq!(
            escape_lines("refused: \x1b[2Jgone\n  hint: check\r"),
            "refused: \\x1b[2Jgone\n  hint: check\\r"
        );
        assert!(matches!(escape_lines("plain"), Cow::Borrowed("plain")));
    }
}
