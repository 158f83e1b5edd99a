//! epoch.toml (the Horizon Epoch format) -> connections.
//!
//! `[storage.<engine>.<name>]` describes a database (host, port, database, username,
//! password_file); its `ssh_tunnel` table says how to reach it: the bastion, then `jump_host`
//! tables nested to any depth (the outermost is dialled first) or a string naming an
//! ssh_config alias. `${VAR}` works in every string; `~` in paths; `EPOCH_SSH_HOST`,
//! `EPOCH_SSH_USER` and `EPOCH_SSH_KEY_FILE` fill what an entry leaves out.
//!
//! One bad entry is an error on that entry: the others still load. A TOML syntax error skips
//! only the section it is in (see [`salvage`]).

mod fields;
mod salvage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fields::{Findings, Source, Table};

use super::context::Context;
use super::destination::Destination;
use super::forward::{Endpoint, Forward, ForwardKind};
use super::from_ssh;
use super::model::{Connection, Database, Hop, HostKeyPolicy, Policy, Seconds, SourceKind};
use super::origin::{Origin, Problem, Sourced};
use super::ssh_config::{Overrides, SshConfig};

pub use fields::closest;

/// The database's port when an entry does not give one.
pub fn default_port(engine: &str) -> Option<u16> {
    Some(match engine.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "mssql" | "sqlserver" => 1433,
        "redis" => 6379,
        "mongodb" | "mongo" => 27017,
        _ => return None,
    })
}

/// Keys of the `ssh_tunnel` table.
pub const TUNNEL_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "endpoint",
    "key_file",
    "key_passphrase",
    "use_agent",
    "cert_file",
    "jump_host",
    "known_hosts_file",
    "strict_host_key_checking",
    "keepalive_interval",
    "keepalive_count_max",
    "auto_reconnect",
    "reconnect_delay",
    "max_reconnect_attempts",
    "connect_timeout",
    "local_port",
    "local_bind",
    "local_socket",
];

/// Keys of a `jump_host` table.
pub const JUMP_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "endpoint",
    "key_file",
    "key_passphrase",
    "use_agent",
    "cert_file",
    "jump_host",
    "known_hosts_file",
    "strict_host_key_checking",
    "keepalive_interval",
    "keepalive_count_max",
    "connect_timeout",
];

/// Default keepalive for tunnels from epoch.toml: a dead bastion is noticed in ~90 s.
const DEFAULT_KEEPALIVE: u64 = 30;
const DEFAULT_KEEPALIVE_COUNT: u32 = 3;

/// What loading one epoch.toml gave.
#[derive(Debug, Default)]
pub struct EpochFile {
    pub connections: Vec<Connection>,
    pub problems: Vec<Problem>,
    /// The file is not valid TOML as a whole (sections were skipped).
    pub syntax_error: bool,
}

