//! `warren service install|uninstall|status NAME...`: a systemd unit (user, or system with
//! `--system`) that runs `warren up NAME...` in the foreground, restarted on failure. The
//! template is assets/warren.service.in. The enable / start commands are printed, and run
//! only with `--now`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::exit;
use crate::config::{Catalog, Context, Paths};

const TEMPLATE: &str = include_str!("../../assets/warren.service.in");

/// The connections' names as one file-name-safe word: `orders-billing` (anything but
/// letters, digits, `-` and `_` becomes `-`). The systemd unit and the LaunchAgent use it.
pub fn safe_names(names: &[String]) -> String {
    names
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
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `warren-orders.service`, or `warren-orders-billing.service` for several.
pub fn unit_name(names: &[String]) -> String {
    format!("warren-{}.service", safe_names(names))
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

/// Who a system unit runs as, and what it may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemUser {
    pub name: String,
    /// Directories (or files) the tunnels write: warren's state (logs) and the known_hosts
    /// files host keys are recorded in. Everything else is read-only to the unit.
    pub writes: Vec<PathBuf>,
    /// Why the unit cannot make the home read-only (a connection runs a command, which may
    /// keep credentials or caches there), if so.
    pub runs_commands: Option<String>,
}

/// The unit's text for these connections: a user unit (`system` is `None`), or a system
/// unit that runs as `system`'s user, sandboxed (systemd.exec(5)).
pub fn unit(
    exe: &Path,
    paths: &Paths,
    names: &[String],
    on_demand: bool,
    system: Option<&SystemUser>,
) -> String {
    let exec = argv(exe, paths, names, on_demand)
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    TEMPLATE
        .replace("@NAMES@", &names.join(", "))
        .replace("@EXEC@", &exec)
        .replace("@SYSTEM@\n", &system.map(hardening).unwrap_or_default())
        .replace(
            "@WANTED_BY@",
            if system.is_some() {
                "multi-user.target"
            } else {
                "default.target"
            },
        )
}

/// The service's command line: `warren [--ssh-config ..] [--config ..] [--known-hosts ..] up
/// [--on-demand] NAME...`, the files as this run was given them.
pub fn argv(exe: &Path, paths: &Paths, names: &[String], on_demand: bool) -> Vec<String> {
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
    if on_demand {
        argv.push("--on-demand".into());
    }
    argv.extend(names.iter().cloned());
    argv
}

/// The `[Service]` lines of a system unit: its user, and a sandbox that leaves warren the
/// network, its state directory and its known_hosts files.
fn hardening(u: &SystemUser) -> String {
    let mut s = format!(
        "User={}\n# The sandbox (systemd.exec(5)): tunnels need the network, warren's state \
         directory\n# and the known_hosts files host keys are recorded in; nothing else is \
         written.\nNoNewPrivileges=yes\nProtectSystem=strict\n",
        u.name
    );
    match &u.runs_commands {
        None => s.push_str("ProtectHome=read-only\nMemoryDenyWriteExecute=yes\n"),
        Some(why) => s.push_str(&format!(
            "# No ProtectHome=read-only or MemoryDenyWriteExecute: {why},\n# which may keep \
             credentials or caches in the home, or compile code as it runs.\n"
        )),
    }
    if !u.writes.is_empty() {
        let paths: Vec<String> = u
            .writes
            .iter()
            .map(|p| format!("-{}", quote(&p.display().to_string())))
            .collect();
        s.push_str(&format!("ReadWritePaths={}\n", paths.join(" ")));
    }
    s.push_str(
        "PrivateTmp=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\n\
         ProtectClock=yes\nProtectHostname=yes\nRestrictSUIDSGID=yes\nRestrictRealtime=yes\n\
         RestrictNamespaces=yes\nLockPersonality=yes\nSystemCallArchitectures=native\n\
         CapabilityBoundingSet=\nAmbientCapabilities=\n\
         RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\nUMask=0077\n",
    );
    s
}

/// Why root's systemd should not start this binary: it, or a directory above it, can be
/// replaced by someone other than root (owned by another user, or writable by group or
/// others outside a sticky directory).
pub fn replaceable(exe: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    for p in exe.ancestors().collect::<Vec<_>>().into_iter().rev() {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => return Some(format!("{}: {e}", p.display())),
        };
        let mode = meta.mode();
        if meta.uid() != 0 {
            let who = crate::config::context::passwd_entry(meta.uid())
                .map(|(n, _)| n)
                .unwrap_or_default();
            return Some(format!(
                "{} belongs to {who} (uid {}), who could replace it",
                p.display(),
                meta.uid()
            ));
        }
        // In a sticky directory (/tmp) only an entry's owner may replace it, and the entry
        // below is checked to be root's.
        let sticky = meta.is_dir() && mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !sticky {
            return Some(format!(
                "{} is writable by {} (mode {:04o})",
                p.display(),
                if mode & 0o002 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                mode & 0o7777
            ));
        }
    }
    None
}

/// Who a system unit runs as: `--user`, else the user who ran `sudo`; never root (tunnels
/// need no privilege, and root's unit would read the user's files as root).
fn system_user(explicit: Option<&str>, ctx: &Context) -> Result<(String, u32, PathBuf), String> {
    let name = explicit
        .map(str::to_string)
        .or_else(|| ctx.var("SUDO_USER").map(str::to_string))
        .or_else(|| (ctx.uid != 0).then(|| ctx.local_user.clone()))
        .unwrap_or_default();
    if name.is_empty() {
        return Err(
            "a system unit runs the tunnels as a user, and warren cannot tell which: \
             run it with sudo from that user's account, or name one with --user NAME"
                .into(),
        );
    }
    let Some((uid, home)) = crate::config::context::user_entry(&name) else {
        return Err(format!(
            "no user named {} (getpwnam)",
            crate::text::escape(&name)
        ));
    };
    if uid == 0 {
        return Err(
            "warren will not install a system unit that runs as root: tunnels need no \
             privilege; name the user with --user NAME"
                .into(),
        );
    }
    Ok((name, uid, PathBuf::from(home)))
}

