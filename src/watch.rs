//! Watching the config files for changes, so a client reloads without a key press: every
//! file the catalog read or looked for (`~/.ssh/config` with every Include, epoch.toml) is
//! watched through its directory (with `notify`: inotify on Linux), so a file that appears
//! (a new Include match, an epoch.toml created) counts too. Bursts are merged: a change is
//! reported once nothing has moved for [`SETTLE`], and only if a watched file's contents
//! changed (an editor's temp files and swap files in the same directory do nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Catalog;

/// How long a burst of file events must be quiet before it counts as one change.
pub const SETTLE: Duration = Duration::from_millis(300);

/// The files behind a catalog: the roots (whether they exist or not), every file an Include
/// brought in, and every Include's pattern (a path with `*`, `?` or `[`), where a file that
/// appears later would be read too.
pub fn files(catalog: &Catalog) -> Vec<PathBuf> {
    let mut out: BTreeSet<PathBuf> = catalog.files.iter().map(|f| f.path.clone()).collect();
    out.extend(catalog.ssh.files.iter().map(|f| f.path.to_path_buf()));
    out.extend(catalog.ssh.include_patterns.iter().cloned());
    // `./epoch.toml` is watched where it is now, whatever the process's folder becomes.
    let cwd = std::env::current_dir().unwrap_or_default();
    out.into_iter().map(|p| cwd.join(p)).collect()
}

fn is_pattern(p: &Path) -> bool {
    p.to_string_lossy().contains(['*', '?', '['])
}

/// The files a path stands for: itself, or what its pattern matches now.
fn expand(p: &Path) -> Vec<PathBuf> {
    if !is_pattern(p) {
        return vec![p.to_path_buf()];
    }
    let mut out = crate::config::ssh_config::parse::include_matches(p).unwrap_or_default();
    out.sort();
    out
}

/// The directory to watch for a path: the nearest existing folder above it with no pattern
/// in its name (so a folder created later, `conf.d` say, is seen appearing).
fn watch_dir(p: &Path) -> Option<PathBuf> {
    let mut dir = p.parent()?;
    while is_pattern(dir) || !dir.is_dir() {
        dir = dir.parent()?;
    }
    Some(dir.to_path_buf())
}

/// What the files look like: each one's contents' hash (none when absent or unreadable).
fn fingerprint(paths: &[PathBuf]) -> BTreeMap<PathBuf, Option<u64>> {
    use std::hash::{Hash, Hasher};
    paths
        .iter()
        .flat_map(|p| expand(p))
        .map(|p| {
            let h = std::fs::read(&p).ok().map(|b| {
                let mut s = std::collections::hash_map::DefaultHasher::new();
                b.hash(&mut s);
                s.finish()
            });
            (p, h)
        })
        .collect()
}

/// Tells when the config files change.
pub struct ConfigWatcher {
    events: mpsc::UnboundedReceiver<()>,
    paths: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    seen: BTreeMap<PathBuf, Option<u64>>,
    watcher: notify::RecommendedWatcher,
}

impl ConfigWatcher {
    /// Watches `paths` (files, or Include patterns) through their directories; a directory
    /// that does not exist yet is watched through the nearest one above it that does.
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
            watcher,
        };
        w.watch(paths);
        Ok(w)
    }

    /// Watches a new list of files (after a reload: Includes may have changed).
    pub fn watch(&mut self, paths: Vec<PathBuf>) {
        self.paths = paths;
        self.add_dirs();
        self.seen = fingerprint(&self.paths);
    }

    /// Watches the folders that exist now (one created since is watched from here on).
    fn add_dirs(&mut self) {
        for p in &self.paths {
            if let Some(dir) = watch_dir(p)
                && self.dirs.insert(dir.clone())
            {
                let _ = self.watcher.watch(&dir, RecursiveMode::NonRecursive);
            }
        }
    }

    /// Waits for a change of a watched file's contents, or for a file that an Include
    /// pattern matches to appear or go (after the burst settles).
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
            // A folder that appeared (conf.d) is watched before the files are compared, so
            // a file written into it after this is seen too.
            self.add_dirs();
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
    async fn a_file_in_a_folder_made_later_that_an_include_matches_is_a_change() {
        let dir = tempfile::tempdir().expect("dir");
        let cfg = dir.path().join("config");
        std::fs::write(&cfg, "Host a\n").expect("write");
        let pattern = dir.path().join("conf.d/*.conf");
        let mut w = ConfigWatcher::new(vec![cfg, pattern]).expect("watch");
        std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
        std::fs::write(dir.path().join("conf.d/notes.txt"), "x").expect("write");
        assert!(
            tokio::time::timeout(Duration::from_secs(1), w.changed())
                .await
                .is_err(),
            "a folder and a file the pattern does not match are no change"
        );
        std::fs::write(dir.path().join("conf.d/b.conf"), "Host b\n").expect("write");
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .expect("the change within 5 s")
            .expect("a change");
    }

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
