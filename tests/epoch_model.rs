//! epoch.toml -> connections: every key, nesting, interpolation, defaults and bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use warren::config::epoch::{self, EpochFile};
use warren::config::forward::{Endpoint, ForwardKind};
use warren::config::ssh_config::{FileKind, SshConfig};
use warren::config::{Connection, Context, HostKeyPolicy, Origin, Severity};

const HOME: &str = "/home/tester";

fn ctx(env: &[(&str, &str)]) -> Arc<Context> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(Context::new(PathBuf::from(HOME), "tester", env))
}

fn load_with(text: &str, env: &[(&str, &str)], ssh_config: &str) -> EpochFile {
    let ctx = ctx(env);
    let ssh = SshConfig::from_texts(
        Arc::clone(&ctx),
        &[(Path::new("/cfg/ssh_config"), ssh_config, FileKind::User)],
    );
    epoch::load(Path::new("/cfg/epoch.toml"), text, &ctx, &ssh)
}

fn load(text: &str) -> EpochFile {
    load_with(text, &[], "")
}

fn only(f: &EpochFile) -> &Connection {
    assert_eq!(
        f.connections.len(),
        1,
        "expected one connection; problems: {:#?}",
        f.problems
    );
    &f.connections[0]
}

fn line(o: &Origin) -> usize {
    o.file_line().map(|(_, l)| l).unwrap_or(0)
}

#[test]
fn every_key_of_an_entry_and_its_ssh_tunnel() {
    let f = load_with(
        r#"metadata_url = "postgresql://meta/epoch"

[storage.postgres.orders]
host = "db.internal"
port = 6543
database = "orders"
username = "reporter"
password_file = "~/secrets/orders"
local_port = 15432
local_bind = "127.0.0.2"

[storage.postgres.orders.ssh_tunnel]
host = "bastion.example.com"
port = 2222
user = "ops"
key_file = "~/.ssh/orders_ed25519"
key_passphrase = "${ORDERS_PASS}"
use_agent = true
cert_file = "~/.ssh/orders_ed25519-cert.pub"
known_hosts_file = "/etc/warren/known_hosts"
strict_host_key_checking = "accept-new"
keepalive_interval = 15
keepalive_count_max = 5
auto_reconnect = false
reconnect_delay = 2.5
max_reconnect_attempts = 7
connect_timeout = "20s"
"#,
        &[("ORDERS_PASS", "hunter2")],
        "",
    );
    assert!(f.problems.is_empty(), "{:#?}", f.problems);
    let c = only(&f);
    assert_eq!(c.name, "orders");
    assert_eq!(line(&c.origin), 3);
    let db = c.database.as_ref().expect("database");
    assert_eq!(db.engine, "postgres");
    assert_eq!(
        (db.host.value.as_str(), db.port.value),
        ("db.internal", 6543)
    );
    assert_eq!(line(&db.port.origin), 5);
    assert_eq!(
        db.database.as_ref().map(|d| d.value.as_str()),
        Some("orders")
    );
    assert_eq!(
        db.username.as_ref().map(|d| d.value.as_str()),
        Some("reporter")
    );
    assert_eq!(
        db.password_file.as_ref().map(|p| p.value.clone()),
        Some(PathBuf::from("/home/tester/secrets/orders"))
    );

    assert_eq!(c.hops.len(), 1);
    let h = &c.hops[0];
    assert_eq!(h.host.value, "bastion.example.com");
    assert_eq!(h.port.value, 2222);
    assert_eq!(h.user.value, "ops");
    assert_eq!(line(&h.user.origin), 15);
    assert_eq!(
        h.identity_files[0].value,
        PathBuf::from("/home/tester/.ssh/orders_ed25519")
    );
    assert!(h.identities_only.value);
    assert!(h.use_agent.value);
    assert_eq!(
        h.certificate_files[0].value,
        PathBuf::from("/home/tester/.ssh/orders_ed25519-cert.pub")
    );
    let pass = h.key_passphrase.as_ref().expect("passphrase");
    assert_eq!(pass.value.expose(), "hunter2");
    assert_eq!(format!("{:?}", pass.value), "***", "a secret never prints");
    assert_eq!(serde_json::to_string(&pass.value).expect("json"), "\"***\"");
    assert_eq!(
        h.known_hosts_files.value,
        vec![PathBuf::from("/etc/warren/known_hosts")]
    );
    assert_eq!(h.host_key_policy.value, HostKeyPolicy::AcceptNew);
    assert_eq!(h.keepalive_interval.value.0.as_secs(), 15);
    assert_eq!(h.keepalive_count_max.value, 5);
    assert_eq!(h.connect_timeout.value.0.as_secs(), 20);
    assert!(!c.policy.auto_reconnect.value);
    assert_eq!(c.policy.reconnect_delay.value.0.as_millis(), 2500);
    assert_eq!(c.policy.max_reconnect_attempts.value, 7);

    assert_eq!(c.forwards.len(), 1);
    let fw = &c.forwards[0].value;
    assert_eq!(fw.kind, ForwardKind::Local);
    assert_eq!(fw.listen, Endpoint::tcp("127.0.0.2", 15432));
    assert_eq!(fw.connect, Some(Endpoint::tcp("db.internal", 6543)));
}

