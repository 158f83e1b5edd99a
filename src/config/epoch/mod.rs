//! epoch.toml (the Horizon Epoch format) -> connections.
//!
//! `[storage.<engine>.<name>]` describes a database (host, port, database, username,
//! password_file; sslmode, sslrootcert and channel_binding for the PostgreSQL probe, see
//! [`tls`]); its `ssh_tunnel` table says how to reach it: the bastion, then `jump_host`
//! tables nested to any depth (the outermost is dialled first) or a string naming an
//! ssh_config alias.
//! `${VAR}` works in every string; `~` in paths; `EPOCH_SSH_HOST`, `EPOCH_SSH_USER` and
//! `EPOCH_SSH_KEY_FILE` fill what an entry leaves out.
//!
//! One bad entry is an error on that entry: the others still load. A TOML syntax error skips
//! only the section it is in (see [`salvage`]).

pub mod fields;
mod hops;
pub use fields::parse_duration;
mod salvage;
mod tls;

use std::path::Path;
use std::sync::Arc;

use fields::{Findings, Source, Table};

use super::context::Context;
use super::destination::Destination;
use super::forward::{Endpoint, Forward, ForwardKind};
use super::model::{Connection, Database, Policy, SourceKind};
use super::origin::{Origin, Problem, Sourced};
use super::ssh_config::SshConfig;

pub use fields::closest;

/// The database's port when an entry does not give one.
pub fn default_port(engine: &str) -> Option<u16> {
    crate::config::model::DbKind::of(engine).default_port()
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
    "proxy_command",
    "certificate_command",
    "known_hosts_file",
    "host_key_alias",
    "ciphers",
    "kex_algorithms",
    "host_key_algorithms",
    "macs",
    "pubkey_accepted_algorithms",
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
    "socks_port",
    "tags",
    "max_duration",
    "idle_timeout",
    "health_interval",
    "on_demand",
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
    "proxy_command",
    "certificate_command",
    "known_hosts_file",
    "host_key_alias",
    "ciphers",
    "kex_algorithms",
    "host_key_algorithms",
    "macs",
    "pubkey_accepted_algorithms",
    "strict_host_key_checking",
    "keepalive_interval",
    "keepalive_count_max",
    "connect_timeout",
];

/// Default keepalive for tunnels from epoch.toml: a dead bastion is noticed in ~90 s.
const DEFAULT_KEEPALIVE: u64 = 30;
const DEFAULT_KEEPALIVE_COUNT: u32 = 3;

/// An entry the file has that did not load: its name, where it is, and its first error (a
/// TOML syntax error in its section, a bad value). Listed as broken, so that the user sees
/// it and why, rather than its absence.
#[derive(Clone, Debug, PartialEq)]
pub struct Broken {
    pub name: String,
    /// The name to show and to type (`epoch:NAME` when ssh_config has NAME too).
    pub display_name: String,
    /// The entry's table (`storage.postgres.orders`).
    pub table: String,
    pub error: Problem,
}

impl Broken {
    /// `file:line: what (fix: how)`, on one line.
    pub fn summary(&self) -> String {
        let fix = self
            .error
            .fix
            .as_ref()
            .map(|f| format!(" (fix: {f})"))
            .unwrap_or_default();
        format!("{}: {}{fix}", self.error.origin, self.error.message)
    }
}

/// What loading one epoch.toml gave.
#[derive(Debug, Default)]
pub struct EpochFile {
    pub connections: Vec<Connection>,
    /// Entries with an error, which did not load (their errors are in `problems` too).
    pub broken: Vec<Broken>,
    pub problems: Vec<Problem>,
    /// The file is not valid TOML as a whole (sections were skipped).
    pub syntax_error: bool,
}

