//! `warren show NAME [--json]`: every effective setting of a connection with its source.
//! Secrets are shown as `***`. For a host of ssh_config, also every option as `ssh -G` prints
//! it, interpreted and with its source (`ssh_config::dump`). A cloud bastion's hop
//! (`host = "ssm:..."`) shows the ProxyCommand it stands for, its source the `host` line.

use std::io::Write;

use serde::Serialize;

use super::exit;
use super::list::{ForwardJson, SourceJson, forward_json, forward_text, print_table};
use crate::config::model::{Database, Hop, Policy};
use crate::config::{Catalog, Connection, ConnectionKind, Origin, Problem, Sourced};
use crate::text::escape;

#[derive(Serialize)]
struct ForwardWithSource {
    #[serde(flatten)]
    forward: ForwardJson,
    source: Origin,
}

#[derive(Serialize)]
struct ShowJson<'a> {
    name: &'a str,
    source: SourceJson,
    kind: ConnectionKind,
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'a Database>,
    forwards: Vec<ForwardWithSource>,
    hops: &'a [Hop],
    policy: &'a Policy,
    other: Vec<OtherJson<'a>>,
    /// ssh_config hosts: every option as `ssh -G` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh_options: Option<Vec<crate::config::ssh_config::dump::Line>>,
    problems: &'a [Problem],
    /// The certificates of hops with a certificate_command, with their expiry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<CertificateJson>,
}

#[derive(Serialize)]
struct CertificateJson {
    hop: usize,
    #[serde(flatten)]
    current: crate::ssh::certificate::Current,
}

#[derive(Serialize)]
struct OtherJson<'a> {
    key: &'a str,
    value: &'a str,
    source: &'a Origin,
}

pub fn run(
    catalog: &Catalog,
    name: &str,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let conn = match catalog.find(name) {
        Ok(c) => c,
        Err(e) => {
            // A broken entry's error is in `e`; otherwise problems that name it may say why.
            let broken = matches!(e, crate::config::load::LookupError::Broken { .. });
            let related: Vec<&Problem> = catalog
                .problems
                .iter()
                .filter(|p| {
                    !broken
                        && p.severity == crate::config::Severity::Error
                        && p.message.contains(name)
                })
                .collect();
            let _ = writeln!(err, "error: {}", crate::text::escape(&e.to_string()));
            for p in related {
                super::print_problem(p, err);
            }
            return exit::BAD_CONFIG;
        }
    };
    let ssh_options = (conn.source == crate::config::SourceKind::Ssh)
        .then(|| catalog.ssh.resolve(&conn.name).ssh_g());
    if json {
        let doc = ShowJson {
            certificates: conn
                .hops
                .iter()
                .enumerate()
                .filter_map(|(hop, h)| {
                    crate::ssh::certificate::current(h)
                        .map(|current| CertificateJson { hop, current })
                })
                .collect(),
            name: &conn.display_name,
            source: SourceJson::of(conn),
            kind: conn.kind(),
            target: conn.target(),
            database: conn.database.as_ref(),
            forwards: conn
                .forwards
                .iter()
                .map(|f| {
                    let (local, target) = forward_json(&f.value);
                    ForwardWithSource {
                        forward: ForwardJson {
                            kind: f.value.kind,
                            local,
                            target,
                        },
                        source: f.origin.clone(),
                    }
                })
                .collect(),
            hops: &conn.hops,
            policy: &conn.policy,
            other: conn
                .other
                .iter()
                .map(|(k, v)| OtherJson {
                    key: k,
                    value: &v.value,
                    source: &v.origin,
                })
                .collect(),
            ssh_options,
            problems: &conn.problems,
        };
        let _ = serde_json::to_writer_pretty(&mut *out, &doc);
        let _ = writeln!(out);
    } else {
        human(conn, out);
        if let Some(lines) = &ssh_options {
            let _ = writeln!(out, "\nas `ssh -G` prints it:");
            let rows: Vec<[String; 3]> = lines
                .iter()
                .map(|l| [l.key.to_string(), l.value.clone(), l.source.to_string()])
                .collect();
            print_table(out, &["OPTION", "VALUE", "SOURCE"], &rows);
        }
        for p in &conn.problems {
            super::print_problem(p, err);
        }
    }
    exit::OK
}

fn row<T: ToString>(rows: &mut Vec<[String; 3]>, key: &str, v: &Sourced<T>) {
    rows.push([key.to_string(), v.value.to_string(), v.origin.to_string()]);
}

fn opt<T: ToString>(rows: &mut Vec<[String; 3]>, key: &str, v: &Option<Sourced<T>>) {
    if let Some(v) = v {
        row(rows, key, v);
    }
}

