//! One entry point per parser that reads bytes from outside, each taking arbitrary bytes and
//! running the parser as warren runs it: the cargo-fuzz targets in `fuzz/` and the property
//! tests in `tests/parsers.rs` both call these, so they exercise the same code. None touches
//! a socket; none may panic, whatever the bytes.
//!
//! Config text that would reach the file system is kept from it: `Include` lines are dropped
//! from ssh_config input (they glob real paths), and home is a directory that does not exist.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Context;
use crate::config::ssh_config::{FileKind, SshConfig};

fn context() -> Arc<Context> {
    let env = HashMap::from([
        ("PORT".to_string(), "5432".to_string()),
        ("DB_HOST".to_string(), "db.internal".to_string()),
    ]);
    Arc::new(Context::new(
        PathBuf::from("/nonexistent/warren-fuzz-home"),
        "fuzz",
        env,
    ))
}

/// ssh_config: parse, then resolve every alias into a connection (ProxyJump chains, tokens,
/// forwards), and a name that matches no Host line.
pub fn ssh_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let kept: String = text
        .split_inclusive('\n')
        .filter(|l| !l.trim_start().to_ascii_lowercase().starts_with("include"))
        .collect();
    let mut cfg = SshConfig::from_texts(context(), &[(Path::new("config"), &kept, FileKind::User)]);
    // CanonicalizeHostname looks names up: never DNS while fuzzing.
    cfg.lookup = |_, _| Err("no DNS while fuzzing".to_string());
    for a in cfg.aliases.iter().take(8) {
        let _ = crate::config::from_ssh::connection(&cfg, &a.name, a.origin.clone());
    }
    let _ = cfg.resolve("no-such-host.example");
}

/// epoch.toml: the connections and problems of one file (with an ssh_config alias to name).
pub fn epoch_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let ctx = context();
    let ssh = SshConfig::from_texts(
        Arc::clone(&ctx),
        &[(
            Path::new("config"),
            "Host bastion\n  HostName 10.0.0.1\n  User ops\n",
            FileKind::User,
        )],
    );
    let _ = crate::config::epoch::load(Path::new("epoch.toml"), &text, &ctx, &ssh);
}

/// known_hosts: read the lines, then check a key against names taken from the input (so
/// patterns and hashed entries are matched, not only parsed).
pub fn known_hosts(data: &[u8]) {
    use crate::ssh::known_hosts::KnownHosts;
    use russh::keys::ssh_key::PublicKey;
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let text = String::from_utf8_lossy(data);
    let mut kh = KnownHosts::default();
    // The bytes as they are: a line that is not UTF-8 is skipped, never fatal.
    kh.add_bytes(Path::new("known_hosts"), data);
    let Ok(key) = PublicKey::from_openssh(KEY) else {
        return;
    };
    let mut names: Vec<&str> = text
        .split_whitespace()
        .take(4)
        .flat_map(|w| w.split(','))
        .collect();
    names.extend(["[127.0.0.1]:2222", "bastion.example"]);
    for n in names {
        let _ = kh.check(n, &key);
        let _ = kh.check_ca(n, &key);
        let _ = kh.known_types(n);
    }
    let _ = kh.other_names(&key);
}

/// What a daemon client sends, and what a daemon sends back: the bytes split into lines as the
/// server splits them (each at most `MAX_LINE`), each line read as a request, and each line
/// read as a frame by the client.
pub fn daemon_request(data: &[u8]) {
    use crate::daemon::protocol::{Frame, MAX_LINE, parse_request};
    for line in data.split(|b| *b == b'\n') {
        let line = &line[..line.len().min(MAX_LINE)];
        let text = String::from_utf8_lossy(line);
        if let Ok(env) = parse_request(&text) {
            // A request that parses says who it is in the daemon's debug log.
            let _ = format!("{:?}", env.req);
        }
        let _ = serde_json::from_slice::<Frame>(line);
    }
}

/// A SOCKS client's first bytes (SOCKS5 greeting and request, SOCKS4/4a request).
pub fn socks_request(data: &[u8]) {
    crate::tunnel::socks::parse_any(data);
}

/// A PostgreSQL server's bytes: as an answer to the SSLRequest, and as a stream of login
/// messages (errors, notices, SASL, parameter status), with any SCRAM challenge read, and as
/// the server's certificate that SCRAM-SHA-256-PLUS hashes.
pub fn postgres_reply(data: &[u8]) {
    use crate::diagnose::pgwire;
    let _ = pgwire::ssl_answer(data);
    let _ = pgwire::ssl_answer_complete(data);
    let _ = pgwire::wanted(data);
    let _ = pgwire::read_all(data);
    let _ = crate::diagnose::pgauth::server_first(data);
    let _ = crate::diagnose::chanbind::server_end_point(data);
}

