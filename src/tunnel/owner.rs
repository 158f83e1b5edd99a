//! Who holds a local TCP port, as far as this user can see.
//!
//! - Linux: the listening socket from /proc/net/tcp and tcp6, then the process whose open
//!   files hold that socket (/proc/PID/fd). A process of another user is not visible to us:
//!   then only its user is known.
//! - macOS: `lsof -nP -iTCP:PORT -sTCP:LISTEN -F pcun` (no /proc there; libproc's bindings
//!   are unmaintained), in lsof's field output so that a program name with spaces reads
//!   whole; bounded in time. lsof shows another user's sockets only to root.
//! - Elsewhere nothing is known, and [`find_command`] is all warren can offer.

/// The holder of a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A process we can see.
    Process { pid: u32, program: String },
    /// A socket of another user's process (its uid), whose process we cannot see.
    OtherUser { uid: u32 },
}

impl Owner {
    /// `postgres (pid 811)`, `another user's process (uid 1001)`.
    pub fn describe(&self) -> String {
        match self {
            Owner::Process { pid, program } => format!("{program} (pid {pid})"),
            Owner::OtherUser { uid } => format!("another user's process (uid {uid})"),
        }
    }
}

/// The command that shows who listens on `port` on this system, for a hint when warren
/// cannot see it.
pub fn find_command(port: u16) -> String {
    if cfg!(target_os = "linux") {
        format!("sudo ss -ltnp 'sport = :{port}'")
    } else {
        format!("sudo lsof -nP -iTCP:{port} -sTCP:LISTEN")
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::Path;

    /// A listening socket's inode and owner uid for `port` (any address), from /proc/net/tcp*.
    fn listening(port: u16) -> Option<(u64, u32)> {
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st tx:rx tr:when retr uid timeout inode
                if f.len() < 10 || f[3] != "0A" {
                    continue;
                }
                let Some((_, p)) = f[1].rsplit_once(':') else {
                    continue;
                };
                if u16::from_str_radix(p, 16).ok() != Some(port) {
                    continue;
                }
                if let (Ok(uid), Ok(inode)) = (f[7].parse::<u32>(), f[9].parse::<u64>()) {
                    return Some((inode, uid));
                }
            }
        }
        None
    }

    /// The process holding socket `inode`, if we can see it.
    fn process_of(inode: u64) -> Option<(u32, String)> {
        let want = format!("socket:[{inode}]");
        let procs = std::fs::read_dir("/proc").ok()?;
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if std::fs::read_link(fd.path()).is_ok_and(|l| l == Path::new(&want)) {
                    let program = std::fs::read_to_string(p.path().join("comm"))
                        .map(|c| c.trim().to_string())
                        .unwrap_or_else(|_| "?".into());
                    return Some((pid, program));
                }
            }
        }
        None
    }

    pub fn of_port(port: u16) -> Option<super::Owner> {
        let (inode, uid) = listening(port)?;
        Some(match process_of(inode) {
            Some((pid, program)) => super::Owner::Process { pid, program },
            None => super::Owner::OtherUser { uid },
        })
    }
}

#[cfg(target_os = "macos")]
mod macos {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// lsof reads every process's files: on a busy machine it takes a while, never long.
    const LIMIT: Duration = Duration::from_secs(3);

    pub fn of_port(port: u16) -> Option<super::Owner> {
        let mut child = Command::new("lsof")
            .args(super::lsof_args(port))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + LIMIT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
        super::parse_lsof_fields(&out)
    }
}

/// Who listens on `port`, as far as this user can see.
pub fn of_port(port: u16) -> Option<Owner> {
    #[cfg(target_os = "linux")]
    return linux::of_port(port);
    #[cfg(target_os = "macos")]
    return macos::of_port(port);
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = port;
        None
    }
}

/// lsof's arguments for who listens on TCP `port`, in the field output
/// [`parse_lsof_fields`] reads.
pub fn lsof_args(port: u16) -> [String; 5] {
    [
        "-nP".into(),
        format!("-iTCP:{port}"),
        "-sTCP:LISTEN".into(),
        "-F".into(),
        "pcun".into(),
    ]
}