/// Loads the connections of an epoch.toml already read into `text`.
pub fn load(path: &Path, text: &str, ctx: &Context, ssh: &SshConfig) -> EpochFile {
    let path: Arc<Path> = Arc::from(path);
    let mut out = EpochFile::default();
    let (doc, syntax) = salvage::parse(text);
    for e in syntax {
        out.syntax_error = true;
        let mut msg = format!("TOML syntax error: {}", e.message);
        if !e.skipped.is_empty() {
            msg.push_str(&format!("; skipped {}", e.skipped.join(", ")));
        }
        out.problems
            .push(Problem::error(Origin::file(&path, e.line), msg).with_fix(e.fix));
    }
    let Some(doc) = doc else { return out };
    let src = Source::new(Arc::clone(&path), doc.raw(), ctx);
    let root = Table {
        src: &src,
        table: doc.as_table(),
        name: String::new(),
        origin: Origin::file(&path, 1),
    };
    let Some(storage) = root.sub("storage") else {
        return out;
    };
    let storage = match storage {
        Ok(s) => s,
        Err(p) => {
            out.problems
                .push(p.with_fix("write [storage.<engine>.<name>] tables"));
            return out;
        }
    };
    let mut seen: std::collections::HashMap<String, Origin> = std::collections::HashMap::new();
    for (engine, _) in storage.table.iter() {
        let engine_table = match storage.sub(engine) {
            Some(Ok(t)) => t,
            Some(Err(p)) => {
                out.problems
                    .push(p.with_fix(format!("write [storage.{engine}.<name>] tables")));
                continue;
            }
            None => continue,
        };
        for (name, _) in engine_table.table.iter() {
            let entry = match engine_table.sub(name) {
                Some(Ok(t)) => Table {
                    name: format!("storage.{engine}.{name}"),
                    ..t
                },
                Some(Err(p)) => {
                    out.problems
                        .push(p.with_fix(format!("write [storage.{engine}.{name}] as a table")));
                    continue;
                }
                None => continue,
            };
            if let Some(first) = seen.get(name) {
                out.problems.push(
                    Problem::error(entry.origin.clone(), format!("a second entry named '{name}' (the first is at {first}); this one is skipped"))
                        .with_fix("give each entry its own name"),
                );
                continue;
            }
            let mut f = Findings::default();
            let conn = entry_connection(engine, name, &entry, ssh, &mut f);
            let warnings: Vec<Problem> = f
                .problems
                .iter()
                .filter(|p| p.severity == super::Severity::Warning)
                .cloned()
                .collect();
            out.problems.extend(f.problems.iter().cloned());
            if f.has_errors() {
                continue;
            }
            if let Some(mut c) = conn {
                c.problems.extend(warnings);
                seen.insert(name.to_string(), entry.origin.clone());
                out.connections.push(c);
            }
        }
    }
    out
}

/// One storage entry; `None` when it is not a network database (e.g. an object store).
fn entry_connection(
    engine: &str,
    name: &str,
    t: &Table,
    ssh: &SshConfig,
    f: &mut Findings,
) -> Option<Connection> {
    let tunnel = match t.sub("ssh_tunnel") {
        Some(Ok(tt)) => Some(tt),
        Some(Err(p)) => {
            f.push(p.with_fix(format!(
                "write [{}.ssh_tunnel] with host = \"bastion\"",
                t.name
            )));
            return None;
        }
        None => None,
    };
    let host = t.string("host", f);
    if tunnel.is_none() && host.is_none() {
        return None;
    }
    let Some(host) = host else {
        f.push(
            Problem::error(
                t.origin.clone(),
                format!(
                    "[{}] has no host: the database's address as the bastion sees it",
                    t.name
                ),
            )
            .with_fix("add host = \"db.internal\""),
        );
        return None;
    };
    let port = match t.port("port", false, f) {
        Some(p) => p,
        None if t.item("port").is_some() => return None,
        None => match default_port(engine) {
            Some(p) => Sourced::default_value(p),
            None => {
                f.push(
                    Problem::error(
                        t.origin.clone(),
                        format!("[{}]: no default port for engine '{engine}'", t.name),
                    )
                    .with_fix("add port = <the database's port>"),
                );
                return None;
            }
        },
    };
    let database = Database {
        engine: engine.to_string(),
        host,
        port,
        database: t.string("database", f),
        username: t.string("username", f).or_else(|| t.string("user", f)),
        password_file: t.path("password_file", f),
        password: t.secret("password", f),
    };
    let mut conn = Connection {
        name: name.to_string(),
        display_name: name.to_string(),
        source: SourceKind::Epoch,
        origin: t.origin.clone(),
        hops: Vec::new(),
        forwards: Vec::new(),
        database: None,
        policy: Policy::defaults(),
        problems: Vec::new(),
        other: Vec::new(),
    };
    if let Some(tt) = &tunnel {
        tt.unknown_keys(TUNNEL_KEYS, f);
        conn.hops = hops(tt, &Inherit::default(), true, ssh, f)?;
        let listen = local_listen(t, tt, f)?;
        conn.forwards.push(Sourced::new(
            Forward {
                kind: ForwardKind::Local,
                listen: listen.value,
                connect: Some(Endpoint::tcp(
                    database.host.value.clone(),
                    database.port.value,
                )),
            },
            listen.origin,
        ));
        if let Some(v) = tt.boolean("auto_reconnect", f) {
            conn.policy.auto_reconnect = v;
        }
        if let Some(v) = tt.seconds("reconnect_delay", f) {
            conn.policy.reconnect_delay = v;
        }
        if let Some(v) = tt.count("max_reconnect_attempts", f) {
            conn.policy.max_reconnect_attempts = v;
        }
    }
    conn.database = Some(database);
    Some(conn)
}