/// Loads the connections of an epoch.toml already read into `text`.
pub fn load(path: &Path, text: &str, ctx: &Context, ssh: &SshConfig) -> EpochFile {
    let path: Arc<Path> = Arc::from(path);
    let mut out = EpochFile::default();
    let (doc, syntax) = salvage::parse(text);
    // The sections a syntax error skipped, with its problem: an entry in one (or with a
    // sub-table in one) is broken, not missing.
    let mut skipped: Vec<(String, Problem)> = Vec::new();
    for e in syntax {
        out.syntax_error = true;
        let mut msg = format!("TOML syntax error: {}", e.message);
        if !e.skipped.is_empty() {
            msg.push_str(&format!("; skipped {}", e.skipped.join(", ")));
        }
        let p = Problem::error(Origin::file(&path, e.line), msg).with_fix(e.fix);
        for s in &e.skipped {
            if let Some(name) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                skipped.push((name.to_string(), p.clone()));
            }
        }
        out.problems.push(p);
    }
    let Some(doc) = doc else {
        out.broken = skipped_entries(&skipped, &[]);
        return out;
    };
    let src = Source::new(Arc::clone(&path), doc.raw(), ctx);
    let root = Table {
        src: &src,
        table: doc.as_table(),
        name: String::new(),
        origin: Origin::file(&path, 1),
    };
    let mut seen: std::collections::HashMap<String, Origin> = std::collections::HashMap::new();
    load_storage(&root, ssh, &mut out, &mut seen, &skipped);
    load_reverse(&root, ssh, &mut out, &mut seen, &skipped);
    // Entries whose whole section was skipped: the document does not have them at all.
    let known: Vec<String> = out.broken.iter().map(|b| b.table.clone()).collect();
    out.broken.extend(skipped_entries(&skipped, &known));
    auto_bind_collisions(&mut out);
    // In the order the file has them, not grouped by engine table.
    out.connections
        .sort_by_key(|c| c.origin.file_line().map(|(_, l)| l).unwrap_or(0));
    out
}

/// The entry a section belongs to: `storage.<engine>.<name>` or `reverse.<name>` (from the
/// section itself or one of its sub-tables), as (its table, its name).
fn entry_of(section: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = section.split('.').collect();
    match parts.as_slice() {
        ["storage", engine, name, ..] => {
            Some((format!("storage.{engine}.{name}"), name.to_string()))
        }
        ["reverse", name, ..] => Some((format!("reverse.{name}"), name.to_string())),
        _ => None,
    }
}

/// The syntax error that skipped entry `table` or one of its sub-tables, if one did.
fn skipped_error(skipped: &[(String, Problem)], table: &str) -> Option<Problem> {
    skipped
        .iter()
        .find(|(s, _)| entry_of(s).is_some_and(|(t, _)| t == table))
        .map(|(_, p)| p.clone())
}

/// The entries the syntax errors skipped, but those in `known`, each once.
fn skipped_entries(skipped: &[(String, Problem)], known: &[String]) -> Vec<Broken> {
    let mut out: Vec<Broken> = Vec::new();
    for (section, p) in skipped {
        let Some((table, name)) = entry_of(section) else {
            continue;
        };
        if known.contains(&table) || out.iter().any(|b| b.table == table) {
            continue;
        }
        out.push(Broken {
            display_name: name.clone(),
            name,
            table,
            error: p.clone(),
        });
    }
    out
}

/// An entry that did not load, with the first of its errors.
fn broken(table: &Table, name: &str, problems: &[Problem]) -> Option<Broken> {
    let error = problems
        .iter()
        .find(|p| p.severity == super::Severity::Error)?;
    Some(Broken {
        name: name.to_string(),
        display_name: name.to_string(),
        table: table.name.clone(),
        error: error.clone(),
    })
}

/// `[storage.<engine>.<name>]`: databases, with their ssh_tunnel.
fn load_storage(
    root: &Table,
    ssh: &SshConfig,
    out: &mut EpochFile,
    seen: &mut std::collections::HashMap<String, Origin>,
    skipped: &[(String, Problem)],
) {
    let Some(storage) = root.sub("storage") else {
        return;
    };
    let storage = match storage {
        Ok(s) => s,
        Err(p) => {
            out.problems
                .push(p.with_fix("write [storage.<engine>.<name>] tables"));
            return;
        }
    };
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
            if let Some(p) = skipped_error(skipped, &entry.name) {
                // A sub-table of it was skipped: what is left would be half the entry.
                seen.insert(name.to_string(), entry.origin.clone());
                out.broken.extend(broken(&entry, name, &[p]));
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
                seen.insert(name.to_string(), entry.origin.clone());
                out.broken.extend(broken(&entry, name, &f.problems));
                continue;
            }
            if let Some(mut c) = conn {
                c.problems.extend(warnings);
                seen.insert(name.to_string(), entry.origin.clone());
                out.connections.push(c);
            }
        }
    }
}

