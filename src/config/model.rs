//! What a connection is: its hops, its forwards, its database and its policy. Every value
//! carries its [`Origin`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::algorithms::{AlgorithmKind, List, default_list};
use super::command::{HostsCommand, MatchExec};
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
    /// The user's known_hosts files, checked and (the first) written; empty for `none`.
    pub known_hosts_files: Sourced<Vec<PathBuf>>,
    /// The system's known_hosts files: checked, never written; empty for `none`.
    pub global_known_hosts_files: Sourced<Vec<PathBuf>>,
    /// The name host keys are looked up and recorded under instead of the host's.
    pub host_key_alias: Option<Sourced<String>>,
    /// A file of revoked keys (a key list or an OpenSSH KRL).
    pub revoked_host_keys: Option<Sourced<PathBuf>>,
    /// Also check (and record) the key under the server's IP address.
    pub check_host_ip: Sourced<bool>,
    /// Hash host names in lines warren adds to known_hosts.
    pub hash_known_hosts: Sourced<bool>,
    /// A command whose output is more known_hosts lines (KnownHostsCommand).
    pub known_hosts_command: Option<Sourced<HostsCommand>>,
    /// A command whose stdin and stdout are this hop's connection (ProxyCommand), as
    /// written; see [`Hop::proxy_command_line`].
    pub proxy_command: Option<Sourced<String>>,
    /// The cloud bastion the host was written as (`ssm:i-0abc123`, `iap:vm@project/zone`,
    /// see [`crate::config::cloud`]): `proxy_command` is its command, from the same line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<Sourced<String>>,
    /// `ProxyUseFdpass yes`: the ProxyCommand passes back a connected socket (see
    /// `ssh::proxy`).
    pub proxy_use_fdpass: Sourced<bool>,
    /// A command that prints or writes a fresh user certificate for this hop's key, run
    /// before connecting when the certificate is missing or about to expire (see
    /// `ssh::certificate`); as written.
    pub certificate_command: Option<Sourced<String>>,
    /// The `Match exec` criteria evaluated to resolve this hop, and what came of them.
    pub match_exec: Vec<MatchExec>,
    /// Whether commands from the config may run (false under `--no-exec`).
    pub run_commands: Sourced<bool>,
    pub host_key_policy: Sourced<HostKeyPolicy>,
    /// The algorithms offered, as OpenSSH assembles them.
    pub algorithms: Algorithms,
    pub auth: AuthPrefs,
    /// Never ask a person (BatchMode): prompts are refused.
    pub batch_mode: Sourced<bool>,
    pub connect_timeout: Sourced<Seconds>,
    /// Zero: no keepalive.
    pub keepalive_interval: Sourced<Seconds>,
    pub keepalive_count_max: Sourced<u32>,
}

impl Hop {
    pub fn address(&self) -> String {
        Endpoint::tcp(self.host.value.clone(), self.port.value).to_string()
    }

    /// Everything about this hop that decides whom warren trusts and who it is: only hops
    /// with equal keys may share one SSH connection.
    pub fn trust_key(&self) -> String {
        use std::fmt::Write;
        let mut k = String::new();
        let paths = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        };
        let _ = write!(
            k,
            "{}@{}:{}|policy={}|user_kh={}|global_kh={}|alias={}|revoked={}|ip={}|khcmd={}|proxy={}|exec={}",
            self.user.value,
            self.host.value,
            self.port.value,
            self.host_key_policy.value,
            paths(&self.known_hosts_files.value),
            paths(&self.global_known_hosts_files.value),
            self.host_key_alias
                .as_ref()
                .map(|a| a.value.as_str())
                .unwrap_or(""),
            self.revoked_host_keys
                .as_ref()
                .map(|r| r.value.display().to_string())
                .unwrap_or_default(),
            self.check_host_ip.value,
            self.known_hosts_command
                .as_ref()
                .map(|c| c.value.raw.as_str())
                .unwrap_or(""),
            self.proxy_command
                .as_ref()
                .map(|c| c.value.as_str())
                .unwrap_or(""),
            self.run_commands.value,
        );
        let files = |v: &[Sourced<PathBuf>]| {
            v.iter()
                .map(|p| p.value.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        };
        let _ = write!(
            k,
            "|ids={}|only={}|agent={}:{}|certs={}|certcmd={}|batch={}",
            files(&self.identity_files),
            self.identities_only.value,
            self.use_agent.value,
            self.identity_agent
                .as_ref()
                .map(|a| a.value.as_str())
                .unwrap_or(""),
            files(&self.certificate_files),
            self.certificate_command
                .as_ref()
                .map(|c| c.value.as_str())
                .unwrap_or(""),
            self.batch_mode.value,
        );
        for (kind, list) in self.algorithms.lists() {
            let _ = write!(k, "|{kind:?}={}", list.value.join(","));
        }
        let a = &self.auth;
        let _ = write!(
            k,
            "|auth={}:{}:{}:{}",
            a.preferred.value.join(","),
            a.password.value,
            a.kbd_interactive.value,
            a.password_prompts.value
        );
        k
    }
}

