//! What a connection is: its hops, its forwards, its database and its policy. Every value
//! carries its [`Origin`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::forward::{Endpoint, Forward, ForwardKind};
use super::origin::{Origin, Problem, Secret, Sourced};

/// Which file a connection came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Ssh,
    Epoch,
}

impl SourceKind {
    pub fn prefix(self) -> &'static str {
        match self {
            SourceKind::Ssh => "ssh",
            SourceKind::Epoch => "epoch",
        }
    }
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// It has forwards: opening it opens them.
    Tunnel,
    /// An ssh_config host with no forwards: it can be diagnosed and used as a bastion.
    Host,
    /// An epoch.toml database without an ssh_tunnel: reached directly.
    Direct,
}

impl fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionKind::Tunnel => "tunnel",
            ConnectionKind::Host => "host",
            ConnectionKind::Direct => "direct",
        })
    }
}

/// How an unknown or changed host key is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Unknown or changed keys are refused (a client may be asked to accept an unknown one).
    Strict,
    /// As strict; OpenSSH would ask (`StrictHostKeyChecking ask`, its default).
    Ask,
    /// An unknown key is added to known_hosts; a changed key is refused.
    AcceptNew,
    /// Any key is accepted, with a warning on every connect.
    Off,
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::Ask => "ask",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "off",
        })
    }
}

/// A span of time, shown and serialized in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub Duration);

impl Seconds {
    pub fn from_secs(s: u64) -> Self {
        Seconds(Duration::from_secs(s))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

/// One SSH server on the way: a jump host or the bastion.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// The name as written (an ssh_config alias, or the host).
    pub name: String,
    pub host: Sourced<String>,
    pub port: Sourced<u16>,
    pub user: Sourced<String>,
    pub identity_files: Vec<Sourced<PathBuf>>,
    pub identities_only: Sourced<bool>,
    pub use_agent: Sourced<bool>,
    /// The agent socket; `None` means `$SSH_AUTH_SOCK`.
    pub identity_agent: Option<Sourced<String>>,
    pub certificate_files: Vec<Sourced<PathBuf>>,
    pub key_passphrase: Option<Sourced<Secret>>,
    pub known_hosts_files: Sourced<Vec<PathBuf>>,
    pub host_key_policy: Sourced<HostKeyPolicy>,
    pub connect_timeout: Sourced<Seconds>,
    /// Zero: no keepalive.
    pub keepalive_interval: Sourced<Seconds>,
    pub keepalive_count_max: Sourced<u32>,
}

impl Hop {
    pub fn address(&self) -> String {
        Endpoint::tcp(self.host.value.clone(), self.port.value).to_string()
    }
}

/// What to do when the connection drops.
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    pub auto_reconnect: Sourced<bool>,
    /// The first delay; later ones back off exponentially, with jitter, capped.
    pub reconnect_delay: Sourced<Seconds>,
    /// Zero: no limit.
    pub max_reconnect_attempts: Sourced<u32>,
    pub exit_on_forward_failure: Sourced<bool>,
}

impl Policy {
    pub fn defaults() -> Self {
        Policy {
            auto_reconnect: Sourced::default_value(true),
            reconnect_delay: Sourced::default_value(Seconds::from_secs(1)),
            max_reconnect_attempts: Sourced::default_value(0),
            exit_on_forward_failure: Sourced::default_value(false),
        }
    }
}

/// The database an epoch.toml entry describes, as seen from the bastion.
#[derive(Clone, Debug, Serialize)]
pub struct Database {
    pub engine: String,
    pub host: Sourced<String>,
    pub port: Sourced<u16>,
    pub database: Option<Sourced<String>>,
    pub username: Option<Sourced<String>>,
    pub password_file: Option<Sourced<PathBuf>>,
    pub password: Option<Sourced<Secret>>,
    /// Whether the PostgreSQL probe uses TLS, and how much of the certificate it checks.
    pub sslmode: Sourced<SslMode>,
    /// The root certificates the server's certificate is checked against (verify-ca,
    /// verify-full, and require when the file is there, as libpq does).
    pub sslrootcert: Sourced<RootCert>,
}

/// libpq's `sslmode`, from least to most protection (`allow` is not offered: it tries
/// without TLS first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS; a password may then be sent in cleartext or MD5 if the server asks.
    Disable,
    /// TLS when the server offers it, the certificate not checked (libpq's default).
    Prefer,
    /// TLS or nothing; the certificate checked only if a root certificate file is there.
    Require,
    /// TLS, the certificate signed by a root in `sslrootcert`.
    VerifyCa,
    /// As verify-ca, and the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// Every value, as written in epoch.toml.
    pub const NAMES: [&'static str; 5] =
        ["disable", "prefer", "require", "verify-ca", "verify-full"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// libpq's `sslrootcert`: a PEM file, or `system` (the system's trusted roots).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    System,
}

impl fmt::Display for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCert::File(p) => write!(f, "{}", p.display()),
            RootCert::System => f.write_str("system"),
        }
    }
}

impl Serialize for RootCert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A connection: a name, where it came from, the hops, the forwards.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The name in its own file (Host alias or storage entry name).
    pub name: String,
    /// The name to show and to type: `ssh:NAME` / `epoch:NAME` when both sources have NAME.
    pub display_name: String,
    pub source: SourceKind,
    /// The Host line or the table header that defines it.
    pub origin: Origin,
    /// Outermost first. For an ssh_config host the last hop is the host itself.
    pub hops: Vec<Hop>,
    pub forwards: Vec<Sourced<Forward>>,
    pub database: Option<Database>,
    pub policy: Policy,
    /// Warnings about this connection (values ignored, unsupported settings).
    pub problems: Vec<Problem>,
    /// Settings in the source that warren does not use, kept for `show`.
    pub other: Vec<(String, Sourced<String>)>,
}

impl Connection {
    pub fn kind(&self) -> ConnectionKind {
        if !self.forwards.is_empty() {
            ConnectionKind::Tunnel
        } else if self.source == SourceKind::Epoch {
            ConnectionKind::Direct
        } else {
            ConnectionKind::Host
        }
    }

    /// What the connection reaches: the database, else the first local forward's target,
    /// else the last hop itself.
    pub fn target(&self) -> Option<String> {
        if let Some(db) = &self.database {
            return Some(Endpoint::tcp(db.host.value.clone(), db.port.value).to_string());
        }
        if let Some(f) = self
            .forwards
            .iter()
            .find(|f| f.value.kind == ForwardKind::Local)
        {
            return f.value.connect.as_ref().map(Endpoint::to_string);
        }
        self.hops.last().map(Hop::address)
    }
}
