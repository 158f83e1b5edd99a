//! warren: a terminal UI for SSH tunnels to private databases.
//!
//! # Layout
//! Data flows one way: config files -> [`config::Connection`] -> [`engine`] -> events ->
//! a client. Each layer imports only the layers below it; nothing below the clients imports
//! [`cli`] or [`tui`], and there are no import cycles.
//!
//! - clients: [`tui`] (the terminal UI), [`cli`] (the headless commands), [`demo`]; they reach
//!   tunnels through [`backend`]: an [`engine`] in process, or the [`daemon`] over its socket.
//! - [`daemon`]: the per-user daemon (server, client, wire protocol, Prometheus metrics).
//! - [`engine`]: sessions and tunnels, their lifecycle, reconnects, questions; events out.
//! - [`tunnel`] (listeners and the copy), [`diagnose`] (the step-by-step walk).
//! - [`ssh`]: russh: one hop or a chain, host keys, algorithms, authentication.
//! - [`config`]: ssh_config and epoch.toml into the connection model, every value with its
//!   source; imports nothing else of warren.
//! - shared helpers: [`prompt`] (questions), [`setup`], [`settings`] (warren's own
//!   config.toml), [`handoff`] (connection strings and client environments), [`notify`]
//!   (which events are news, and the notify command), [`logging`], [`audit`] (what warren did
//!   and who asked), [`text`], [`fsutil`].

pub mod audit;
pub mod backend;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diagnose;
pub mod engine;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod handoff;
pub mod logging;
pub mod notify;
pub mod prompt;
pub mod settings;
pub mod setup;
pub mod ssh;
pub mod text;
pub mod tui;
pub mod tunnel;
pub mod watch;