/// The algorithm lists of a hop, each assembled as OpenSSH does from the config and its
/// defaults. An origin of `default` means the list was not set.
#[derive(Clone, Debug, Serialize)]
pub struct Algorithms {
    pub ciphers: Sourced<List>,
    pub kex: Sourced<List>,
    pub host_key: Sourced<List>,
    pub macs: Sourced<List>,
    pub pubkey: Sourced<List>,
    /// HostKeyAlgorithms is unset or given as `+list`/`-list`: ssh then puts the types
    /// known_hosts holds for the host first.
    pub host_key_reorder: bool,
}

impl Algorithms {
    /// OpenSSH's defaults.
    pub fn defaults() -> Self {
        let d = |k: AlgorithmKind| Sourced::default_value(default_list(k));
        Algorithms {
            ciphers: d(AlgorithmKind::Ciphers),
            kex: d(AlgorithmKind::Kex),
            host_key: d(AlgorithmKind::HostKey),
            macs: d(AlgorithmKind::Macs),
            pubkey: d(AlgorithmKind::Pubkey),
            host_key_reorder: true,
        }
    }

    pub fn get(&self, kind: AlgorithmKind) -> &Sourced<List> {
        match kind {
            AlgorithmKind::Ciphers => &self.ciphers,
            AlgorithmKind::Kex => &self.kex,
            AlgorithmKind::HostKey => &self.host_key,
            AlgorithmKind::Macs => &self.macs,
            AlgorithmKind::Pubkey => &self.pubkey,
        }
    }

    /// The lists a host resolved to (shared, not copied); a kind not given is OpenSSH's
    /// default.
    pub fn from_lists(lists: Vec<(AlgorithmKind, Sourced<List>)>, host_key_reorder: bool) -> Self {
        let mut slots: [Option<Sourced<List>>; 5] = Default::default();
        for (kind, list) in lists {
            if let Some(i) = AlgorithmKind::ALL.iter().position(|k| *k == kind) {
                slots[i] = Some(list);
            }
        }
        let mut get = |kind: AlgorithmKind| {
            let i = AlgorithmKind::ALL
                .iter()
                .position(|k| *k == kind)
                .unwrap_or_default();
            slots[i]
                .take()
                .unwrap_or_else(|| Sourced::default_value(default_list(kind)))
        };
        Algorithms {
            ciphers: get(AlgorithmKind::Ciphers),
            kex: get(AlgorithmKind::Kex),
            host_key: get(AlgorithmKind::HostKey),
            macs: get(AlgorithmKind::Macs),
            pubkey: get(AlgorithmKind::Pubkey),
            host_key_reorder,
        }
    }

    pub fn set(&mut self, kind: AlgorithmKind, list: Sourced<List>) {
        match kind {
            AlgorithmKind::Ciphers => self.ciphers = list,
            AlgorithmKind::Kex => self.kex = list,
            AlgorithmKind::HostKey => self.host_key = list,
            AlgorithmKind::Macs => self.macs = list,
            AlgorithmKind::Pubkey => self.pubkey = list,
        }
    }

    pub fn lists(&self) -> impl Iterator<Item = (AlgorithmKind, &Sourced<List>)> {
        AlgorithmKind::ALL.into_iter().map(|k| (k, self.get(k)))
    }
}