/// The first process in lsof's field output (`-F pcun`: lines `p<pid>`, `c<command>`,
/// `u<uid>`, then its sockets as `n<address>`). Capped: a hostile or huge output is read no
/// further than its first process.
pub fn parse_lsof_fields(text: &str) -> Option<Owner> {
    let (mut pid, mut program, mut uid) = (None, None, None);
    for line in text.lines().take(64) {
        let Some(tag) = line.chars().next() else {
            continue;
        };
        let value = &line[tag.len_utf8()..];
        match tag {
            'p' if pid.is_some() => break,
            'p' => pid = value.parse::<u32>().ok(),
            'c' => program = Some(crate::text::escape(value).into_owned()),
            'u' => uid = value.parse::<u32>().ok(),
            _ => {}
        }
    }
    match (pid, program, uid) {
        (Some(pid), program, _) => Some(Owner::Process {
            pid,
            program: program.unwrap_or_else(|| "?".into()),
        }),
        (None, _, Some(uid)) => Some(Owner::OtherUser { uid }),
        _ => None,
    }
}

/// The first port after `port` (within 100) that binds on `host`.
pub fn next_free(host: &str, port: u16) -> Option<u16> {
    (1..=100u16)
        .filter_map(|i| port.checked_add(i))
        .find(|p| std::net::TcpListener::bind((host, *p)).is_ok())
}

/// Why a local port could not be bound, as the tunnel's failure says it: who holds it, and
/// the next free port when there is one. [`busy_parts`] reads it back (the TUI offers the
/// free port from it).
pub fn busy_message(who: &str, free: Option<u16>) -> String {
    let free = free
        .map(|p| format!("; {p} is free (warren up --port-fallback takes it)"))
        .unwrap_or_default();
    format!("the port is in use by {who}{free}")
}

/// What [`busy_message`] said, from a failure that contains it: (who, the free port).
pub fn busy_parts(error: &str) -> Option<(String, u16)> {
    let (_, rest) = error.split_once("in use by ")?;
    let (who, rest) = rest.split_once("; ")?;
    let free = rest.split_whitespace().next()?.parse().ok()?;
    rest.contains("is free").then(|| (who.to_string(), free))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded with `lsof -nP -iTCP:PORT -sTCP:LISTEN -F pcun` (lsof 4.95 on Linux; the
    /// field output is lsof's own, the same on macOS): a program named "my db server" on
    /// [::1] and 127.0.0.1, and python3 on every IPv6 address.
    const LSOF_SPACES: &str = "p6821\ncmy db server\nu0\nn[::1]:45432\nn127.0.0.1:45432\n";
    const LSOF_ANY6: &str = "p6885\ncpython3\nu0\nn*:45433\n";

    #[test]
    fn lsof_field_output_names_the_process() {
        assert_eq!(
            parse_lsof_fields(LSOF_ANY6),
            Some(Owner::Process {
                pid: 6885,
                program: "python3".into()
            })
        );
        assert_eq!(
            parse_lsof_fields(LSOF_SPACES).map(|o| o.describe()),
            Some("my db server (pid 6821)".into())
        );
        // Two processes: the first; nothing listening: nothing; a name with an escape in it
        // is shown escaped.
        let two = format!("{LSOF_SPACES}{LSOF_ANY6}");
        assert_eq!(
            parse_lsof_fields(&two).map(|o| o.describe()),
            Some("my db server (pid 6821)".into())
        );
        assert_eq!(parse_lsof_fields(""), None);
        let evil = parse_lsof_fields("p1\ncx\u{1b}[2Jy\n").map(|o| o.describe());
        assert!(evil.is_some_and(|d| !d.contains('\u{1b}')));
    }

    #[test]
    fn the_find_command_is_the_systems_own() {
        let c = find_command(5432);
        if cfg!(target_os = "linux") {
            assert_eq!(c, "sudo ss -ltnp 'sport = :5432'");
        } else {
            assert!(c.contains("lsof -nP -iTCP:5432 -sTCP:LISTEN"));
        }
    }

    #[test]
    fn a_port_we_hold_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        match of_port(port) {
            Some(Owner::Process { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        let next = next_free("127.0.0.1", port).expect("a free port");
        assert!(next > port);
    }

    #[test]
    fn a_busy_message_reads_back() {
        let m = format!(
            "cannot listen on 127.0.0.1:1: {}",
            busy_message("python3 (pid 8)", Some(2))
        );
        assert_eq!(busy_parts(&m), Some(("python3 (pid 8)".into(), 2)));
        assert_eq!(busy_parts(&busy_message("python3 (pid 8)", None)), None);
    }
}