#[test]
fn strict_host_key_checking_takes_true_false_and_accept_new() {
    for (value, want) in [
        ("true", HostKeyPolicy::Strict),
        ("false", HostKeyPolicy::Off),
        ("\"accept-new\"", HostKeyPolicy::AcceptNew),
    ] {
        let f = load(&format!(
            "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b\"\nstrict_host_key_checking = {value}\n"
        ));
        assert_eq!(only(&f).hops[0].host_key_policy.value, want, "{value}");
    }
    let f = load(
        "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b\"\n",
    );
    let h = &only(&f).hops[0];
    assert_eq!(
        h.host_key_policy.value,
        HostKeyPolicy::Ask,
        "ask by default, as OpenSSH: refused unless a person confirms"
    );
    assert_eq!(h.host_key_policy.origin, Origin::Default);
}

#[test]
fn defaults_when_keys_are_left_out() {
    let f = load(
        "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b\"\n",
    );
    let c = only(&f);
    let h = &c.hops[0];
    assert_eq!(h.port.value, 22);
    assert_eq!(h.user.value, "tester");
    assert!(h.use_agent.value, "no key_file: the agent is used");
    assert!(!h.identities_only.value);
    assert_eq!(h.connect_timeout.value.0.as_secs(), 15);
    assert_eq!(
        c.forwards[0].value.listen,
        Endpoint::tcp("127.0.0.1", 0),
        "loopback, a free port"
    );
    assert!(c.policy.auto_reconnect.value);
}

#[test]
fn local_socket_instead_of_a_port() {
    let f = load(
        "[storage.postgres.a]\nhost = \"db\"\nlocal_socket = \"~/pg.sock\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b\"\n",
    );
    assert_eq!(
        only(&f).forwards[0].value.listen,
        Endpoint::Unix("/home/tester/pg.sock".into())
    );
    let f = load(
        "[storage.postgres.a]\nhost = \"db\"\nlocal_socket = \"/s\"\nlocal_port = 5\n[storage.postgres.a.ssh_tunnel]\nhost = \"b\"\n",
    );
    assert!(f.connections.is_empty());
    assert!(
        f.problems
            .iter()
            .any(|p| p.message.contains("both local_port and local_socket")),
        "{:#?}",
        f.problems
    );
}

#[test]
fn endpoint_shorthand() {
    let f = load(
        "[storage.mysql.m]\nhost = \"db\"\n[storage.mysql.m.ssh_tunnel]\nendpoint = \"ssh://jo@bastion.example:2200\"\n",
    );
    let h = &only(&f).hops[0];
    assert_eq!(
        (h.user.value.as_str(), h.host.value.as_str(), h.port.value),
        ("jo", "bastion.example", 2200)
    );
    let f = load(
        "[storage.mysql.m]\nhost = \"db\"\n[storage.mysql.m.ssh_tunnel]\nendpoint = \"ssh://b\"\nhost = \"c\"\n",
    );
    assert!(f.connections.is_empty());
    assert!(
        f.problems
            .iter()
            .any(|p| p.message.contains("both endpoint"))
    );
}

