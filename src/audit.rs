//! The audit log: what warren did and who asked, one JSON object a line, in the state dir
//! next to the logs (`audit.jsonl`). On-call people read it with `warren logs --audit`.
//!
//! Why it is built like this:
//! - Several warrens write it at once (a foreground TUI or `warren up`, and the daemon): each
//!   record is one `write` of one whole line to a file opened `O_APPEND`, under an exclusive
//!   `flock` on `audit.lock` that also covers rotation, so no line is torn, interleaved or
//!   lost in a rename. Within a process a mutex does the same (a `flock` does not exclude
//!   threads sharing one descriptor).
//! - It is created 0600 and written only while it is still the user's own file with no
//!   access for others; otherwise nothing is written and a warning says how to fix it.
//! - It is capped at [`MAX_BYTES`] and rotated to `audit.jsonl.1` ... `.{KEEP}`.
//! - A failure to write it is a warning in the log, never a failed tunnel.
//! - No secret can reach it: a record is built from names, hosts, ports, users, key paths,
//!   fingerprints, counts and warren's own reason texts; nothing here takes a
//!   [`crate::config::Connection`] whole or formats one with Debug, and the property test
//!   below feeds passwords and passphrases through every kind of record.
//!
//! The engine, the tunnel layer, the ssh layer and the daemon record through the process's
//! one [`Log`] ([`install`]ed by the commands that run tunnels) with [`record`]; a process
//! that installed none (tests, `warren list`) records nothing. Who asked is recorded where
//! the request arrives: the daemon for its clients (with the pid and uid its socket saw),
//! the TUI and the headless commands for their own engines; the engine records what
//! happened (up, closed and why), the ssh layer logins and host-key decisions, the tunnel
//! layer each client connection. An on-demand open is one call where the first client
//! connection starts the session:
//! `audit::record(name, Kind::OnDemandOpen { peer })`, and its idle close
//! `audit::record(name, Kind::SessionClosed { reason })`.
//!
//! A record is written before [`record`] returns (a process that exits right after loses
//! nothing); the lock is held for one short write, so the wait is short too. The exception is
//! the one kind that comes at the rate clients connect ([`Kind::frequent`]: each client
//! connection's open, close and failure): those go to a writer thread that appends what has
//! queued up in one locked write, so a burst of short connections costs one append per batch
//! instead of two per connection on the tunnel's own threads. The thread gathers for
//! [`COALESCE`] after the first record of a batch and keeps its files open between batches (a
//! batch costs a lock, a stat, a write and an unlock; a file another warren rotated meanwhile
//! is opened again). Its queue is bounded
//! ([`QUEUE`]); when it is full the record is written at once instead (never dropped), and
//! [`flush`] (called as warren exits) waits for the queue to be written. Within a batch the
//! records keep their order; against the records written at once they may be a few
//! milliseconds late in the file, and each carries its own time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::config::Context;
use crate::config::model::Hop;
use crate::logging;

/// The file's name in the state dir.
pub const FILE: &str = "audit.jsonl";
/// The most one file holds before it is rotated.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept (`audit.jsonl.1` ... `audit.jsonl.KEEP`), as for the logs, so
/// [`logging::files`] lists them.
pub const KEEP: usize = logging::KEEP;
/// Records of the frequent kind waiting for the writer thread, at most. The queue is
/// allocated whole when it starts, so it holds boxes (8 bytes each), not records.
pub const QUEUE: usize = 4096;
/// The most records the writer thread appends in one write.
const BATCH: usize = 256;
/// How long the writer thread gathers records after the first of a batch.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(20);

/// One record: when, about which connection, what, and the warren process that wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub time: String,
    /// The connection (tunnel) name.
    pub name: String,
    #[serde(flatten)]
    pub kind: Kind,
    /// The warren process that wrote the record (the engine's, for what the engine did).
    pub pid: u32,
    pub uid: u32,
}

/// Who asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "client", rename_all = "snake_case")]
pub enum By {
    /// The TUI, running its own engine (the record's pid and uid are the TUI's).
    Tui,
    /// A headless command running its own engine.
    Cli { command: CliCommand },
    /// A client of the daemon, as the daemon's socket saw it (SO_PEERCRED).
    DaemonClient {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<i32>,
        uid: u32,
    },
    /// The daemon itself: reopening what it ran before it was restarted.
    DaemonRestore,
}