/// Keys of a `[reverse.<name>]` table.
pub const REVERSE_KEYS: &[&str] = &[
    "bastion",
    "remote_bind",
    "remote_port",
    "target",
    "tags",
    "max_duration",
    "idle_timeout",
];

/// `[reverse.<name>]`: the bastion listens on remote_bind:remote_port (0: it picks) and its
/// connections reach `target` (host:port) here — `ssh -R`. `bastion` is an ssh_config alias or
/// `user@host:port`, or a table with the ssh_tunnel keys.
fn load_reverse(
    root: &Table,
    ssh: &SshConfig,
    out: &mut EpochFile,
    seen: &mut std::collections::HashMap<String, Origin>,
    skipped: &[(String, Problem)],
) {
    let Some(reverse) = root.sub("reverse") else {
        return;
    };
    let reverse = match reverse {
        Ok(r) => r,
        Err(p) => {
            out.problems
                .push(p.with_fix("write [reverse.<name>] tables"));
            return;
        }
    };
    for (name, _) in reverse.table.iter() {
        let t = match reverse.sub(name) {
            Some(Ok(t)) => Table {
                name: format!("reverse.{name}"),
                ..t
            },
            Some(Err(p)) => {
                out.problems
                    .push(p.with_fix(format!("write [reverse.{name}] as a table")));
                continue;
            }
            None => continue,
        };
        if let Some(p) = skipped_error(skipped, &t.name) {
            if !seen.contains_key(name) {
                seen.insert(name.to_string(), t.origin.clone());
                out.broken.extend(broken(&t, name, &[p]));
            }
            continue;
        }
        let mut f = Findings::default();
        t.unknown_keys(REVERSE_KEYS, &mut f);
        let conn = reverse_connection(name, &t, ssh, &mut f);
        out.problems.extend(f.problems.iter().cloned());
        if f.has_errors() {
            if !seen.contains_key(name) {
                seen.insert(name.to_string(), t.origin.clone());
                out.broken.extend(broken(&t, name, &f.problems));
            }
            continue;
        }
        let Some(mut c) = conn else { continue };
        if let Some(first) = seen.get(name) {
            out.problems.push(Problem::error(t.origin.clone(), format!("a second entry named '{name}' (the first is at {first}); this one is skipped")).with_fix("give each entry its own name"));
            continue;
        }
        c.problems.extend(
            f.problems
                .into_iter()
                .filter(|p| p.severity == super::Severity::Warning),
        );
        seen.insert(name.to_string(), t.origin.clone());
        out.connections.push(c);
    }
}