#[test]
fn jump_hosts_nest_three_deep_outermost_first() {
    let f = load(
        r#"[storage.postgres.deep]
host = "db.private"

[storage.postgres.deep.ssh_tunnel]
host = "bastion"
known_hosts_file = "/kh"
connect_timeout = 9

[storage.postgres.deep.ssh_tunnel.jump_host]
host = "jump1"
user = "j1"

[storage.postgres.deep.ssh_tunnel.jump_host.jump_host]
host = "jump2"
port = 2022

[storage.postgres.deep.ssh_tunnel.jump_host.jump_host.jump_host]
host = "jump3"
strict_host_key_checking = false
"#,
    );
    assert!(f.problems.is_empty(), "{:#?}", f.problems);
    let c = only(&f);
    let names: Vec<&str> = c.hops.iter().map(|h| h.host.value.as_str()).collect();
    assert_eq!(
        names,
        ["jump3", "jump2", "jump1", "bastion"],
        "the outermost jump is dialled first"
    );
    assert_eq!(c.hops[1].port.value, 2022);
    assert_eq!(c.hops[2].user.value, "j1");
    // Policy keys are inherited from the table around a jump host unless it sets its own.
    assert_eq!(
        c.hops[0].known_hosts_files.value,
        vec![PathBuf::from("/kh")]
    );
    assert_eq!(c.hops[0].connect_timeout.value.0.as_secs(), 9);
    assert_eq!(c.hops[0].host_key_policy.value, HostKeyPolicy::Off);
    assert_eq!(c.hops[1].host_key_policy.value, HostKeyPolicy::Ask);
}

#[test]
fn jump_host_as_inline_table_and_as_ssh_alias() {
    let f = load(
        "[storage.redis.r]\nhost = \"cache\"\n[storage.redis.r.ssh_tunnel]\nhost = \"b\"\njump_host = { host = \"j\", port = 2 }\n",
    );
    let c = only(&f);
    assert_eq!(
        c.hops.iter().map(|h| h.address()).collect::<Vec<_>>(),
        ["j:2", "b:22"]
    );

    let ssh = "Host edge\n  HostName edge.example.com\n  User edgeuser\n  ProxyJump outer\nHost outer\n  HostName outer.example.com\n";
    let f = load_with(
        "[storage.redis.r]\nhost = \"cache\"\n[storage.redis.r.ssh_tunnel]\nhost = \"b\"\njump_host = \"edge\"\n",
        &[],
        ssh,
    );
    let c = only(&f);
    let hosts: Vec<&str> = c.hops.iter().map(|h| h.host.value.as_str()).collect();
    assert_eq!(hosts, ["outer.example.com", "edge.example.com", "b"]);
    assert_eq!(c.hops[1].user.value, "edgeuser");
    assert_eq!(
        line(&c.hops[1].user.origin),
        3,
        "the value's source is the ssh_config line"
    );
}

#[test]
fn variables_are_interpolated_and_an_unset_one_is_named() {
    let text = "[storage.postgres.a]\nhost = \"${DB_HOST}\"\nport = \"${DB_PORT}\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b-${REGION}.example\"\n";
    let f = load_with(
        text,
        &[("DB_HOST", "db.eu"), ("DB_PORT", "5433"), ("REGION", "eu")],
        "",
    );
    let c = only(&f);
    assert_eq!(
        c.database
            .as_ref()
            .map(|d| (d.host.value.as_str(), d.port.value)),
        Some(("db.eu", 5433))
    );
    assert_eq!(c.hops[0].host.value, "b-eu.example");

    let f = load_with(text, &[("DB_HOST", "db.eu"), ("DB_PORT", "5433")], "");
    assert!(f.connections.is_empty());
    let p = f
        .problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .expect("an error");
    assert!(p.message.contains("REGION"), "{p}");
    assert_eq!(line(&p.origin), 5);
    assert!(
        p.fix.as_deref().unwrap_or("").contains("export REGION"),
        "{p}"
    );
}

#[test]
fn epoch_ssh_env_fills_what_an_entry_leaves_out() {
    let text =
        "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nport = 2200\n";
    let f = load_with(
        text,
        &[
            ("EPOCH_SSH_HOST", "env-bastion"),
            ("EPOCH_SSH_USER", "envuser"),
            ("EPOCH_SSH_KEY_FILE", "~/.ssh/env_key"),
        ],
        "",
    );
    let h = &only(&f).hops[0];
    assert_eq!(h.host.value, "env-bastion");
    assert_eq!(h.host.origin, Origin::Env("EPOCH_SSH_HOST".into()));
    assert_eq!(h.user.value, "envuser");
    assert_eq!(h.user.origin, Origin::Env("EPOCH_SSH_USER".into()));
    assert_eq!(
        h.identity_files[0].value,
        PathBuf::from("/home/tester/.ssh/env_key")
    );

    // What the entry says wins over the environment.
    let text = "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"file-bastion\"\nuser = \"fileuser\"\n";
    let f = load_with(
        text,
        &[
            ("EPOCH_SSH_HOST", "env-bastion"),
            ("EPOCH_SSH_USER", "envuser"),
        ],
        "",
    );
    let h = &only(&f).hops[0];
    assert_eq!(
        (h.host.value.as_str(), h.user.value.as_str()),
        ("file-bastion", "fileuser")
    );

    // Without EPOCH_SSH_HOST, a tunnel with no host is an error on that entry.
    let f =
        load("[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nport = 2200\n");
    assert!(f.connections.is_empty());
    assert!(f.problems.iter().any(|p| p.message.contains("has no host")
        && p.fix.as_deref().unwrap_or("").contains("EPOCH_SSH_HOST")));
}

