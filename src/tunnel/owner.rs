//! Who holds a local TCP port: the listening socket from /proc/net/tcp and tcp6, then the
//! process whose open files hold that socket (/proc/PID/fd). A process of another user is
//! not visible to us: then only its user is known. Linux only; elsewhere nothing is known.

use std::path::Path;

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

/// Who listens on `port`, as far as this user can see.
pub fn of_port(port: u16) -> Option<Owner> {
    let (inode, uid) = listening(port)?;
    match process_of(inode) {
        Some((pid, program)) => Some(Owner::Process { pid, program }),
        None => Some(Owner::OtherUser { uid }),
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
