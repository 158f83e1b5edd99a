//! `warren logs [NAME] [-f]`: the daemon's and the TUI's logs (with their rotated files),
//! merged in time order; with NAME, only the lines about that tunnel; with `-f`, new lines
//! as they are written, until Ctrl-C. `warren logs --audit [--json]`: the audit log (see
//! [`crate::audit`]), one aligned line a record, or its JSON lines as they are.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::exit;
use crate::audit;
use crate::config::Context;
use crate::logging;
use crate::text::escape;

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

/// `warren logs --audit [NAME] [--json]`: the audit log's records (NAME's only, with a
/// NAME), oldest first. A line that is not a record is an error naming its file and line
/// (exit 2), and the others are still shown.
pub fn audit(
    ctx: &Context,
    name: Option<&str>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let files = logging::files(ctx, audit::FILE);
    if files.is_empty() {
        let _ = writeln!(
            err,
            "no audit log yet in {} (warren writes it once a tunnel is opened)",
            logging::dir(ctx).display()
        );
        return exit::OK;
    }
    let mut code = exit::OK;
    // Each record with its line as written.
    let mut records: Vec<(String, audit::Entry)> = Vec::new();
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: {}: {e}", f.display());
                code = exit::BAD_CONFIG;
                continue;
            }
        };
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<audit::Entry>(line) {
                Ok(e) if name.is_none_or(|n| e.name == n) => records.push((line.to_string(), e)),
                Ok(_) => {}
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "error: {}:{}: not an audit record ({}); it is skipped (a file edited by hand? move it away to start afresh)",
                        f.display(),
                        i + 1,
                        escape(&e.to_string())
                    );
                    code = exit::BAD_CONFIG;
                }
            }
        }
    }
    if json {
        for (line, _) in &records {
            let _ = writeln!(out, "{line}");
        }
    } else {
        let width = records
            .iter()
            .map(|(_, e)| escape(&e.name).chars().count())
            .max()
            .unwrap_or(0);
        for (_, e) in &records {
            let line = format!(
                "{:<24}  {:<15}  {:<width$}  {}",
                escape(&e.time),
                e.kind.event(),
                escape(&e.name),
                escape(&e.kind.detail())
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let _ = out.flush();
    code
}

#[cfg(test)]
mod tests {
    use super::about;

    #[test]
    fn the_audit_log_aligned_escaped_and_a_bad_line_named() {
        use crate::audit::{Entry, Kind, Log};
        let home = tempfile::tempdir().expect("home");
        let ctx = crate::config::Context::new(home.path().to_path_buf(), "me", Default::default());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(super::audit(&ctx, None, false, &mut out, &mut err), 0);
        assert!(String::from_utf8_lossy(&err).contains("no audit log yet"));
        let log = Log::for_context(&ctx);
        log.write(&Entry::new("orders", Kind::Up)).expect("write");
        log.write(&Entry::new(
            "users\x1b[31m",
            Kind::ClientFailed {
                reason: "bell\x07".into(),
            },
        ))
        .expect("write");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(super::audit(&ctx, None, false, &mut out, &mut err), 0);
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("up               orders"), "{text}");
        assert!(lines[1].contains("users\\x1b[31m  bell\\x07"), "{text}");
        assert!(!text.contains('\x1b'), "{text}");

        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .expect("open");
        std::io::Write::write_all(&mut f, b"{\"torn\n").expect("write");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            super::audit(&ctx, Some("orders"), true, &mut out, &mut err),
            2
        );
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.starts_with('{') && text.contains("\"event\":\"up\""),
            "{text}"
        );
        let err = String::from_utf8_lossy(&err);
        assert!(err.contains("audit.jsonl:3: not an audit record"), "{err}");
    }

    #[test]
    fn lines_about_a_tunnel() {
        let l = "2026-11-30T15:00:00.1Z  INFO up tunnel=orders";
        assert!(about(l, "orders"));
        assert!(!about(l, "order"));
        assert!(!about("2026 INFO something tunnel=ordersx", "orders"));
    }
}
