//! The connection model: every connection a user has, from `~/.ssh/config` and `epoch.toml`,
//! with where each value came from.
//!
//! - [`model`]: `Connection`, `Hop`, `Policy` — what the engine and the clients read.
//! - [`ssh_config`]: ssh_config evaluated as OpenSSH does -> connections.
//! - [`epoch`]: epoch.toml (Horizon Epoch format) -> connections.
//! - [`load`]: finds the files, loads both sources, qualifies names that clash.
//! - [`cloud`]: `ssm:` and `iap:` hosts, the cloud bastions' ProxyCommands.
//! - [`command`]: the commands a config tells ssh to run (ProxyCommand, Match exec,
//!   KnownHostsCommand), as warren keeps them.

pub mod algorithms;
pub mod auto_bind;
pub mod cloud;
pub mod command;
pub mod context;
pub mod destination;
pub mod epoch;
pub mod expand;
pub mod forward;
pub mod from_ssh;
pub mod load;
pub mod model;
pub mod origin;
pub mod ssh_config;
pub mod trust;

pub use context::Context;
pub use load::{Catalog, Paths};
pub use model::{Connection, ConnectionKind, Hop, HostKeyPolicy, Policy, SourceKind};
pub use origin::{Origin, Problem, Secret, Severity, Sourced, read_secret_file};
