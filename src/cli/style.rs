//! Colour on the terminal, as clap does it: styles from `anstyle`, written through `anstream`,
//! which drops them when the stream is not a terminal, under `NO_COLOR` (or `CLICOLOR=0`),
//! and as `--color` says (`auto`, `always`, `never`; `CLICOLOR_FORCE` as `always`).
//!
//! Commands style only what a person reads: doctor's marks, the state in `status`, and
//! the word `error:`/`warning:` that starts a line on stderr. JSON, URLs, completions and the
//! manual page carry no style at all, so `--color always` never changes what a script parses.

use std::io::Write;

use anstyle::{AnsiColor, Style};

/// A failure: red, bold.
pub const FAIL: Style = AnsiColor::Red.on_default().bold();
/// Something that did not run or may not work: yellow, bold.
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// A pass, a tunnel up: green.
pub const OK: Style = AnsiColor::Green.on_default();
/// What matters less: dimmed.
pub const DIM: Style = Style::new().dimmed();

/// Sets the choice for every stream of the process (`--color`).
pub fn init(choice: clap::ColorChoice) {
    let c = match choice {
        clap::ColorChoice::Auto => anstream::ColorChoice::Auto,
        clap::ColorChoice::Always => anstream::ColorChoice::Always,
        clap::ColorChoice::Never => anstream::ColorChoice::Never,
    };
    c.write_global();
}

/// `text` in `style` (the stream drops the style where colour is off).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// stderr with the severity that starts a line (`error:`, `warning:`) styled.
pub struct Stderr<W: Write> {
    inner: W,
    /// At the start of a line: the severity word is looked for in what comes next.
    line_start: bool,
}

impl<W: Write> Stderr<W> {
    pub fn new(inner: W) -> Self {
        Stderr {
            inner,
            line_start: true,
        }
    }
}

impl<W: Write> Write for Stderr<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            if self.line_start {
                for (word, style) in [(&b"error:"[..], FAIL), (&b"warning:"[..], WARN)] {
                    if buf.starts_with(word) {
                        write!(self.inner, "{style}")?;
                        self.inner.write_all(word)?;
                        write!(self.inner, "{style:#}")?;
                        buf = &buf[word.len()..];
                        break;
                    }
                }
            }
            let end = buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1);
            self.inner.write_all(&buf[..end])?;
            self.line_start = buf[end - 1] == b'\n';
            buf = &buf[end..];
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(choice: anstream::ColorChoice, parts: &[&str]) -> String {
        let mut out = Vec::new();
        {
            let mut s = Stderr::new(anstream::AutoStream::new(&mut out, choice));
            for p in parts {
                s.write_all(p.as_bytes()).expect("write");
            }
        }
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_severity_at_a_line_start_is_styled_and_nothing_else() {
        let text = through(
            anstream::ColorChoice::Always,
            &[
                "error: no connection named 'x'\n",
                "  fix: an error: here\nwarning: y\n",
            ],
        );
        assert_eq!(
            text,
            format!(
                "{FAIL}error:{FAIL:#} no connection named 'x'\n  fix: an error: here\n{WARN}warning:{WARN:#} y\n"
            )
        );
    }

    #[test]
    fn a_line_written_in_pieces_is_styled_once() {
        let text = through(anstream::ColorChoice::Always, &["err", "or: a\n"]);
        // Split mid-word, the word is not recognised: it stays plain, and nothing is lost.
        assert_eq!(text, "error: a\n");
        let text = through(
            anstream::ColorChoice::Always,
            &["error: a", " b\n", "error: c\n"],
        );
        assert_eq!(
            text,
            format!("{FAIL}error:{FAIL:#} a b\n{FAIL}error:{FAIL:#} c\n")
        );
    }

    #[test]
    fn without_colour_the_text_is_unchanged() {
        let text = through(
            anstream::ColorChoice::Never,
            &["error: x\n", &paint(OK, "up"), "\n"],
        );
        assert_eq!(text, "error: x\nup\n");
    }
}