/// A warren key that may sit in the entry or in its ssh_tunnel table (not both).
fn either<'s, 'a, T>(
    entry: &Table<'s, 'a>,
    tunnel: &Table<'s, 'a>,
    key: &str,
    f: &mut Findings,
    get: impl Fn(&Table<'s, 'a>, &str, &mut Findings) -> Option<Sourced<T>>,
) -> Option<Sourced<T>> {
    let a = get(entry, key, f);
    let b = get(tunnel, key, f);
    match (a, b) {
        (Some(a), Some(b)) => {
            f.push(
                Problem::error(
                    b.origin.clone(),
                    format!("{key} is set twice (also at {})", a.origin),
                )
                .with_fix(format!("keep one {key}")),
            );
            None
        }
        (a, b) => a.or(b),
    }
}

/// Where the local end of the tunnel listens.
fn local_listen(entry: &Table, tunnel: &Table, f: &mut Findings) -> Option<Sourced<Endpoint>> {
    let socket = either(entry, tunnel, "local_socket", f, |t, k, f| t.path(k, f));
    let port = either(entry, tunnel, "local_port", f, |t, k, f| t.port(k, true, f));
    let bind = either(entry, tunnel, "local_bind", f, |t, k, f| t.string(k, f));
    if f.has_errors() {
        return None;
    }
    match (socket, port) {
        (Some(s), Some(p)) => {
            f.push(
                Problem::error(
                    p.origin,
                    format!("both local_port and local_socket (at {}) are set", s.origin),
                )
                .with_fix("keep one: a TCP port or a unix socket"),
            );
            None
        }
        (Some(s), None) => Some(s.map(Endpoint::Unix)),
        (None, port) => {
            let port = port.unwrap_or_else(|| Sourced::default_value(0));
            let host = bind
                .map(|b| b.value)
                .unwrap_or_else(|| "127.0.0.1".to_string());
            Some(Sourced::new(Endpoint::tcp(host, port.value), port.origin))
        }
    }
}

/// Settings a jump_host table takes from the table around it when it does not set them.
#[derive(Clone, Default)]
struct Inherit {
    known_hosts: Option<Sourced<Vec<PathBuf>>>,
    policy: Option<Sourced<HostKeyPolicy>>,
    connect_timeout: Option<Sourced<Seconds>>,
    keepalive_interval: Option<Sourced<Seconds>>,
    keepalive_count_max: Option<Sourced<u32>>,
}