/// Which authentication methods to try, in which order, how often (ssh_config's
/// PreferredAuthentications, PasswordAuthentication, KbdInteractiveAuthentication and
/// NumberOfPasswordPrompts).
#[derive(Clone, Debug, Serialize)]
pub struct AuthPrefs {
    pub preferred: Sourced<Vec<String>>,
    pub password: Sourced<bool>,
    pub kbd_interactive: Sourced<bool>,
    pub password_prompts: Sourced<u32>,
}

/// OpenSSH's order when PreferredAuthentications is not set.
pub const DEFAULT_PREFERRED_AUTHENTICATIONS: [&str; 5] = [
    "gssapi-with-mic",
    "hostbased",
    "publickey",
    "keyboard-interactive",
    "password",
];

impl AuthPrefs {
    pub fn defaults() -> Self {
        AuthPrefs {
            preferred: Sourced::default_value(
                DEFAULT_PREFERRED_AUTHENTICATIONS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            password: Sourced::default_value(true),
            kbd_interactive: Sourced::default_value(true),
            password_prompts: Sourced::default_value(3),
        }
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
    /// The tunnel closes by itself this long after it opens.
    pub max_duration: Option<Sourced<Seconds>>,
    /// The tunnel closes by itself after this long with no client connection.
    pub idle_timeout: Option<Sourced<Seconds>>,
    /// A local port in use is replaced by the next free one (`warren up --port-fallback`).
    pub port_fallback: bool,
    /// How often the database behind the tunnel is checked while it is up; `None`: the
    /// user's default (30 s); zero: never.
    pub health_interval: Option<Sourced<Seconds>>,
    /// Listen with no SSH session and open one when a client connects; closed again after
    /// `idle_timeout` with no client. `None`: the user's default (off).
    pub on_demand: Option<Sourced<bool>>,
}

impl Policy {
    pub fn defaults() -> Self {
        Policy {
            auto_reconnect: Sourced::default_value(true),
            reconnect_delay: Sourced::default_value(Seconds::from_secs(1)),
            max_reconnect_attempts: Sourced::default_value(0),
            exit_on_forward_failure: Sourced::default_value(false),
            max_duration: None,
            idle_timeout: None,
            port_fallback: false,
            health_interval: None,
            on_demand: None,
        }
    }

    /// Whether the tunnel opens its session on demand.
    pub fn on_demand(&self) -> bool {
        self.on_demand.as_ref().is_some_and(|o| o.value)
    }
}

/// The kind of database, from the engine name of `[storage.<engine>.<name>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Postgres,
    Mysql,
    Mssql,
    Redis,
    Mongodb,
    /// An engine warren has no protocol for (an object store, ...).
    Other,
}

impl DbKind {
    /// The kind an engine name means (`postgres` and `postgresql`, `mysql` and `mariadb`, ...).
    pub fn of(engine: &str) -> DbKind {
        match engine.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => DbKind::Postgres,
            "mysql" | "mariadb" => DbKind::Mysql,
            "mssql" | "sqlserver" => DbKind::Mssql,
            "redis" => DbKind::Redis,
            "mongodb" | "mongo" => DbKind::Mongodb,
            _ => DbKind::Other,
        }
    }

    /// The database's usual port.
    pub fn default_port(self) -> Option<u16> {
        Some(match self {
            DbKind::Postgres => 5432,
            DbKind::Mysql => 3306,
            DbKind::Mssql => 1433,
            DbKind::Redis => 6379,
            DbKind::Mongodb => 27017,
            DbKind::Other => return None,
        })
    }

    /// The URL scheme of its connection strings.
    pub fn scheme(self) -> Option<&'static str> {
        Some(match self {
            DbKind::Postgres => "postgresql",
            DbKind::Mysql => "mysql",
            DbKind::Mssql => "sqlserver",
            DbKind::Redis => "redis",
            DbKind::Mongodb => "mongodb",
            DbKind::Other => return None,
        })
    }
}

/// The database an epoch.toml entry describes, as seen from the bastion.
#[derive(Clone, Debug, Serialize)]
pub struct Database {
    /// The engine name as written (see [`Database::kind`]).
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
    /// The name the server's certificate must carry (verify-full), when the bastion reaches
    /// the database by another name or an address; default: `host`.
    pub tls_server_name: Option<Sourced<String>>,
    /// Whether the PostgreSQL probe's SCRAM login binds itself to the TLS connection
    /// (SCRAM-SHA-256-PLUS with tls-server-end-point), as libpq's `channel_binding`.
    pub channel_binding: Sourced<ChannelBindingMode>,
}