fn reverse_connection(
    name: &str,
    t: &Table,
    ssh: &SshConfig,
    f: &mut Findings,
) -> Option<Connection> {
    let target = match t.string("target", f) {
        Some(v) => match Destination::parse(&v.value) {
            Ok(Destination {
                host,
                port: Some(port),
                user: None,
            }) => Sourced::new(Endpoint::tcp(host, port), v.origin),
            _ => {
                f.push(
                    Problem::error(
                        v.origin,
                        format!("[{}] target '{}' is not host:port", t.name, v.value),
                    )
                    .with_fix("write target = \"127.0.0.1:5432\""),
                );
                return None;
            }
        },
        None => {
            f.push(
                Problem::error(
                    t.origin.clone(),
                    format!(
                        "[{}] has no target: the local host:port the bastion's port leads to",
                        t.name
                    ),
                )
                .with_fix("add target = \"127.0.0.1:5432\""),
            );
            return None;
        }
    };
    let Some(port) = t.port("remote_port", true, f) else {
        if t.item("remote_port").is_none() {
            f.push(
                Problem::error(t.origin.clone(), format!("[{}] has no remote_port", t.name))
                    .with_fix("add remote_port = 15432 (0 lets the bastion pick)"),
            );
        }
        return None;
    };
    let bind = t.string("remote_bind", f).map(|b| b.value);
    let hops = match t.item("bastion") {
        Some((item, origin)) => match item.as_str() {
            Some(alias) => hops::ssh_alias_hops(alias, origin, ssh, f)?,
            None => match t.sub("bastion") {
                Some(Ok(bt)) => hops::hops(&bt, &hops::Inherit::default(), true, ssh, f)?,
                Some(Err(p)) => {
                    f.push(
                        p.with_fix("write bastion = \"alias\" or a [reverse.<name>.bastion] table"),
                    );
                    return None;
                }
                None => return None,
            },
        },
        None => {
            f.push(
                Problem::error(t.origin.clone(), format!("[{}] has no bastion", t.name))
                    .with_fix("add bastion = \"ops@bastion.example.com\" (or an ssh_config alias)"),
            );
            return None;
        }
    };
    Some(Connection {
        name: name.to_string(),
        display_name: name.to_string(),
        source: SourceKind::Epoch,
        origin: t.origin.clone(),
        hops,
        forwards: vec![Sourced::new(
            Forward {
                kind: ForwardKind::Remote,
                listen: Endpoint::Tcp {
                    host: bind,
                    port: port.value,
                },
                connect: Some(target.value),
            },
            port.origin,
        )],
        database: None,
        policy: limits(Policy::defaults(), t, None, f),
        tags: tags(t, None, f),
        problems: Vec::new(),
        other: Vec::new(),
        untrusted: None,
    })
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
    let (sslmode, sslrootcert) = tls::settings(engine, t, f)?;
    let channel_binding = tls::channel_binding(engine, t, f)?;
    let database = Database {
        engine: engine.to_string(),
        host,
        port,
        database: t.string("database", f),
        username: t.string("username", f).or_else(|| t.string("user", f)),
        password_file: t.path("password_file", f),
        password: t.secret("password", f),
        sslmode,
        sslrootcert,
        tls_server_name: t.string("tls_server_name", f),
        channel_binding,
    };
    let mut conn = Connection {
        name: name.to_string(),
        display_name: name.to_string(),
        source: SourceKind::Epoch,
        origin: t.origin.clone(),
        hops: Vec::new(),
        forwards: Vec::new(),
        database: None,
        policy: limits(Policy::defaults(), t, tunnel.as_ref(), f),
        tags: tags(t, tunnel.as_ref(), f),
        problems: Vec::new(),
        other: Vec::new(),
        untrusted: None,
    };
    if let Some(tt) = &tunnel {
        tt.unknown_keys(TUNNEL_KEYS, f);
        conn.hops = hops::hops(tt, &hops::Inherit::default(), true, ssh, f)?;
        // `local_bind = "auto"` listens on the engine's standard port (what a client tries
        // first), else on the database's own.
        let native = default_port(engine).unwrap_or(database.port.value);
        let listen = local_listen(t, tt, name, native, f)?;
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
        // socks_port: a SOCKS proxy through the same bastion (DynamicForward), on local_bind.
        if let Some(p) = either(t, tt, "socks_port", f, |t, k, f| t.port(k, false, f)) {
            let bind = either(t, tt, "local_bind", f, |t, k, f| t.string(k, f))
                .map(|b| b.value)
                .unwrap_or_else(|| "127.0.0.1".into());
            conn.forwards.push(Sourced::new(
                Forward {
                    kind: ForwardKind::Dynamic,
                    listen: Endpoint::tcp(bind, p.value),
                    connect: None,
                },
                p.origin,
            ));
        }
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

/// `tags = ["prod", "eu"]` (or `"prod, eu"`), in the entry or its ssh_tunnel table.
fn tags(entry: &Table, tunnel: Option<&Table>, f: &mut Findings) -> Vec<Sourced<String>> {
    let list = match tunnel {
        Some(tt) => either(entry, tt, "tags", f, |t, k, f| t.list(k, f)),
        None => entry.list("tags", f),
    };
    let Some(list) = list else {
        return Vec::new();
    };
    let mut out: Vec<Sourced<String>> = Vec::new();
    for tag in list
        .value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            f.push(
                Problem::error(
                    list.origin.clone(),
                    format!("tag '{tag}' has characters other than letters, digits, - _ ."),
                )
                .with_fix("write tags = [\"prod\", \"eu-west\"]"),
            );
            continue;
        }
        if !out.iter().any(|t| t.value.eq_ignore_ascii_case(tag)) {
            out.push(Sourced::new(tag.to_string(), list.origin.clone()));
        }
    }
    out
}