/// The headless commands that open tunnels in their own process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CliCommand {
    Up,
    Exec,
}

/// Why a tunnel closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Closed {
    /// A client asked (see the `close_requested` record before it), or warren stopped.
    Asked,
    /// Its own limit: idle_timeout or max_duration.
    Limit { reason: String },
    /// It failed (final).
    Failed { error: String },
}

/// What a person or a policy decided about a host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyDecision {
    /// Written to known_hosts (accept-new, or "yes, and remember").
    Recorded,
    /// Accepted for this session only.
    AcceptedOnce,
    /// A person said no.
    Rejected,
    /// The key differs from the one known: refused.
    ChangedRefused,
    /// Refused otherwise (unknown under strict checking, nobody to ask, revoked).
    Refused,
}

impl HostKeyDecision {
    /// The decision worth a record, from what the check did; `None` for a key that was
    /// simply known.
    pub fn of(
        recorded: bool,
        once: bool,
        rejected: bool,
        changed: bool,
        refused: bool,
    ) -> Option<HostKeyDecision> {
        Some(match () {
            _ if rejected => HostKeyDecision::Rejected,
            _ if refused && changed => HostKeyDecision::ChangedRefused,
            _ if refused => HostKeyDecision::Refused,
            _ if recorded => HostKeyDecision::Recorded,
            _ if once => HostKeyDecision::AcceptedOnce,
            _ => return None,
        })
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Kind {
    /// Someone asked for a tunnel to open.
    OpenRequested { by: By },
    /// Someone asked for a tunnel to close.
    CloseRequested { by: By },
    /// A client connection opened a tunnel's session (on-demand tunnels).
    OnDemandOpen { peer: String },
    /// The session under a tunnel closed while its listeners stay (an on-demand tunnel
    /// after its idle_timeout): it opens again on the next client connection.
    SessionClosed { reason: String },
    /// One hop logged in.
    Authenticated {
        hop: usize,
        host: String,
        user: String,
        method: String,
    },
    /// The tunnel's session is up.
    Up,
    /// The tunnel closed.
    Closed {
        #[serde(flatten)]
        why: Closed,
    },
    /// A host key decision that was not "already known".
    HostKey {
        host: String,
        key_type: String,
        fingerprint: String,
        decision: HostKeyDecision,
    },
    /// A client connection reached the far end.
    ClientOpened { peer: String, target: String },
    /// It ended, with what it carried.
    ClientClosed {
        peer: String,
        target: String,
        bytes_in: u64,
        bytes_out: u64,
    },
    /// A client connection that could not be served.
    ClientFailed { reason: String },
}

/// This process's uid.
fn own_uid() -> u32 {
    // SAFETY: getuid never fails and has no preconditions.
    unsafe { libc::getuid() }
}

impl Entry {
    /// A record made now by this process.
    pub fn new(name: &str, kind: Kind) -> Entry {
        Entry {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            name: name.to_string(),
            kind,
            pid: std::process::id(),
            uid: own_uid(),
        }
    }
}

impl std::fmt::Display for By {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            By::Tui => f.write_str("tui"),
            By::Cli { command } => {
                let c = match command {
                    CliCommand::Up => "up",
                    CliCommand::Exec => "exec",
                };
                write!(f, "cli {c}")
            }
            By::DaemonClient { pid: Some(p), uid } => write!(f, "daemon client pid {p} uid {uid}"),
            By::DaemonClient { pid: None, uid } => write!(f, "daemon client uid {uid}"),
            By::DaemonRestore => f.write_str("daemon restart"),
        }
    }
}

impl Kind {
    /// Hop `hop` logged in with `method` (as the authentication report names it: the
    /// method, or for a key its file's path or the agent key's comment; never what was
    /// typed).
    pub fn authenticated(hop: usize, h: &Hop, method: Option<&str>) -> Kind {
        Kind::Authenticated {
            hop,
            host: h.address(),
            user: h.user.value.clone(),
            method: method.unwrap_or("none").to_string(),
        }
    }

    /// Whether records of this kind come at the rate clients connect (written in batches).
    pub fn frequent(&self) -> bool {
        matches!(
            self,
            Kind::ClientOpened { .. } | Kind::ClientClosed { .. } | Kind::ClientFailed { .. }
        )
    }

