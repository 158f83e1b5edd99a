//! `warren service install|uninstall|status NAME...`: a systemd unit (user, or system with
//! `--system`) that runs `warren up NAME...` in the foreground, restarted on failure. The
//! template is assets/warren.service.in. The enable / start commands are printed, and run
//! only with `--now`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::exit;
use crate::config::{Catalog, Context, Paths};

const TEMPLATE: &str = include_str!("../../assets/warren.service.in");

/// `warren-orders.service`, or `warren-orders-billing.service` for several.
pub fn unit_name(names: &[String]) -> String {
    let safe: Vec<String> = names
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        })
        .collect();
    format!("warren-{}.service", safe.join("-"))
}

fn unit_dir(ctx: &Context, system: bool) -> PathBuf {
    if system {
        return PathBuf::from("/etc/systemd/system");
    }
    let config = ctx
        .var("XDG_CONFIG_HOME")
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.home.join(".config"));
    config.join("systemd/user")
}

/// Quotes an argument for systemd's ExecStart (double quotes, escaped).
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=@+".contains(c))
    {
        arg.to_string()
    } else {
        format!(
            "\"{}\"",
            arg.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('%', "%%")
        )
    }
}

/// The unit's text for these connections.
pub fn unit(exe: &Path, paths: &Paths, names: &[String], system: bool) -> String {
    let mut argv = vec![exe.display().to_string()];
    for (flag, v) in [
        ("--ssh-config", &paths.ssh_config),
        ("--config", &paths.epoch),
        ("--known-hosts", &paths.known_hosts),
    ] {
        if let Some(v) = v {
            argv.push(flag.into());
            argv.push(v.display().to_string());
        }
    }
    argv.push("up".into());
    argv.extend(names.iter().cloned());
    let exec = argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    TEMPLATE
        .replace("@NAMES@", &names.join(", "))
        .replace("@EXEC@", &exec)
        .replace(
            "@WANTED_BY@",
            if system {
                "multi-user.target"
            } else {
                "default.target"
            },
        )
}

fn systemctl(system: bool) -> &'static str {
    if system {
        "systemctl"
    } else {
        "systemctl --user"
    }
}

#[allow(clippy::too_many_arguments)]
pub fn install(
    catalog: &Catalog,
    ctx: &Context,
    paths: &Paths,
    names: &[String],
    system: bool,
    now: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    for n in names {
        if let Err(e) = catalog.find(n) {
            let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
            return exit::BAD_CONFIG;
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(err, "error: cannot find warren's own binary: {e}");
            return exit::FAILED;
        }
    };
    let dir = unit_dir(ctx, system);
    let name = unit_name(names);
    let path = dir.join(&name);
    let text = unit(&exe, paths, names, system);
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644));
    if let Err(e) = written {
        let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
        let _ = writeln!(
            err,
            "  fix: {}",
            if system {
                "run as root for --system"
            } else {
                "check that the directory is writable"
            }
        );
        return exit::FAILED;
    }
    let sc = systemctl(system);
    let commands = [
        format!("{sc} daemon-reload"),
        format!("{sc} enable --now {name}"),
    ];
    let _ = writeln!(out, "wrote {}", path.display());
    if now {
        for c in &commands {
            let st = std::process::Command::new("sh").arg("-c").arg(c).status();
            if !st.is_ok_and(|s| s.success()) {
                let _ = writeln!(err, "error: `{c}` failed");
                return exit::FAILED;
            }
        }
        let _ = writeln!(out, "started {name}");
    } else {
        let _ = writeln!(
            out,
            "to enable and start it:\n  {}\n  {}",
            commands[0], commands[1]
        );
    }
    exit::OK
}

pub fn uninstall(
    ctx: &Context,
    names: &[String],
    system: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let name = unit_name(names);
    let path = unit_dir(ctx, system).join(&name);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            let sc = systemctl(system);
            let _ = writeln!(
                out,
                "removed {}\nif it was enabled: {sc} disable --now {name} && {sc} daemon-reload",
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}: {e}", path.display());
            exit::FAILED
        }
    }
}

pub fn status(ctx: &Context, names: &[String], system: bool, out: &mut dyn Write) -> i32 {
    let name = unit_name(names);
    let path = unit_dir(ctx, system).join(&name);
    if !path.exists() {
        let _ = writeln!(
            out,
            "{name}: not installed ({} does not exist)",
            path.display()
        );
        return exit::FAILED;
    }
    let active = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{} is-active {name}", systemctl(system)))
        .output();
    let state = active
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown (no systemctl)".into());
    let _ = writeln!(out, "{name}: installed at {}; {state}", path.display());
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quoting() {
        assert_eq!(unit_name(&["orders".into()]), "warren-orders.service");
        assert_eq!(
            unit_name(&["epoch:db".into(), "b c".into()]),
            "warren-epoch-db-b-c.service"
        );
        assert_eq!(quote("/usr/bin/warren"), "/usr/bin/warren");
        assert_eq!(quote("/my dir/x%"), "\"/my dir/x%%\"");
    }
}