impl Database {
    /// The name verify-full checks the certificate against: `tls_server_name`, else `host`.
    pub fn tls_name(&self) -> &str {
        self.tls_server_name
            .as_ref()
            .map(|n| n.value.as_str())
            .unwrap_or(&self.host.value)
    }
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

    /// The mysql client's `--ssl-mode` names (any case): DISABLED, PREFERRED, REQUIRED,
    /// VERIFY_CA, VERIFY_IDENTITY.
    pub const MYSQL_NAMES: [&'static str; 5] = [
        "DISABLED",
        "PREFERRED",
        "REQUIRED",
        "VERIFY_CA",
        "VERIFY_IDENTITY",
    ];

    pub fn parse_mysql(s: &str) -> Option<Self> {
        let i = Self::MYSQL_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))?;
        Self::parse(Self::NAMES[i])
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

/// libpq's `channel_binding`: whether a SCRAM login is bound to the TLS connection it runs
/// over (SCRAM-SHA-256-PLUS, RFC 5802 section 6, with RFC 5929's `tls-server-end-point`), so
/// that a server in between that ends TLS with a certificate of its own is caught even when
/// the certificate is not verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelBindingMode {
    /// Never: plain SCRAM-SHA-256, telling the server the client does not bind (`n,,`).
    Disable,
    /// Over TLS when the server offers SCRAM-SHA-256-PLUS (libpq's default); over TLS
    /// without it, SCRAM-SHA-256 saying the client could have (`y,,`), so that a server
    /// whose offer was stripped on the way refuses the login.
    Prefer,
    /// The login must be bound: no TLS, a server that does not offer SCRAM-SHA-256-PLUS,
    /// or a login without SCRAM at all fails.
    Require,
}

impl ChannelBindingMode {
    /// Every value, as written in epoch.toml.
    pub const NAMES: [&'static str; 3] = ["disable", "prefer", "require"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => ChannelBindingMode::Disable,
            "prefer" => ChannelBindingMode::Prefer,
            "require" => ChannelBindingMode::Require,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for ChannelBindingMode {
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

impl Database {
    pub fn kind(&self) -> DbKind {
        DbKind::of(&self.engine)
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
    /// Labels to select connections by (`warren up @prod`), in the order written.
    pub tags: Vec<Sourced<String>>,
    /// Warnings about this connection (values ignored, unsupported settings).
    pub problems: Vec<Problem>,
    /// Settings in the source that warren does not use, kept for `show`.
    pub other: Vec<(String, Sourced<String>)>,
    /// What the entry asks for that its file may not do until the user trusts the file
    /// ([`crate::config::trust`]): while it is held, the connection is not opened.
    pub untrusted: Option<crate::config::trust::Held>,
}

impl Connection {
    /// Why the connection may not be opened or diagnosed now: its file is not trusted and it
    /// asks for what only a trusted file may (each setting with its line).
    pub fn refusal(&self) -> Option<String> {
        let held = self.untrusted.as_ref()?;
        let uses: Vec<String> = held
            .uses
            .iter()
            .map(|(what, at)| format!("{what} ({at})"))
            .collect();
        Some(format!(
            "{} is not opened: {} is not trusted ({}), and the entry asks for what warren does only for files you trust: {}; {}",
            self.display_name,
            held.file.display(),
            held.why,
            uses.join("; "),
            held.fix()
        ))
    }

    /// What the tunnel is made from (hops, forwards, database, policy), without where each
    /// value was written: two loads of a file where only comments or line numbers moved
    /// give the same key. A live reload compares them to tell an open tunnel that its
    /// settings changed.
    pub fn settings_key(&self) -> String {
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("source");
                    m.values_mut().for_each(strip);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut v = serde_json::json!([self.hops, self.database, self.policy]);
        strip(&mut v);
        let forwards: Vec<&Forward> = self.forwards.iter().map(|f| &f.value).collect();
        format!("{v} {forwards:?}")
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.value.eq_ignore_ascii_case(tag))
    }

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