#[test]
fn engine_default_ports() {
    for (engine, port) in [
        ("postgres", 5432),
        ("mysql", 3306),
        ("mssql", 1433),
        ("redis", 6379),
        ("mongodb", 27017),
    ] {
        let f = load(&format!(
            "[storage.{engine}.x]\nhost = \"db\"\n[storage.{engine}.x.ssh_tunnel]\nhost = \"b\"\n"
        ));
        let db = only(&f).database.clone().expect("db");
        assert_eq!(db.port.value, port, "{engine}");
        assert_eq!(db.port.origin, Origin::Default);
    }
    let f = load(
        "[storage.cockroach.x]\nhost = \"db\"\n[storage.cockroach.x.ssh_tunnel]\nhost = \"b\"\n",
    );
    assert!(f.connections.is_empty());
    assert!(
        f.problems
            .iter()
            .any(|p| p.message.contains("no default port for engine 'cockroach'"))
    );
}

#[test]
fn one_bad_entry_does_not_stop_the_others() {
    let f = load(
        r#"[storage.postgres.good]
host = "db"
[storage.postgres.good.ssh_tunnel]
host = "b"

[storage.postgres.badport]
host = "db"
[storage.postgres.badport.ssh_tunnel]
host = "b"
port = "abc"

[storage.postgres.range]
host = "db"
port = 70000
[storage.postgres.range.ssh_tunnel]
host = "b"

[storage.postgres.nohost.ssh_tunnel]
host = "b"

[storage.mysql.typo]
host = "db"
[storage.mysql.typo.ssh_tunnel]
host = "b"
kye_file = "~/.ssh/k"
"#,
    );
    let names: Vec<&str> = f.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["good", "typo"]);
    let find = |needle: &str| {
        f.problems
            .iter()
            .find(|p| p.message.contains(needle))
            .unwrap_or_else(|| panic!("no problem mentioning {needle}: {:#?}", f.problems))
    };
    let p = find("badport.ssh_tunnel.port");
    assert_eq!(line(&p.origin), 10);
    assert!(p.message.contains("\"abc\""), "{p}");
    let p = find("port 70000 is out of range");
    assert_eq!(line(&p.origin), 14);
    let p = find("[storage.postgres.nohost] has no host");
    assert_eq!(p.severity, Severity::Error);
    let p = find("unknown key 'kye_file'");
    assert_eq!(p.severity, Severity::Warning);
    assert_eq!(p.fix.as_deref(), Some("did you mean 'key_file'?"));
    assert_eq!(line(&p.origin), 25);
}

#[test]
fn a_syntax_error_skips_only_its_section() {
    let f = load(
        "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b\"\n\n[storage.postgres.broken]\nhost = \"db\n[storage.postgres.broken.ssh_tunnel]\nhost = \"b\"\n\n[storage.postgres.c]\nhost = \"db\"\n[storage.postgres.c.ssh_tunnel]\nhost = \"b\"\n",
    );
    assert!(f.syntax_error);
    let names: Vec<&str> = f.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    let p = &f.problems[0];
    assert_eq!(line(&p.origin), 7);
    assert!(p.message.contains("[storage.postgres.broken]"), "{p}");
}

#[test]
fn entries_without_a_tunnel_or_host_are_not_connections() {
    let f = load(
        "[storage.s3.archive]\nbucket = \"b\"\n[storage.postgres.direct]\nhost = \"db.example\"\n",
    );
    let c = only(&f);
    assert_eq!(c.name, "direct");
    assert!(c.hops.is_empty());
    assert_eq!(c.kind(), warren::config::ConnectionKind::Direct);
}

