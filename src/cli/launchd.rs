//! `warren service` on macOS: a launchd LaunchAgent (`~/Library/LaunchAgents/LABEL.plist`)
//! that runs `warren up NAME...` at login and again whenever it exits with a failure
//! (`KeepAlive` / `SuccessfulExit = false`, as systemd's `Restart=on-failure`), logging to
//! `service.log` in warren's state directory, where `warren logs` reads it. It is loaded with
//! `launchctl bootstrap gui/UID PLIST` and removed with `launchctl bootout gui/UID/LABEL`.
//!
//! The plist is written here as text (XML property list 1.0, every string escaped): it has
//! a fixed shape of a few keys, and the tests check it with a real parser (Python's
//! `plistlib`), so a plist crate would add a dependency for no gain.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::exit;
use crate::config::Context;

/// The environment variable that tells `warren up` it runs as a service: it logs to
/// [`LOG`] in the state directory.
pub const SERVICE_ENV: &str = "WARREN_SERVICE";
/// The log a service's `warren up` writes (and `warren logs` reads).
pub const LOG: &str = "service.log";

/// `dev.warren.orders`, or `dev.warren.orders-billing` for several.
pub fn label(names: &[String]) -> String {
    format!("dev.warren.{}", super::service::safe_names(names))
}

/// Where the agent's plist goes.
pub fn agent_path(ctx: &Context, names: &[String]) -> PathBuf {
    ctx.home
        .join("Library/LaunchAgents")
        .join(format!("{}.plist", label(names)))
}

/// `s` as XML character data.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no other control characters than tab, CR and LF.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The LaunchAgent for `argv` (the program and its arguments), logging under `log_dir`.
pub fn plist(label: &str, argv: &[String], log_dir: &Path) -> String {
    let args: String = argv
        .iter()
        .map(|a| format!("        <string>{}</string>\n", xml(a)))
        .collect();
    let log = xml(&log_dir.join(LOG).display().to_string());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `warren service install`: runs the tunnels at login, restarted on failure. -->
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>{label}</string>
    <key>ProgramArguments</key>
    <array>
{args}    </array>
    <key>EnvironmentVariables</key>
    <dict>
        <key>{SERVICE_ENV}</key>
        <string>1</string>
    </dict>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <dict>
        <key>SuccessfulExit</key>
        <false/>
    </dict>
    <key>ThrottleInterval</key>
    <integer>5</integer>
    <key>StandardOutPath</key>
    <string>{log}</string>
    <key>StandardErrorPath</key>
    <string>{log}</string>
    <key>SoftResourceLimits</key>
    <dict>
        <key>NumberOfFiles</key>
        <integer>65536</integer>
    </dict>
</dict>
</plist>
"#,
        label = xml(label),
    )
}

/// The launchctl domain of the user's GUI session.
pub fn domain(uid: u32) -> String {
    format!("gui/{uid}")
}

/// What `launchctl print gui/UID/LABEL` says the agent is doing: its `state = ...` line
/// (`running`, `not running`, ...), with the last exit code when it has one.
pub fn printed_state(text: &str) -> Option<String> {
    let field = |key: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))
            .map(|v| crate::text::escape(v.trim()).into_owned())
    };
    let state = field("state = ")?;
    Some(match field("last exit code = ") {
        Some(code) if state != "running" => format!("{state} (last exit code {code})"),
        _ => state,
    })
}

/// Runs `launchctl` with `args`; whether it succeeded, and what it printed.
fn launchctl(args: &[&str]) -> (bool, String) {
    match std::process::Command::new("launchctl").args(args).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("launchctl: {e}")),
    }
}

/// `warren service install` on macOS: writes the agent, and loads it with `--now`.
pub fn install(
    ctx: &Context,
    argv: &[String],
    names: &[String],
    ask: &super::service::Install,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let label = label(names);
    let text = plist(&label, argv, &crate::logging::dir(ctx));
    if ask.print {
        let _ = out.write_all(text.as_bytes());
        return exit::OK;
    }
    let path = agent_path(ctx, names);
    let written = std::fs::create_dir_all(crate::logging::dir(ctx))
        .and_then(|_| std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/"))))
        .and_then(|_| crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644));
    if let Err(e) = written {
        let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
        return exit::FAILED;
    }
    let _ = writeln!(out, "wrote {}", path.display());
    let load = format!("launchctl bootstrap {} {}", domain(ctx.uid), path.display());
    if ask.now {
        let (ok, said) = launchctl(&["bootstrap", &domain(ctx.uid), &path.display().to_string()]);
        if !ok {
            let _ = writeln!(
                err,
                "error: `{load}` failed: {}",
                crate::text::escape_lines(said.trim())
            );
            return exit::FAILED;
        }
        let _ = writeln!(out, "started {label}");
    } else {
        let _ = writeln!(out, "to start it now and at every login:\n  {load}");
    }
    exit::OK
}

/// `warren service uninstall` on macOS: unloads the agent (if loaded) and removes it.
pub fn uninstall(ctx: &Context, names: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let label = label(names);
    let path = agent_path(ctx, names);
    let target = format!("{}/{label}", domain(ctx.uid));
    // Not loaded is fine: the file is what makes it start at login.
    let (unloaded, _) = launchctl(&["bootout", &target]);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            let _ = writeln!(
                out,
                "removed {}{}",
                path.display(),
                if unloaded { " and stopped it" } else { "" }
            );
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}: {e}", path.display());
            exit::FAILED
        }
    }
}

/// `warren service status` on macOS: installed or not, and what launchd says of it.
pub fn status(ctx: &Context, names: &[String], out: &mut dyn Write) -> i32 {
    let label = label(names);
    let path = agent_path(ctx, names);
    if !path.exists() {
        let _ = writeln!(
            out,
            "{label}: not installed ({} does not exist)",
            path.display()
        );
        return exit::FAILED;
    }
    let (ok, said) = launchctl(&["print", &format!("{}/{label}", domain(ctx.uid))]);
    let state = match (ok, printed_state(&said)) {
        (true, Some(s)) => s,
        (true, None) => "loaded (launchctl print gave no state)".into(),
        (false, _) => "not loaded (launchctl print does not know it)".into(),
    };
    let _ = writeln!(out, "{label}: installed at {}; {state}", path.display());
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_paths() {
        assert_eq!(label(&["orders".into()]), "dev.warren.orders");
        assert_eq!(
            label(&["epoch:db".into(), "b c".into()]),
            "dev.warren.epoch-db-b-c"
        );
        let ctx = Context::new("/Users/me".into(), "me", Default::default());
        assert_eq!(
            agent_path(&ctx, &["orders".into()]),
            Path::new("/Users/me/Library/LaunchAgents/dev.warren.orders.plist")
        );
    }

    #[test]
    fn launchctl_print_is_read_for_the_state() {
        // The lines launchctl(1) prints for an agent, in its `key = value` form, cut to what is
        // read (written from its manual: there is no Mac here to record one).
        let running = "gui/501/dev.warren.orders = {\n\tactive count = 1\n\tpath = /Users/me/Library/LaunchAgents/dev.warren.orders.plist\n\tstate = running\n\n\tprogram = /usr/local/bin/warren\n\tpid = 4242\n}\n";
        assert_eq!(printed_state(running).as_deref(), Some("running"));
        let failed =
            "gui/501/dev.warren.orders = {\n\tstate = not running\n\tlast exit code = 2\n}\n";
        assert_eq!(
            printed_state(failed).as_deref(),
            Some("not running (last exit code 2)")
        );
        assert_eq!(printed_state("Could not find service"), None);
    }
}