/// The facts the unit's user evaluates the configs with: their home and uid, not root's
/// XDG directories, and no command run (warren, as root, reads files that user controls).
fn as_user(ctx: &Context, name: &str, uid: u32, home: PathBuf) -> Context {
    let mut c = ctx.clone();
    for v in [
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
        "XDG_RUNTIME_DIR",
        "XDG_DATA_HOME",
        "SSH_AUTH_SOCK",
    ] {
        c.env.remove(v);
    }
    c.env.insert("HOME".into(), home.display().to_string());
    c.env.insert("USER".into(), name.to_string());
    c.env
        .insert(crate::config::context::NO_EXEC_VAR.into(), "1".into());
    c.home = home.clone();
    c.user_home = home;
    c.local_user = name.to_string();
    c.uid = uid;
    c
}

fn systemctl(system: bool) -> &'static str {
    if system {
        "systemctl"
    } else {
        "systemctl --user"
    }
}

/// What `warren service install` was asked for.
pub struct Install<'a> {
    pub names: &'a [String],
    pub system: bool,
    /// The user a system unit runs as (`--user`).
    pub user: Option<&'a str>,
    pub now: bool,
    /// Print the unit instead of writing it.
    pub print: bool,
    /// The service opens each session when a client first connects (`up --on-demand`).
    pub on_demand: bool,
}

pub fn install(
    catalog: &Catalog,
    ctx: &Context,
    paths: &Paths,
    ask: &Install,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let names = ask.names;
    if cfg!(target_os = "macos") && ask.system {
        let _ = writeln!(
            err,
            "error: --system is for systemd; on macOS warren installs a LaunchAgent of yours\n  fix: run it without --system"
        );
        return exit::BAD_CONFIG;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(err, "error: cannot find warren's own binary: {e}");
            return exit::FAILED;
        }
    };
    let mut user_catalog = None;
    let system = if ask.system {
        let (name, uid, home) = match system_user(ask.user, ctx) {
            Ok(u) => u,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return exit::BAD_CONFIG;
            }
        };
        if let Some(why) = replaceable(&exe) {
            let _ = writeln!(
                err,
                "error: root's systemd would start {}, but {why}\n  fix: install warren where \
                 only root can write, e.g. `sudo install -m 0755 {} /usr/local/bin/warren`, and \
                 run that one",
                exe.display(),
                exe.display()
            );
            return exit::BAD_CONFIG;
        }
        let uctx = std::sync::Arc::new(as_user(ctx, &name, uid, home));
        let c = Catalog::load(paths, std::sync::Arc::clone(&uctx));
        user_catalog = Some(c);
        Some((name, uctx))
    } else if ask.user.is_some() {
        let _ = writeln!(
            err,
            "error: --user is for a system unit (--system); a user unit runs as you"
        );
        return exit::BAD_CONFIG;
    } else {
        None
    };
    let catalog = user_catalog.as_ref().unwrap_or(catalog);
    let mut conns = Vec::new();
    for n in names {
        match catalog.find(n) {
            Ok(c) => conns.push(c),
            Err(e) => {
                let _ = writeln!(err, "error: {}", crate::text::escape_lines(&e.to_string()));
                return exit::BAD_CONFIG;
            }
        }
    }
    let system = system.map(|(name, uctx)| {
        let mut writes = vec![crate::logging::dir(&uctx)];
        let mut runs_commands = None;
        for c in &conns {
            for h in &c.hops {
                if let Some(kh) = h.known_hosts_files.value.first()
                    && !writes.contains(kh)
                {
                    writes.push(kh.clone());
                }
                if runs_commands.is_none()
                    && (h.proxy_command.is_some()
                        || h.known_hosts_command.is_some()
                        || h.certificate_command.is_some())
                {
                    runs_commands = Some(format!("{} runs a command", c.display_name));
                }
            }
        }
        SystemUser {
            name,
            writes,
            runs_commands,
        }
    });
    if cfg!(target_os = "macos") {
        return super::launchd::install(
            ctx,
            &argv(&exe, paths, names, ask.on_demand),
            names,
            ask,
            out,
            err,
        );
    }
    let dir = unit_dir(ctx, ask.system);
    let name = unit_name(names);
    let path = dir.join(&name);
    let text = unit(&exe, paths, names, ask.on_demand, system.as_ref());
    if ask.print {
        let _ = out.write_all(text.as_bytes());
        return exit::OK;
    }
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644));
    if let Err(e) = written {
        let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
        let _ = writeln!(
            err,
            "  fix: {}",
            if ask.system {
                "run as root for --system"
            } else {
                "check that the directory is writable"
            }
        );
        return exit::FAILED;
    }
    let sc = systemctl(ask.system);
    let commands = [
        format!("{sc} daemon-reload"),
        format!("{sc} enable --now {name}"),
    ];
    let _ = writeln!(out, "wrote {}", path.display());
    if let Some(u) = &system {
        let _ = writeln!(out, "it runs as {}, sandboxed", u.name);
    }
    if ask.now {
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
    if cfg!(target_os = "macos") {
        return super::launchd::uninstall(ctx, names, out, err);
    }
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
    if cfg!(target_os = "macos") {
        return super::launchd::status(ctx, names, out);
    }
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
