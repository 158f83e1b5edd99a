//! Watching the config files for changes, so a client reloads without a key press: every
//! file the catalog read or looked for (`~/.ssh/config` with every Include, epoch.toml) is
//! watched through its directory (with `notify`: inotify on Linux), so a file that appears
//! (a new Include match, an epoch.toml created) counts too. Bursts are merged: a change is
//! reported once nothing has moved for [`SETTLE`], and only if a watched file's contents
//! changed (an editor's temp files and swap files in the same directory do nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Catalog;

/// How long a burst of file events must be quiet before it counts as one change.
pub const SETTLE: Duration = Duration::from_millis(300);

/// The files behind a catalog: the roots (whether they exist or not) and every file an
/// Include brought in.
pub fn files(catalog: &Catalog) -> Vec<PathBuf> {
    let mut out: BTreeSet<PathBuf> = catalog.files.iter().map(|f| f.path.clone()).collect();
    out.extend(catalog.ssh.files.iter().map(|f| f.path.to_path_buf()));
    out.into_iter().collect()
}

/// What a file looks like: its contents' hash (none when absent or unreadable).
fn fingerprint(paths: &[PathBuf]) -> BTreeMap<PathBuf, Option<u64>> {
    use std::hash::{Hash, Hasher};
    paths
        .iter()
        .map(|p| {
            let h = std::fs::read(p).ok().map(|b| {
                let mut s = std::collections::hash_map::DefaultHasher::new();
                b.hash(&mut s);
                s.finish()
            });
            (p.clone(), h)
        })
        .collect()
}

/// Tells when the config files change.
pub struct ConfigWatcher {
    events: mpsc::UnboundedReceiver<()>,
    paths: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    seen: BTreeMap<PathBuf, Option<u64>>,
    _watcher: notify::RecommendedWatcher,
}

impl ConfigWatcher {
    /// Watches `paths` (through their directories). Directories that do not exist are
    /// skipped: a later change of the file list (call [`ConfigWatcher::watch`]) adds them.
    pub fn new(paths: Vec<PathBuf>) -> notify::Result<ConfigWatcher> {
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok() {
                let _ = tx.send(());
            }
        })?;
        let mut w = ConfigWatcher {
            events: rx,
            paths: Vec::new(),
            dirs: BTreeSet::new(),
            seen: BTreeMap::new(),
            _watcher: watcher,
        };
        w.watch(paths);
        Ok(w)
    }

    /// Watches a new list of files (after a reload: Includes may have changed).
    pub fn watch(&mut self, paths: Vec<PathBuf>) {
        for p in &paths {
            if let Some(dir) = p.parent().filter(|d| d.is_dir())
                && self.dirs.insert(dir.to_path_buf())
            {
                let _ = self._watcher.watch(dir, RecursiveMode::NonRecursive);
            }
        }
        self.seen = fingerprint(&paths);
        self.paths = paths;
    }

    /// Waits for a change of a watched file's contents (after the burst settles).
    pub async fn changed(&mut self) -> Option<()> {
        loop {
            self.events.recv().await?;
            // Let the burst (an editor's write, rename, chmod) settle.
            loop {
                match tokio::time::timeout(SETTLE, self.events.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return None,
                    Err(_) => break,
                }
            }
            let now = fingerprint(&self.paths);
            if now != self.seen {
                self.seen = now;
                return Some(());
            }
        }
    }

    pub fn watched(&self) -> &[PathBuf] {
        &self.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_is_one_change_and_a_stranger_file_is_none() {
        let dir = tempfile::tempdir().expect("dir");
        let cfg = dir.path().join("config");
        std::fs::write(&cfg, "Host a\n").expect("write");
        let mut w = ConfigWatcher::new(vec![cfg.clone()]).expect("watch");
        // A swap file beside it changes nothing.
        std::fs::write(dir.path().join(".config.swp"), "x").expect("write");
        assert!(
            tokio::time::timeout(Duration::from_secs(1), w.changed())
                .await
                .is_err(),
            "a file that is not watched is no change"
        );
        std::fs::write(&cfg, "Host a\nHost b\n").expect("write");
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .expect("the change within 5 s")
            .expect("a change");
    }
}
