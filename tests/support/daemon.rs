//! A scratch home whose daemon is its own: a runtime dir (the control socket) and a state
//! dir (the daemon's log) inside it; every tunnel is closed when it goes, so the daemon stops.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::{Run, Scratch};

pub struct Home {
    pub s: Scratch,
    pub run: String,
}

impl Home {
    pub fn new(s: Scratch) -> Home {
        let run = s.path().join("run").display().to_string();
        std::fs::create_dir_all(&run).expect("run dir");
        Home { s, run }
    }

    /// `warren` with no ssh_config and the scratch `known_hosts`, then `args`.
    pub fn warren(&self, args: &[&str]) -> Run {
        let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
        all.extend_from_slice(args);
        let state = self.state_dir();
        self.s.warren_env(
            &all,
            &[
                ("XDG_RUNTIME_DIR", &self.run),
                ("XDG_STATE_HOME", &state.display().to_string()),
            ],
        )
    }

    /// `warren status --json`.
    pub fn status(&self) -> serde_json::Value {
        let r = self.warren(&["status", "--json"]);
        r.expect_code(0);
        r.json()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.s.path().join("state")
    }

    /// What the daemon logged so far.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("warren/daemon.log")).unwrap_or_default()
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        std::fs::read_to_string(Path::new(&self.run).join("warren/daemon.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.warren(&["down", "--all"]);
    }
}