/// The hops of an ssh_tunnel (or jump_host) table: its jump hosts, outermost first, then itself.
fn hops(
    t: &Table,
    inherit: &Inherit,
    bastion: bool,
    ssh: &SshConfig,
    f: &mut Findings,
) -> Option<Vec<Hop>> {
    let ctx = ssh.context();
    if !bastion {
        t.unknown_keys(JUMP_KEYS, f);
    }
    let endpoint = t
        .string("endpoint", f)
        .and_then(|e| match Destination::parse(&e.value) {
            Ok(d) => Some(Sourced::new(d, e.origin)),
            Err(msg) => {
                f.push(
                    Problem::error(e.origin, format!("{}.endpoint: {msg}", t.name))
                        .with_fix("write endpoint = \"ssh://user@host:22\""),
                );
                None
            }
        });
    if let Some(e) = &endpoint {
        for key in ["host", "user", "port"] {
            if let Some((_, origin)) = t.item(key) {
                f.push(
                    Problem::error(
                        origin,
                        format!(
                            "{}: both endpoint (at {}) and {key} are set",
                            t.name, e.origin
                        ),
                    )
                    .with_fix(format!("keep the endpoint or the {key} key, not both")),
                );
            }
        }
    }
    let env = |var: &str| {
        ctx.var(var)
            .filter(|v| !v.is_empty())
            .map(|v| Sourced::new(v.to_string(), Origin::Env(var.to_string())))
    };
    let from_endpoint = |get: &dyn Fn(&Destination) -> Option<String>| {
        endpoint
            .as_ref()
            .and_then(|e| get(&e.value).map(|v| Sourced::new(v, e.origin.clone())))
    };
    let host = t
        .string("host", f)
        .or_else(|| from_endpoint(&|d| Some(d.host.clone())))
        .or_else(|| if bastion { env("EPOCH_SSH_HOST") } else { None });
    let port = t
        .port("port", false, f)
        .or_else(|| {
            endpoint
                .as_ref()
                .and_then(|e| e.value.port.map(|p| Sourced::new(p, e.origin.clone())))
        })
        .unwrap_or_else(|| Sourced::default_value(22));
    let user = t
        .string("user", f)
        .or_else(|| from_endpoint(&|d| d.user.clone()))
        .or_else(|| env("EPOCH_SSH_USER"))
        .unwrap_or_else(|| Sourced::default_value(ctx.local_user.clone()));
    let key_file = t.path("key_file", f).or_else(|| {
        env("EPOCH_SSH_KEY_FILE")
            .map(|k| k.map(|v| PathBuf::from(super::expand::tilde(&v, &ctx.home))))
    });
    let use_agent = t
        .boolean("use_agent", f)
        .unwrap_or_else(|| Sourced::default_value(key_file.is_none()));
    let identities_only = Sourced::new(
        key_file.is_some(),
        key_file
            .as_ref()
            .map(|k| k.origin.clone())
            .unwrap_or(Origin::Default),
    );
    let identity_files = match key_file {
        Some(k) => vec![k],
        None => super::ssh_config::resolve::DEFAULT_IDENTITY_FILES
            .iter()
            .map(|p| Sourced::default_value(PathBuf::from(super::expand::tilde(p, &ctx.user_home))))
            .collect(),
    };
    let known_hosts = t
        .path("known_hosts_file", f)
        .map(|p| p.map(|v| vec![v]))
        .or_else(|| inherit.known_hosts.clone())
        .unwrap_or_else(|| Sourced::default_value(vec![ctx.user_home.join(".ssh/known_hosts")]));
    let policy = strictness(t, f)
        .or_else(|| inherit.policy.clone())
        .unwrap_or_else(|| Sourced::default_value(HostKeyPolicy::Strict));
    let connect_timeout = t
        .seconds("connect_timeout", f)
        .or_else(|| inherit.connect_timeout.clone())
        .unwrap_or_else(|| {
            Sourced::default_value(Seconds::from_secs(from_ssh::DEFAULT_CONNECT_TIMEOUT))
        });
    let keepalive_interval = t
        .seconds("keepalive_interval", f)
        .or_else(|| inherit.keepalive_interval.clone())
        .unwrap_or_else(|| Sourced::default_value(Seconds::from_secs(DEFAULT_KEEPALIVE)));
    let keepalive_count_max = t
        .count("keepalive_count_max", f)
        .or_else(|| inherit.keepalive_count_max.clone())
        .unwrap_or_else(|| Sourced::default_value(DEFAULT_KEEPALIVE_COUNT));
    let Some(host) = host else {
        let fix = if bastion {
            "add host = \"bastion.example.com\" (or set EPOCH_SSH_HOST)"
        } else {
            "add host = \"jump.example.com\""
        };
        f.push(Problem::error(t.origin.clone(), format!("[{}] has no host", t.name)).with_fix(fix));
        return None;
    };
    let this = Hop {
        name: host.value.clone(),
        host,
        port,
        user,
        identity_files,
        identities_only,
        use_agent,
        identity_agent: None,
        certificate_files: t.path("cert_file", f).into_iter().collect(),
        key_passphrase: t.secret("key_passphrase", f),
        known_hosts_files: known_hosts.clone(),
        host_key_policy: policy.clone(),
        connect_timeout: connect_timeout.clone(),
        keepalive_interval: keepalive_interval.clone(),
        keepalive_count_max: keepalive_count_max.clone(),
    };
    let inner = Inherit {
        known_hosts: Some(known_hosts),
        policy: Some(policy),
        connect_timeout: Some(connect_timeout),
        keepalive_interval: Some(keepalive_interval),
        keepalive_count_max: Some(keepalive_count_max),
    };
    let mut chain = match t.item("jump_host") {
        None => Vec::new(),
        Some((item, origin)) => {
            if let Some(alias) = item.as_str() {
                ssh_alias_hops(alias, origin, ssh, f)?
            } else {
                match t.sub("jump_host") {
                    Some(Ok(jt)) => hops(&jt, &inner, false, ssh, f)?,
                    Some(Err(p)) => {
                        f.push(p.with_fix("write jump_host = { host = \"jump.example.com\" } or jump_host = \"ssh-config-alias\""));
                        return None;
                    }
                    None => Vec::new(),
                }
            }
        }
    };
    chain.push(this);
    Some(chain)
}