    /// The event's name, as in the JSON.
    pub fn event(&self) -> &'static str {
        match self {
            Kind::OpenRequested { .. } => "open_requested",
            Kind::CloseRequested { .. } => "close_requested",
            Kind::OnDemandOpen { .. } => "on_demand_open",
            Kind::SessionClosed { .. } => "session_closed",
            Kind::Authenticated { .. } => "authenticated",
            Kind::Up => "up",
            Kind::Closed { .. } => "closed",
            Kind::HostKey { .. } => "host_key",
            Kind::ClientOpened { .. } => "client_opened",
            Kind::ClientClosed { .. } => "client_closed",
            Kind::ClientFailed { .. } => "client_failed",
        }
    }

    /// The rest of the record, for a person.
    pub fn detail(&self) -> String {
        match self {
            Kind::OpenRequested { by } | Kind::CloseRequested { by } => format!("by {by}"),
            Kind::OnDemandOpen { peer } => format!("by a client connection from {peer}"),
            Kind::SessionClosed { reason } => reason.clone(),
            Kind::Authenticated {
                hop,
                host,
                user,
                method,
            } => format!("hop {hop} {user}@{host} with {method}"),
            Kind::Up => String::new(),
            Kind::Closed { why } => match why {
                Closed::Asked => "as asked".into(),
                Closed::Limit { reason } => format!("limit: {reason}"),
                Closed::Failed { error } => format!("failed: {error}"),
            },
            Kind::HostKey {
                host,
                key_type,
                fingerprint,
                decision,
            } => {
                let d = match decision {
                    HostKeyDecision::Recorded => "recorded in known_hosts",
                    HostKeyDecision::AcceptedOnce => "accepted once",
                    HostKeyDecision::Rejected => "rejected",
                    HostKeyDecision::ChangedRefused => "changed key refused",
                    HostKeyDecision::Refused => "refused",
                };
                format!("{host} {key_type} {fingerprint} {d}")
            }
            Kind::ClientOpened { peer, target } => format!("{peer} -> {target}"),
            Kind::ClientClosed {
                peer,
                target,
                bytes_in,
                bytes_out,
            } => format!("{peer} -> {target} in {bytes_in} B out {bytes_out} B"),
            Kind::ClientFailed { reason } => reason.clone(),
        }
    }
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} has mode {mode:04o} and owner uid {owner}: the audit log is written only while it is yours and 0600; fix with `chmod 600 {path}` (and chown it to uid {me})"
    )]
    Unsafe {
        path: PathBuf,
        mode: u32,
        owner: u32,
        me: u32,
    },
}

/// The audit log of one state dir.
pub struct Log {
    path: PathBuf,
    max_bytes: u64,
    /// The writer thread's queue, once started, and how many records it has not written.
    later: OnceLock<std::sync::mpsc::SyncSender<Box<Entry>>>,
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Threads of this process take turns (the flock is for other processes).
    turn: Mutex<()>,
    /// The last failure warned about: the same one is not warned again.
    warned: Mutex<Option<String>>,
}

impl Log {
    /// The log in this state dir (`<state>/warren/audit.jsonl`).
    pub fn for_context(ctx: &Context) -> Log {
        Log::at(logging::dir(ctx).join(FILE), MAX_BYTES)
    }

