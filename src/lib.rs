//! warren: a terminal UI for SSH tunnels to private databases.
//!
//! # Layout
//! - [`config`]: the connection model from `~/.ssh/config` and `epoch.toml`, each value with
//!   its source. Knows nothing of the terminal.
//! - [`cli`]: the headless commands (`list`, `show`), clients of the model.
//! - [`text`]: peer and config text made safe for a terminal.
//!
//! Data flows one way: config files -> `Connection` model -> engine -> events -> client.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diagnose;
pub mod engine;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod prompt;
pub mod setup;
pub mod ssh;
pub mod text;
pub mod tui;
pub mod tunnel;