/// `jump_host = "alias"`: the alias resolved through ssh_config, its own ProxyJump included.
fn ssh_alias_hops(
    alias: &str,
    origin: Origin,
    ssh: &SshConfig,
    f: &mut Findings,
) -> Option<Vec<Hop>> {
    let dest = match Destination::parse(alias) {
        Ok(d) => d,
        Err(msg) => {
            f.push(
                Problem::error(origin, format!("jump_host: {msg}"))
                    .with_fix("name an ssh_config Host alias, or write a jump_host table"),
            );
            return None;
        }
    };
    let over = Overrides {
        user: dest.user.clone().map(|u| Sourced::new(u, origin.clone())),
        port: dest.port.map(|p| Sourced::new(p, origin.clone())),
        jump: None,
    };
    let (hops, problems) = from_ssh::hops(ssh, ssh.resolve_with(&dest.host, &over));
    for p in problems {
        f.push(p);
    }
    Some(hops)
}

fn strictness(t: &Table, f: &mut Findings) -> Option<Sourced<HostKeyPolicy>> {
    let (item, origin) = t.item("strict_host_key_checking")?;
    let v = match item.as_value() {
        Some(toml_edit::Value::Boolean(b)) => Some(if *b.value() {
            HostKeyPolicy::Strict
        } else {
            HostKeyPolicy::Off
        }),
        Some(toml_edit::Value::String(s)) => match s.value().to_ascii_lowercase().as_str() {
            "accept-new" => Some(HostKeyPolicy::AcceptNew),
            "true" | "yes" | "strict" => Some(HostKeyPolicy::Strict),
            "ask" => Some(HostKeyPolicy::Ask),
            "false" | "no" | "off" => Some(HostKeyPolicy::Off),
            _ => None,
        },
        _ => None,
    };
    if v.is_none() {
        let shown = item.as_value().map(|v| v.to_string()).unwrap_or_default();
        f.push(
            Problem::error(
                origin.clone(),
                format!(
                    "{}.strict_host_key_checking: {} is not true, false or \"accept-new\"",
                    t.name,
                    shown.trim()
                ),
            )
            .with_fix("write strict_host_key_checking = true (or \"accept-new\", or false)"),
        );
    }
    v.map(|p| Sourced::new(p, origin))
}