    /// A log at `path` rotated past `max_bytes`.
    pub fn at(path: PathBuf, max_bytes: u64) -> Log {
        Log {
            path,
            max_bytes,
            later: OnceLock::new(),
            pending: Default::default(),
            turn: Mutex::new(()),
            warned: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record; a failure is a warning in warren's log (once per distinct cause).
    /// A record of a [frequent](Kind::frequent) kind is handed to the writer thread.
    pub fn record(&'static self, e: Entry) {
        if e.kind.frequent() {
            match self.queue().try_send(Box::new(e)) {
                Ok(()) => {
                    self.pending
                        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    return;
                }
                Err(std::sync::mpsc::TrySendError::Full(e))
                | Err(std::sync::mpsc::TrySendError::Disconnected(e)) => {
                    return self.record_now(&[*e]);
                }
            }
        }
        self.record_now(&[e]);
    }

    /// The writer thread's queue (started on first use).
    fn queue(&'static self) -> &'static std::sync::mpsc::SyncSender<Box<Entry>> {
        self.later.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Box<Entry>>(QUEUE);
            let spawned = std::thread::Builder::new()
                .name("warren-audit".into())
                .spawn(move || {
                    // The files stay open between batches.
                    let mut held = None;
                    while let Ok(first) = rx.recv() {
                        let mut batch = vec![*first];
                        let drain = |batch: &mut Vec<Entry>| {
                            while batch.len() < BATCH {
                                match rx.try_recv() {
                                    Ok(e) => batch.push(*e),
                                    Err(_) => break,
                                }
                            }
                        };
                        drain(&mut batch);
                        if batch.len() < BATCH {
                            // What comes in the next moment goes in the same append (and its
                            // senders wake nobody meanwhile).
                            std::thread::sleep(COALESCE);
                            drain(&mut batch);
                        }
                        let n = batch.len();
                        let written = self.write_with(&mut held, &batch);
                        self.report(written);
                        self.pending
                            .fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("audit log: no writer thread ({e}); records are written at once");
            }
            tx
        })
    }

    /// Waits (at most `limit`) until the writer thread has written what was queued.
    pub fn flush(&self, limit: std::time::Duration) {
        let end = std::time::Instant::now() + limit;
        while self.pending.load(std::sync::atomic::Ordering::Acquire) > 0
            && std::time::Instant::now() < end
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Appends records now, in one write.
    fn record_now(&self, entries: &[Entry]) {
        self.report(self.write_all(entries));
    }

    /// A write's outcome: a failure is warned about once per distinct cause.
    fn report(&self, written: Result<(), WriteError>) {
        match written {
            Ok(()) => {
                if let Ok(mut w) = self.warned.lock() {
                    *w = None;
                }
            }
            Err(err) => {
                let text = err.to_string();
                if let Ok(mut w) = self.warned.lock()
                    && w.as_deref() != Some(text.as_str())
                {
                    tracing::warn!("audit log not written: {text}");
                    *w = Some(text);
                }
            }
        }
    }

    /// Appends a record: one write of one line, under the lock, rotating first when full.
    pub fn write(&self, e: &Entry) -> Result<(), WriteError> {
        self.write_all(std::slice::from_ref(e))
    }

    /// Appends records: one write of their lines, under the lock, rotating first when full.
    pub fn write_all(&self, entries: &[Entry]) -> Result<(), WriteError> {
        self.write_with(&mut None, entries)
    }

    /// [`Log::write_all`] with the files in `held` (opened when empty, and kept there for the
    /// next call; dropped after a failure, so the next call opens them again).
    fn write_with(&self, held: &mut Option<Held>, entries: &[Entry]) -> Result<(), WriteError> {
        let written = self.append(held, entries);
        if written.is_err() {
            *held = None;
        }
        written
    }

    fn append(&self, held: &mut Option<Held>, entries: &[Entry]) -> Result<(), WriteError> {
        let io = |source| WriteError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut line, e).map_err(|e| io(std::io::Error::other(e)))?;
            line.push(b'\n');
        }
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        let h = match held {
            Some(h) => h,
            None => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let lock = open_private(&self.path.with_extension("lock")).map_err(io)?;
                let file = self.open_checked()?;
                held.insert(Held { lock, file })
            }
        };
        // SAFETY: flock on a descriptor we own; `_unlock` releases it however this returns.
        if unsafe { libc::flock(h.lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        let _unlock = Unlock(h.lock.as_raw_fd());
        // Another warren may have rotated the file since it was opened: write where the path
        // points now.
        let now = std::fs::symlink_metadata(&self.path).ok();
        let open = h.file.metadata().map_err(io)?;
        if now.is_none_or(|n| n.ino() != open.ino() || n.dev() != open.dev()) {
            h.file = self.open_checked()?;
        }
        let meta = h.file.metadata().map_err(io)?;
        check_safe(&self.path, &meta)?;
        if meta.len() > 0 && meta.len() + line.len() as u64 > self.max_bytes {
            for i in (1..KEEP).rev() {
                let _ = std::fs::rename(
                    logging::numbered(&self.path, i),
                    logging::numbered(&self.path, i + 1),
                );
            }
            std::fs::rename(&self.path, logging::numbered(&self.path, 1)).map_err(io)?;
            h.file = self.open_checked()?;
        }
        h.file.write_all(&line).map_err(io)?;
        Ok(())
    }

    /// Opens the file for appending (made 0600), if it is still safe to write.
    fn open_checked(&self) -> Result<File, WriteError> {
        let file = open_private(&self.path).map_err(|source| WriteError::Io {
            path: self.path.clone(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| WriteError::Io {
            path: self.path.clone(),
            source,
        })?;
        check_safe(&self.path, &meta)?;
        Ok(file)
    }
}

/// Whether the file is still the user's own with no access for others.
fn check_safe(path: &Path, meta: &std::fs::Metadata) -> Result<(), WriteError> {
    let me = own_uid();
    if meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(WriteError::Unsafe {
            path: path.to_path_buf(),
            mode: meta.mode() & 0o7777,
            owner: meta.uid(),
            me,
        });
    }
    Ok(())
}

/// The audit log's files a writer keeps open: the lock file and the log.
struct Held {
    lock: File,
    file: File,
}

/// Releases a flock when dropped.
struct Unlock(std::os::fd::RawFd);

impl Drop for Unlock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is the held lock file's, open for as long as this guard.
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

/// Opens for appending, creating it 0600; never through a symlink.
fn open_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

static LOG: OnceLock<Log> = OnceLock::new();

/// From now on this process records to the audit log of `ctx`'s state dir.
pub fn install(ctx: &Context) {
    let _ = LOG.set(Log::for_context(ctx));
}

/// The process's audit log, once installed.
pub fn log() -> Option<&'static Log> {
    LOG.get()
}

/// Records `kind` about connection `name`, if this process keeps an audit log.
pub fn record(name: &str, kind: Kind) {
    if let Some(l) = LOG.get() {
        l.record(Entry::new(name, kind));
    }
}

/// Waits (a second at most) for the records still queued to be written: as warren exits.
pub fn flush() {
    if let Some(l) = LOG.get() {
        l.flush(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entry(n: usize) -> Entry {
        Entry::new(
            &format!("db{n}"),
            Kind::ClientClosed {
                peer: "127.0.0.1:5000".into(),
                target: "db:5432".into(),
                bytes_in: n as u64,
                bytes_out: 1,
            },
        )
    }

    #[test]
    fn a_writer_that_keeps_its_files_open_follows_a_rotation_by_another() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(FILE);
        let (a, b) = (Log::at(path.clone(), 2_000), Log::at(path.clone(), 2_000));
        let mut held = None;
        for n in 0..200 {
            if n % 3 == 0 {
                b.write(&entry(n)).expect("b writes");
            } else {
                a.write_with(&mut held, std::slice::from_ref(&entry(n)))
                    .expect("a writes");
            }
        }
        let mut seen = Vec::new();
        for p in
            std::iter::once(path.clone()).chain((1..=KEEP).map(|i| logging::numbered(&path, i)))
        {
            for l in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                match serde_json::from_str::<Entry>(l).expect("whole").kind {
                    Kind::ClientClosed { bytes_in, .. } => seen.push(bytes_in),
                    other => panic!("{other:?}"),
                }
            }
        }
        seen.sort_unstable();
        // The oldest went with the last rotated file; what is kept is every record from some
        // point to the last, each once: a record written to a file already rotated away by
        // the other writer would leave a gap.
        let first = seen.first().copied().unwrap_or(200);
        assert!(first < 180, "{seen:?}");
        assert_eq!(seen, (first..200).collect::<Vec<u64>>());
        let current = std::fs::read_to_string(&path).expect("current");
        assert!(
            current.contains("\"bytes_in\":199"),
            "the last record is in the current file"
        );
    }

    #[test]
    fn client_records_queued_from_many_threads_are_all_written_whole_once_flushed() {
        let dir = tempfile::tempdir().expect("dir");
        let log: &'static Log = Box::leak(Box::new(Log::at(dir.path().join(FILE), MAX_BYTES)));
        let writers: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for n in 0..1000 {
                        log.record(entry(t * 1000 + n));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        log.flush(std::time::Duration::from_secs(10));
        let text = std::fs::read_to_string(log.path()).expect("log");
        let mut seen: Vec<u64> = text
            .lines()
            .map(|l| {
                match serde_json::from_str::<Entry>(l)
                    .expect("a whole record")
                    .kind
                {
                    Kind::ClientClosed { bytes_in, .. } => bytes_in,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..8000).collect::<Vec<u64>>(), "each record once");
    }

    #[test]
    fn it_is_created_0600_and_rotates_keeping_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(FILE);
        let log = Log::at(path.clone(), 4096);
        for n in 0..200 {
            log.write(&entry(n)).expect("write");
        }
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut lines = Vec::new();
        for i in (1..=KEEP).rev() {
            let p = logging::numbered(&path, i);
            assert!(p.exists(), "{} was kept", p.display());
            assert!(std::fs::metadata(&p).expect("meta").len() <= 4096);
            lines.extend(
                std::fs::read_to_string(&p)
                    .expect("read")
                    .lines()
                    .map(String::from),
            );
        }
        assert!(!logging::numbered(&path, KEEP + 1).exists());
        lines.extend(
            std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .map(String::from),
        );
        // Whole lines only, the newest last, none lost between the files kept.
        let got: Vec<u64> = lines
            .iter()
            .map(|l| {
                match serde_json::from_str::<Entry>(l)
                    .expect("a whole record")
                    .kind
                {
                    Kind::ClientClosed { bytes_in, .. } => bytes_in,
                    _ => u64::MAX,
                }
            })
            .collect();
        assert_eq!(got.last(), Some(&199));
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
    }

    #[test]
    fn a_file_others_can_read_is_not_written() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(FILE);
        std::fs::write(&path, "").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Log::at(path.clone(), MAX_BYTES)
            .write(&entry(1))
            .expect_err("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
    }

    #[test]
    fn a_known_key_is_no_decision_and_a_refusal_says_which() {
        use HostKeyDecision as D;
        // (recorded, once, rejected, changed, refused)
        assert_eq!(D::of(false, false, false, false, false), None);
        assert_eq!(D::of(true, false, false, false, false), Some(D::Recorded));
        assert_eq!(
            D::of(false, true, false, false, false),
            Some(D::AcceptedOnce)
        );
        assert_eq!(D::of(false, false, true, false, true), Some(D::Rejected));
        assert_eq!(
            D::of(false, false, false, true, true),
            Some(D::ChangedRefused)
        );
        assert_eq!(D::of(false, false, false, false, true), Some(D::Refused));
        // A new IP address recorded for a key that was then refused: the refusal counts.
        assert_eq!(
            D::of(true, false, false, true, true),
            Some(D::ChangedRefused)
        );
    }

    /// Two logs on one file stand for two processes: their own mutexes do not exclude each
    /// other, only the flock does, rotation included.
    #[test]
    fn two_writers_rotating_at_once_lose_and_tear_no_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(FILE);
        // Room in the files kept for every record, with several rotations on the way.
        let line = serde_json::to_vec(&entry(10_000)).expect("json").len() as u64 + 1;
        let per_file = line * 120;
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let log = Log::at(path.clone(), per_file);
                std::thread::spawn(move || {
                    for n in 0..200 {
                        log.write(&entry(t * 10_000 + n)).expect("write");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let mut got = Vec::new();
        for p in logging::files_at(&path, KEEP) {
            // Nobody wrote past the cap: a check of the size and the write are one step.
            assert!(std::fs::metadata(&p).expect("meta").len() <= per_file);
            for l in std::fs::read_to_string(&p).expect("read").lines() {
                match serde_json::from_str::<Entry>(l)
                    .expect("a whole record")
                    .kind
                {
                    Kind::ClientClosed { bytes_in, .. } => got.push(bytes_in),
                    k => panic!("{k:?}"),
                }
            }
        }
        assert!(logging::numbered(&path, 2).exists(), "it rotated");
        got.sort_unstable();
        let want: Vec<u64> = (0..200).chain(10_000..10_200).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn threads_writing_at_once_tear_no_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(FILE);
        let log = std::sync::Arc::new(Log::at(path.clone(), MAX_BYTES));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    for n in 0..100 {
                        log.write(&entry(t * 1000 + n)).expect("write");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 400);
        for l in text.lines() {
            serde_json::from_str::<Entry>(l).expect("a whole record");
        }
    }
}
