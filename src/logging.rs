//! Logs, with `tracing`: the daemon writes `daemon.log`, the TUI `warren.log`, both in the
//! state dir (`$XDG_STATE_HOME/warren`, else `~/.local/state/warren`), 0600, each capped at
//! [`MAX_BYTES`] and rotated to `.1` ... `.{KEEP}` (tracing-appender rotates by time only, and
//! a daemon that runs for months needs a size cap). `warren logs` reads them back.
//!
//! What is logged never holds a secret: answers to questions are not logged, and requests
//! are logged by their kind only.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::Context;

/// The most one log file holds before it is rotated.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// Rotated files kept (`daemon.log.1` ... `daemon.log.KEEP`).
pub const KEEP: usize = 3;

/// The directory of the logs.
pub fn dir(ctx: &Context) -> PathBuf {
    ctx.var("XDG_STATE_HOME")
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.home.join(".local/state"))
        .join("warren")
}

/// A log file that rotates itself when it grows past [`MAX_BYTES`].
struct Rotating {
    path: PathBuf,
    file: Option<File>,
    written: u64,
}

impl Rotating {
    fn open(path: PathBuf) -> Rotating {
        let file = open_log(&path).ok();
        let written = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Rotating {
            path,
            file,
            written,
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        for i in (1..KEEP).rev() {
            let _ = std::fs::rename(numbered(&self.path, i), numbered(&self.path, i + 1));
        }
        let _ = std::fs::rename(&self.path, numbered(&self.path, 1));
        self.file = open_log(&self.path).ok();
        self.written = 0;
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `daemon.log.N`
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// What tracing writes through: one shared rotating file.
#[derive(Clone)]
struct Writer(Arc<Mutex<Rotating>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Ok(mut r) = self.0.lock() else {
            return Ok(buf.len());
        };
        if r.written + buf.len() as u64 > MAX_BYTES {
            r.rotate();
        }
        let n = match r.file.as_mut() {
            Some(f) => f.write(buf)?,
            None => buf.len(),
        };
        r.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self
            .0
            .lock()
            .ok()
            .and_then(|mut r| r.file.as_mut().map(File::flush))
        {
            Some(r) => r,
            None => Ok(()),
        }
    }
}

/// Sends this process's logs to `name` (e.g. `daemon.log`) in the state dir. `verbose` adds
/// debug lines. Does nothing if the directory cannot be made.
pub fn init(ctx: &Context, name: &str, verbose: bool) {
    let d = dir(ctx);
    if std::fs::create_dir_all(&d).is_err() {
        return;
    }
    let writer = Writer(Arc::new(Mutex::new(Rotating::open(d.join(name)))));
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level)
        .try_init();
}

/// The log files of a name, oldest first (`daemon.log.3`, ..., `daemon.log`).
pub fn files(ctx: &Context, name: &str) -> Vec<PathBuf> {
    files_at(&dir(ctx).join(name), KEEP)
}

/// The files of a log at `base` with `keep` rotated ones, oldest first, those that exist.
pub fn files_at(base: &Path, keep: usize) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..=keep).rev().map(|i| numbered(base, i)).collect();
    out.push(base.to_path_buf());
    out.into_iter().filter(|p| p.exists()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_rotates_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.log");
        let mut w = Writer(Arc::new(Mutex::new(Rotating::open(path.clone()))));
        let line = vec![b'x'; 100 * 1024];
        for _ in 0..60 {
            w.write_all(&line).expect("write");
        }
        let mut total = 0;
        for i in 1..=KEEP + 1 {
            if let Ok(m) = std::fs::metadata(numbered(&path, i)) {
                assert!(i <= KEEP, "more than {KEEP} rotated files");
                assert!(m.len() <= MAX_BYTES);
                total += m.len();
            }
        }
        assert!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) <= MAX_BYTES);
        assert!(total > 0);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0),
            0o600
        );
    }
}
