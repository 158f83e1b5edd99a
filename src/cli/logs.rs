//! `warren logs [NAME] [-f]`: the daemon's and the TUI's logs (with their rotated files),
//! merged in time order; with NAME, only the lines about that tunnel; with `-f`, new lines
//! as they are written, until Ctrl-C.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::exit;
use crate::config::Context;
use crate::logging;

/// The logs warren writes: the daemon's, the TUI's, and a service's `warren up` (launchd).
const LOGS: [&str; 3] = ["daemon.log", "warren.log", super::launchd::LOG];

/// Whether a line is about `name` (its `tunnel=NAME` field).
fn about(line: &str, name: &str) -> bool {
    let field = format!("tunnel={name}");
    line.split_whitespace()
        .any(|w| w.trim_end_matches([',', ':']) == field)
}

pub async fn run(
    ctx: &Context,
    name: Option<&str>,
    follow: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let mut lines: Vec<String> = Vec::new();
    let mut any = false;
    for log in LOGS {
        for f in logging::files(ctx, log) {
            any = true;
            if let Ok(text) = std::fs::read_to_string(&f) {
                lines.extend(text.lines().map(str::to_string));
            }
        }
    }
    if !any && !follow {
        let _ = writeln!(
            err,
            "no logs yet in {} (the daemon and the TUI write them)",
            logging::dir(ctx).display()
        );
        return exit::OK;
    }
    // Each line starts with its RFC 3339 time: sorting the text sorts the time.
    lines.sort();
    for l in lines.iter().filter(|l| name.is_none_or(|n| about(l, n))) {
        let _ = writeln!(out, "{}", crate::text::escape(l));
    }
    let _ = out.flush();
    if !follow {
        return exit::OK;
    }
    let mut ends: Vec<(PathBuf, u64)> = LOGS
        .iter()
        .map(|l| {
            let p = logging::dir(ctx).join(l);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, len)
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return exit::OK,
            _ = tick.tick() => {}
        }
        for (path, end) in &mut ends {
            let len = std::fs::metadata(&*path).map(|m| m.len()).unwrap_or(0);
            // A rotated file starts again from 0.
            if len < *end {
                *end = 0;
            }
            if len == *end {
                continue;
            }
            let Ok(mut f) = std::fs::File::open(&*path) else {
                continue;
            };
            if f.seek(SeekFrom::Start(*end)).is_err() {
                continue;
            }
            let mut text = String::new();
            let _ = f.take(len - *end).read_to_string(&mut text);
            *end = len;
            for l in text.lines().filter(|l| name.is_none_or(|n| about(l, n))) {
                let _ = writeln!(out, "{}", crate::text::escape(l));
            }
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::about;

    #[test]
    fn lines_about_a_tunnel() {
        let l = "2026-11-30T15:00:00.1Z  INFO up tunnel=orders";
        assert!(about(l, "orders"));
        assert!(!about(l, "order"));
        assert!(!about("2026 INFO something tunnel=ordersx", "orders"));
    }
}