#[test]
fn a_wrong_type_for_a_table_is_an_error_on_the_entry() {
    let f = load(
        "[storage.postgres.a]\nhost = \"db\"\nssh_tunnel = \"bastion\"\n[storage.postgres.b]\nhost = \"db\"\n[storage.postgres.b.ssh_tunnel]\nhost = \"x\"\n",
    );
    assert_eq!(
        f.connections
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert!(
        f.problems.iter().any(|p| p
            .message
            .contains("ssh_tunnel: expected a table, found a string")
            && line(&p.origin) == 3),
        "{:#?}",
        f.problems
    );
}

#[test]
fn reverse_tables_are_remote_forwards() {
    let ssh = "Host edge\n    HostName edge.example.com\n    User edgeuser\n";
    let f = load_with(
        r#"[reverse.metrics]
bastion = "edge"
remote_port = 0
target = "127.0.0.1:9100"

[reverse.pg-in]
remote_bind = "0.0.0.0"
remote_port = 15432
target = "db.local:5432"

[reverse.pg-in.bastion]
host = "bastion.example.com"
user = "ops"

[reverse.broken]
bastion = "edge"
remote_port = 1
target = "no-port-here"
"#,
        &[],
        ssh,
    );
    let names: Vec<&str> = f.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["metrics", "pg-in"]);
    let m = &f.connections[0];
    assert_eq!(m.hops[0].host.value, "edge.example.com");
    let fw = &m.forwards[0].value;
    assert_eq!(fw.kind, ForwardKind::Remote);
    assert_eq!(
        fw.listen,
        Endpoint::Tcp {
            host: None,
            port: 0
        }
    );
    assert_eq!(fw.connect, Some(Endpoint::tcp("127.0.0.1", 9100)));
    let p = &f.connections[1];
    assert_eq!(
        (p.hops[0].host.value.as_str(), p.hops[0].user.value.as_str()),
        ("bastion.example.com", "ops")
    );
    assert_eq!(p.forwards[0].value.listen, Endpoint::tcp("0.0.0.0", 15432));
    let err = f
        .problems
        .iter()
        .find(|p| p.message.contains("no-port-here"))
        .expect("the broken entry is named");
    assert_eq!(line(&err.origin), 18);
}

#[test]
fn local_bind_auto_gives_each_entry_its_own_address_on_the_engines_port() {
    use warren::config::auto_bind;
    let f = load(
        "[storage.postgres.orders]\nhost = \"db1\"\nlocal_bind = \"auto\"\n[storage.postgres.orders.ssh_tunnel]\nhost = \"b\"\n\n\
         [storage.postgres.users]\nhost = \"db2\"\n[storage.postgres.users.ssh_tunnel]\nhost = \"b\"\nlocal_bind = \"auto\"\n\n\
         [storage.mysql.fixed]\nhost = \"db3\"\nlocal_bind = \"auto\"\nlocal_port = 13306\n[storage.mysql.fixed.ssh_tunnel]\nhost = \"b\"\n",
    );
    assert!(f.problems.is_empty(), "{:#?}", f.problems);
    let listen = |name: &str| {
        f.connections
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.forwards[0].value.listen.clone())
            .expect(name)
    };
    // Linux answers on all of 127.0.0.0/8: the derived address itself.
    assert_eq!(listen("orders"), Endpoint::tcp("127.191.139.77", 5432));
    assert_eq!(listen("users"), Endpoint::tcp("127.141.51.52", 5432));
    assert_eq!(
        listen("fixed"),
        Endpoint::tcp(auto_bind::address("fixed").to_string(), 13306)
    );
}

#[test]
fn two_names_that_derive_one_address_are_reported() {
    use warren::config::auto_bind;
    // Find two names whose addresses are the same (the derivation has 24 bits).
    let mut seen = HashMap::new();
    let (a, b) = (0..200_000)
        .map(|i| format!("db{i}"))
        .find_map(|n| {
            let addr = auto_bind::address(&n);
            seen.insert(addr, n.clone()).map(|first| (first, n))
        })
        .expect("a collision within 200,000 names");
    let entry = |n: &str| {
        format!(
            "[storage.postgres.{n}]\nhost = \"db\"\nlocal_bind = \"auto\"\n[storage.postgres.{n}.ssh_tunnel]\nhost = \"b\"\n\n"
        )
    };
    let f = load(&format!("{}{}", entry(&a), entry(&b)));
    assert_eq!(f.connections.len(), 2, "both still load");
    let p = f
        .problems
        .iter()
        .find(|p| p.message.contains("from local_bind = \"auto\""))
        .expect("a collision warning");
    assert_eq!(p.severity, Severity::Warning);
    assert!(
        p.message.contains(&format!("'{b}' and '{a}' both get")),
        "{}",
        p.message
    );
    assert!(
        p.fix
            .as_deref()
            .is_some_and(|f| f.contains("own local_port")),
        "{p:?}"
    );
}