pub fn human(c: &Connection, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "{} ({}, {}) defined at {}",
        escape(&c.display_name),
        c.source.prefix(),
        c.kind(),
        escape(&c.origin.to_string())
    );
    let mut rows: Vec<[String; 3]> = Vec::new();
    if let Some(db) = &c.database {
        rows.push(["engine".into(), db.engine.clone(), c.origin.to_string()]);
        row(&mut rows, "host", &db.host);
        row(&mut rows, "port", &db.port);
        opt(&mut rows, "database", &db.database);
        opt(&mut rows, "username", &db.username);
        if let Some(p) = &db.password_file {
            rows.push([
                "password_file".into(),
                p.value.display().to_string(),
                p.origin.to_string(),
            ]);
        }
        opt(&mut rows, "password", &db.password);
        row(&mut rows, "sslmode", &db.sslmode);
        row(&mut rows, "sslrootcert", &db.sslrootcert);
        if db.kind() == crate::config::model::DbKind::Postgres {
            row(&mut rows, "channel_binding", &db.channel_binding);
        }
        opt(&mut rows, "tls_server_name", &db.tls_server_name);
    }
    for f in &c.forwards {
        rows.push([
            format!("forward ({})", f.value.kind.as_str()),
            forward_text(&f.value),
            f.origin.to_string(),
        ]);
    }
    row(&mut rows, "auto_reconnect", &c.policy.auto_reconnect);
    row(&mut rows, "reconnect_delay", &c.policy.reconnect_delay);
    row(
        &mut rows,
        "max_reconnect_attempts",
        &c.policy.max_reconnect_attempts,
    );
    row(
        &mut rows,
        "exit_on_forward_failure",
        &c.policy.exit_on_forward_failure,
    );
    if let Some(o) = c.policy.on_demand.as_ref().filter(|o| o.value) {
        row(&mut rows, "on_demand", o);
    }
    let n = c.hops.len();
    for (i, h) in c.hops.iter().enumerate() {
        rows.push([format!("hop {}/{n}", i + 1), h.name.clone(), String::new()]);
        row(&mut rows, "  host", &h.host);
        row(&mut rows, "  port", &h.port);
        row(&mut rows, "  user", &h.user);
        for f in &h.identity_files {
            rows.push([
                "  identity_file".into(),
                f.value.display().to_string(),
                f.origin.to_string(),
            ]);
        }
        row(&mut rows, "  identities_only", &h.identities_only);
        row(&mut rows, "  use_agent", &h.use_agent);
        opt(&mut rows, "  identity_agent", &h.identity_agent);
        for f in &h.certificate_files {
            rows.push([
                "  certificate_file".into(),
                f.value.display().to_string(),
                f.origin.to_string(),
            ]);
        }
        opt(&mut rows, "  key_passphrase", &h.key_passphrase);
        let kh = h
            .known_hosts_files
            .value
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        rows.push([
            "  known_hosts".into(),
            kh,
            h.known_hosts_files.origin.to_string(),
        ]);
        row(&mut rows, "  host_key_policy", &h.host_key_policy);
        opt(&mut rows, "  known_hosts_command", &h.known_hosts_command);
        match (&h.proxy_command, &h.preset) {
            // A cloud bastion: the command it stands for, from its `host` line.
            (Some(pc), Some(preset)) => rows.push([
                "  proxy_command".into(),
                pc.value.clone(),
                format!("{} (host = \"{}\")", preset.origin, preset.value),
            ]),
            _ => opt(&mut rows, "  proxy_command", &h.proxy_command),
        }
        opt(&mut rows, "  certificate_command", &h.certificate_command);
        if let Some(c) = crate::ssh::certificate::current(h) {
            rows.push([
                "  certificate".into(),
                c.to_string(),
                "certificate_command".into(),
            ]);
        }
        for m in &h.match_exec {
            let applies = if m.applied {
                "applies"
            } else {
                "does not apply"
            };
            rows.push([
                "  match exec".into(),
                format!(
                    "\"{}\": {}; the block {applies}",
                    crate::text::escape(&m.command),
                    m.outcome
                ),
                m.origin.to_string(),
            ]);
        }
        row(&mut rows, "  connect_timeout", &h.connect_timeout);
        row(&mut rows, "  keepalive_interval", &h.keepalive_interval);
        row(&mut rows, "  keepalive_count_max", &h.keepalive_count_max);
    }
    for (k, v) in &c.other {
        rows.push([format!("({k})"), v.value.clone(), v.origin.to_string()]);
    }
    print_table(out, &["SETTING", "VALUE", "SOURCE"], &rows);
}