/// A MySQL/MariaDB server's bytes: as a greeting and as a refusal, then as the server side of
/// a whole login (the probe logs in with a password over a pipe whose other end sends `data`
/// and reads whatever the probe writes).
pub fn mysql_reply(data: &[u8]) {
    use crate::diagnose::{mysql, probe};
    let _ = probe::mysql_frame(data);
    let _ = probe::mysql_greeting(data);
    let _ = probe::name_protocol(data);
    let _ = mysql::greeting(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mysql::seen_from(text);
        let _ = mysql::server_name(text);
    }
    let _ = login_against(data, "mysql");
}

/// A Redis server's bytes: as one reply, then as the server side of a whole login (HELLO with
/// a password, SELECT, PING).
pub fn redis_reply(data: &[u8]) {
    use crate::diagnose::{probe, redis};
    let _ = probe::redis_frame(data);
    let _ = probe::redis_reply(data);
    if let Ok(Some((r, _))) = redis::parse(data) {
        let _ = redis::hello_server(&r);
    }
    let _ = login_against(data, "redis");
}

/// Runs the probe of `engine` (user `app`, password `secret`, database `1`, no TLS) against a
/// server that sends `data`, closes its side and reads everything: what doctor would say. The
/// close makes a reply that stops halfway end the probe at once instead of at its 2 s budget.
pub fn login_against(data: &[u8], engine: &str) -> crate::diagnose::probe::Finding {
    use crate::config::Sourced;
    use crate::config::model::{RootCert, SslMode};
    use crate::diagnose::probe::Target;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = Target {
        host: "db.internal".into(),
        user: "app".into(),
        database: "1".into(),
        password: Some(zeroize::Zeroizing::new("secret".into())),
        sslmode: Sourced::default_value(SslMode::Disable),
        sslrootcert: Sourced::default_value(RootCert::File("/nonexistent/root.crt".into())),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return crate::diagnose::probe::Finding::fail(e.to_string(), ""),
    };
    let data = data.to_vec();
    let engine = engine.to_string();
    rt.block_on(async move {
        let (ours, mut theirs) = tokio::io::duplex(256 << 10);
        let server = tokio::spawn(async move {
            let _ = theirs.write_all(&data).await;
            let _ = theirs.shutdown().await;
            let mut sink = [0u8; 4096];
            while matches!(theirs.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let slot = std::sync::Mutex::new(Some(ours));
        let open = || async { slot.lock().ok().and_then(|mut s| s.take()) };
        let f =
            crate::diagnose::probe_with(&engine, &target, std::time::Duration::from_secs(2), open)
                .await;
        server.abort();
        f
    })
}

/// A MongoDB server's bytes: as a reply to hello, as a BSON document, then as the server side
/// of a whole login (hello, saslStart, saslContinue).
pub fn mongo_reply(data: &[u8]) {
    use crate::diagnose::{mongo, probe};
    let _ = probe::mongo_frame(data);
    let _ = probe::mongo_reply(data);
    let _ = mongo::reply(data);
    let _ = mongo::elements(data);
    let _ = login_against(data, "mongodb");
}

/// A SQL Server server's bytes: as a PRELOGIN answer and a LOGIN7 answer, then as the server
/// side of a whole login (PRELOGIN, LOGIN7 in the clear: the login uses sslmode = disable).
pub fn mssql_reply(data: &[u8]) {
    use crate::diagnose::{mssql, probe};
    let _ = probe::mssql_frame(data);
    let _ = probe::mssql_reply(data);
    let _ = mssql::prelogin_answer(data);
    let _ = mssql::login_answer(data);
    let _ = login_against(data, "mssql");
}

/// An SSH server's first bytes: the identification line, and how doctor shows what is not
/// one (the first bytes, and the text escaped for a terminal).
pub fn ssh_banner(data: &[u8]) {
    use crate::diagnose::probe;
    if let crate::diagnose::banner::Banner::Line(l) = crate::diagnose::banner::parse(data) {
        let _ = crate::text::escape(&l);
    }
    let _ = probe::name_protocol(data);
    let _ = probe::show_bytes(data);
    let _ = crate::text::escape(&String::from_utf8_lossy(data));
}
