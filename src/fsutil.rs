//! Files written so that a crash or a full disk never leaves half of one.

use std::io::Write;
use std::path::Path;

/// The longest path a unix socket can have here: `sun_path` holds 108 bytes on Linux and 104
/// on macOS and the BSDs, the terminating NUL included.
pub const SOCKET_PATH_MAX: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// Whether `path` fits a unix socket address; otherwise an error that says by how much, and
/// `fix`. (macOS's `$TMPDIR` alone is about 50 bytes.)
pub fn socket_path_fits(path: &Path, fix: &str) -> std::io::Result<()> {
    let n = path.as_os_str().len();
    if n <= SOCKET_PATH_MAX {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "{} is {n} bytes, longer than a unix socket's path can be on this system ({SOCKET_PATH_MAX}): {fix}",
            path.display()
        ),
    ))
}

/// Writes `data` to `path` atomically: a temp file in the same directory with `mode`, fsynced,
/// then renamed over `path` (and the directory fsynced). On error the original is untouched.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = prepare(path, data, mode)?;
    commit(&tmp, path)
}

/// The temp file of [`write_atomic`], written and fsynced, beside `path`. Its name is this
/// process's and this call's own (two threads writing one file never share a temp file),
/// created exclusively; a name left by a crashed writer is skipped.
pub fn prepare(path: &Path, data: &[u8], mode: u32) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = {
        let mut tries = 0;
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let tmp = dir_of(path).join(format!(".{name}.warren-{}-{n}.tmp", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)
            {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let result = f.write_all(data).and_then(|()| f.sync_all());
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Renames a [`prepare`]d temp file over `path` and fsyncs the directory; removes the temp
/// file when that fails.
pub fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A file's content before (None: there was no file) and after a locked edit.
pub type Edited = (Option<Vec<u8>>, Vec<u8>);

/// Why a locked edit did not happen.
#[derive(Debug)]
pub enum EditError<E> {
    /// Reading, locking or writing failed; the file is as it was.
    Io(std::io::Error),
    /// The edit itself refused (the old text did not allow it); nothing was written.
    Edit(E),
}

/// How long [`edit_locked`] waits for another writer, and how often it re-applies an edit
/// when the file changes under it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const EDIT_TRIES: usize = 8;

/// A read-modify-write of `path` that loses no other writer's change: an exclusive `flock`
/// on the file's directory is held throughout (another warren waits, up to 10 s; the
/// directory is locked because the file itself is replaced, and may not exist yet); `apply`
/// turns the old content (None: no file) into the new; just before the rename the file is
/// read again, and when it changed since (a person's editor, a writer that takes no lock)
/// the edit is applied again to the new content. `backup`, when given, gets the old content
/// (0600) before the file is replaced. The write is [`write_atomic`]. Returns the old and
/// the new content.
pub fn edit_locked<E>(
    path: &Path,
    mode: u32,
    backup: Option<&Path>,
    mut apply: impl FnMut(Option<&[u8]>) -> Result<Vec<u8>, E>,
) -> Result<Edited, EditError<E>> {
    use std::os::fd::AsRawFd;
    let dir = dir_of(path);
    let lock = std::fs::File::open(dir).map_err(EditError::Io)?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock on a descriptor we own; released when `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(EditError::Io(e));
        }
        if std::time::Instant::now() >= deadline {
            return Err(EditError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "another program held the lock on {} for {} s; nothing was written",
                    dir.display(),
                    LOCK_WAIT.as_secs()
                ),
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let read = |p: &Path| match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EditError::Io(e)),
    };
    let mut old = read(path)?;
    for _ in 0..EDIT_TRIES {
        let new = apply(old.as_deref()).map_err(EditError::Edit)?;
        if let (Some(b), Some(o)) = (backup, &old) {
            write_atomic(b, o, 0o600).map_err(EditError::Io)?;
        }
        let tmp = prepare(path, &new, mode).map_err(EditError::Io)?;
        // The last look, as close to the rename as it can be.
        let now = match read(path) {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if now != old {
            let _ = std::fs::remove_file(&tmp);
            old = now;
            continue;
        }
        commit(&tmp, path).map_err(EditError::Io)?;
        drop(lock);
        return Ok((old, new));
    }
    Err(EditError::Io(std::io::Error::other(format!(
        "{} kept changing while warren wrote it ({EDIT_TRIES} tries); nothing was written",
        path.display()
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_edits_lose_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("f");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for j in 0..25 {
                        edit_locked::<()>(&p, 0o600, None, |old| {
                            let mut v = old.unwrap_or_default().to_vec();
                            v.extend_from_slice(format!("{i}-{j}\n").as_bytes());
                            Ok(v)
                        })
                        .map_err(|_| "edit failed")
                        .expect("edit");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(text.lines().count(), 200, "every edit is there");
    }

    /// Threads of one process (the daemon's tasks) writing one file at once: each write
    /// succeeds whole (before, they shared one temp file name and all but one failed).
    #[test]
    fn concurrent_atomic_writes_in_one_process_all_succeed_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("state.json");
        let threads: Vec<_> = (0..4u8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        write_atomic(&p, &[b'a' + i; 4096], 0o600).expect("every write");
                        let now = std::fs::read(&p).expect("read");
                        assert_eq!(now.len(), 4096);
                        assert!(now.iter().all(|b| *b == now[0]), "one write whole");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("state.json")],
            "no temp file left"
        );
    }

    #[test]
    fn a_change_under_the_edit_is_kept_and_the_edit_reapplied() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("f");
        std::fs::write(&p, "a\n").expect("write");
        let mut first = true;
        let (old, new) = edit_locked::<()>(&p, 0o600, Some(&dir.path().join("f.bak")), |old| {
            if first {
                // Someone appends by hand while warren works.
                first = false;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .expect("open");
                f.write_all(b"# by hand\n").expect("append");
            }
            let mut v = old.unwrap_or_default().to_vec();
            v.extend_from_slice(b"warren\n");
            Ok(v)
        })
        .map_err(|_| "edit")
        .expect("edit");
        assert_eq!(old.as_deref(), Some(&b"a\n# by hand\n"[..]));
        assert_eq!(new, b"a\n# by hand\nwarren\n");
        assert_eq!(std::fs::read(&p).expect("read"), new);
        assert_eq!(
            std::fs::read(dir.path().join("f.bak")).expect("bak"),
            b"a\n# by hand\n"
        );
        // A refusal writes nothing.
        let r = edit_locked(&p, 0o600, None, |_| Err("no"));
        assert!(matches!(r, Err(EditError::Edit("no"))));
        assert_eq!(std::fs::read(&p).expect("read"), new);
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    #[test]
    fn a_socket_path_that_cannot_be_bound_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("dir");
        let fits = dir.path().join("s");
        assert!(socket_path_fits(&fits, "x").is_ok());
        let long = dir.path().join("d".repeat(SOCKET_PATH_MAX));
        let e = socket_path_fits(&long, "choose a shorter path").expect_err("too long");
        let text = e.to_string();
        assert!(
            text.contains(&format!("({SOCKET_PATH_MAX}): choose a shorter path")),
            "{text}"
        );
        // The limit is the system's: one byte more than it does not bind.
        let at = dir
            .path()
            .join("a".repeat(SOCKET_PATH_MAX - dir.path().as_os_str().len() - 1));
        assert_eq!(at.as_os_str().len(), SOCKET_PATH_MAX);
        std::os::unix::net::UnixListener::bind(&at).expect("a path at the limit binds");
        let over = dir
            .path()
            .join("b".repeat(SOCKET_PATH_MAX - dir.path().as_os_str().len()));
        assert!(std::os::unix::net::UnixListener::bind(&over).is_err());
        assert!(socket_path_fits(&over, "x").is_err());
    }
}