/// `max_duration`, `idle_timeout`, `health_interval` and `on_demand`, in the entry or its
/// ssh_tunnel table.
fn limits(mut p: Policy, entry: &Table, tunnel: Option<&Table>, f: &mut Findings) -> Policy {
    let get = |key: &str, f: &mut Findings| match tunnel {
        Some(tt) => either(entry, tt, key, f, |t, k, f| t.seconds(k, f)),
        None => entry.seconds(key, f),
    };
    p.max_duration = get("max_duration", f).filter(|d| !d.value.0.is_zero());
    p.idle_timeout = get("idle_timeout", f).filter(|d| !d.value.0.is_zero());
    p.health_interval = get("health_interval", f);
    p.on_demand = match tunnel {
        Some(tt) => either(entry, tt, "on_demand", f, |t, k, f| t.boolean(k, f)),
        None => entry.boolean("on_demand", f),
    };
    p
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

/// The endpoint of `local_bind = "auto"`: the name's own loopback address on `port` (else the
/// database's); where this machine does not answer on that address (macOS without the lo0
/// alias), 127.0.0.1 on the name's fallback port, with a warning that says how to get the
/// address.
fn auto_listen(
    name: &str,
    port: Option<u16>,
    db_port: u16,
    bind: &Sourced<String>,
    f: &mut Findings,
) -> Sourced<Endpoint> {
    let (listen, problem) =
        crate::config::auto_bind::listen(name, port.unwrap_or(db_port), port, &bind.origin);
    if let Some(p) = problem {
        f.push(p);
    }
    Sourced::new(listen, bind.origin.clone())
}

/// Two entries whose `local_bind = "auto"` endpoints are the same (their names hash alike):
/// a warning on the second, which still loads (its bind will fail as a busy port).
fn auto_bind_collisions(out: &mut EpochFile) {
    use crate::config::auto_bind;
    let auto: Vec<(&str, std::net::Ipv4Addr, u16, &Origin)> = out
        .connections
        .iter()
        .filter_map(|c| {
            let fw = c.forwards.first()?;
            let Endpoint::Tcp {
                host: Some(h),
                port,
            } = &fw.value.listen
            else {
                return None;
            };
            let addr = auto_bind::address(&c.name);
            (h.parse() == Ok(addr)).then_some((c.name.as_str(), addr, *port, &fw.origin))
        })
        .collect();
    let pairs: Vec<(&str, std::net::Ipv4Addr, u16)> =
        auto.iter().map(|(n, a, p, _)| (*n, *a, *p)).collect();
    let mut found = Vec::new();
    for (first, second) in auto_bind::collisions(&pairs) {
        let Some((_, addr, port, origin)) = auto.iter().find(|x| x.0 == second) else {
            continue;
        };
        found.push(
            Problem::warning(
                (*origin).clone(),
                format!(
                    "'{second}' and '{first}' both get {addr}:{port} from local_bind = \"auto\""
                ),
            )
            .with_fix(format!(
                "give '{second}' its own local_port, or local_bind = \"127.x.y.z\""
            )),
        );
    }
    out.problems.extend(found);
}

/// Where the local end of the tunnel listens. `local_bind = "auto"` is the address derived
/// from `name` ([`crate::config::auto_bind`]), on `db_port` (the engine's standard port)
/// unless local_port says otherwise.
fn local_listen(
    entry: &Table,
    tunnel: &Table,
    name: &str,
    db_port: u16,
    f: &mut Findings,
) -> Option<Sourced<Endpoint>> {
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
            if let Some(b) = bind
                .as_ref()
                .filter(|b| b.value == crate::config::auto_bind::AUTO)
            {
                return Some(auto_listen(name, port.map(|p| p.value), db_port, b, f));
            }
            let port = port.unwrap_or_else(|| Sourced::default_value(0));
            // The address decides who can reach the tunnel: its line is the listen's origin
            // when it is written.
            let (host, origin) = match bind {
                Some(b) => (b.value, b.origin),
                None => ("127.0.0.1".to_string(), port.origin),
            };
            Some(Sourced::new(Endpoint::tcp(host, port.value), origin))
        }
    }
}
