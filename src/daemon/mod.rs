//! The per-user daemon: an engine that outlives the terminal that opened its tunnels, behind
//! a private socket. Clients (the CLI, the TUI) use it through [`client::DaemonClient`],
//! with the same types as a local engine ([`protocol`]).
//!
//! - [`protocol`]: the versioned wire types.
//! - [`server`]: hosts the engine and serves clients.
//! - [`client`]: connects, sends requests, streams events; starts the daemon when needed.
//! - [`metrics`]: Prometheus metrics on the address the settings give (`[metrics] listen`).
//!
//! The socket lives in `$XDG_RUNTIME_DIR/warren` (else the state dir), a 0700 directory that
//! must belong to the user; the socket is 0600. An exclusive lock on `daemon.lock` keeps a
//! second daemon out; a socket file left by a dead daemon is removed. The tunnels it runs are
//! written to `tunnels.json` beside it, so a daemon that died (SIGKILL, OOM) is replaced by
//! one that opens them again on the same local ports.
//!
//! It imports the engine and the config model, never the CLI or the TUI.

pub mod client;
pub mod metrics;
pub mod protocol;
pub mod server;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Context;

/// The directory of the control socket, created 0700 and checked to be ours.
pub fn runtime_dir(ctx: &Context) -> std::io::Result<PathBuf> {
    let base = ctx
        .var("XDG_RUNTIME_DIR")
        .filter(|d| d.starts_with('/'))
        .map(PathBuf::from)
        .or_else(|| {
            ctx.var("XDG_STATE_HOME")
                .filter(|d| d.starts_with('/'))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| ctx.home.join(".local/state"));
    let dir = base.join("warren");
    std::fs::create_dir_all(&dir)?;
    // Not followed: a link planted there would put the socket (and the daemon's state) where
    // its maker chose.
    let meta = std::fs::symlink_metadata(&dir)?;
    if meta.file_type().is_symlink() {
        return Err(std::io::Error::other(format!(
            "{} is a symbolic link: refusing to follow it (remove it; warren makes the directory itself)",
            dir.display()
        )));
    }
    if meta.uid() != ctx.uid {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user (uid {}): refusing to use it",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    crate::fsutil::socket_path_fits(
        &socket_path(&dir),
        "set XDG_RUNTIME_DIR to a shorter directory (e.g. XDG_RUNTIME_DIR=/tmp/warren-$USER)",
    )?;
    Ok(dir)
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// A tunnel the daemon runs, as remembered across a restart: its name and the ports its
/// listeners got (so a port picked for `local_port = 0` stays the same).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub name: String,
    pub ports: Vec<u16>,
    /// Opened with `--no-exec`: reopened the same way, running none of its commands.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_exec: bool,
    /// Opened on demand: reopened so, listening with no session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("tunnels.json")
}

/// The tunnels a daemon ran when it last wrote them (empty if none, or unreadable).
pub fn remembered(dir: &Path) -> Vec<Remembered> {
    std::fs::read(state_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes the tunnels the daemon runs (atomically, 0600).
pub fn remember(dir: &Path, tunnels: &[Remembered]) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(tunnels).map_err(std::io::Error::other)?;
    crate::fsutil::write_atomic(&state_path(dir), &text, 0o600)
}
