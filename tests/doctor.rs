//! `warren doctor` against real servers: every step passes on a healthy path, and each usual
//! failure stops at the right step with its cause and fix.

mod support;

use std::io::Write;
use std::net::TcpListener;

use serde_json::Value;
use support::Scratch;
use support::net::echo_server;
use support::postgres::Postgres;
use support::sshd::{Sshd, keygen};
use support::tunnel::{entry, have_servers, with_key};

const ARGS: [&str; 4] = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];

fn doctor(s: &Scratch, name: &str) -> (support::Run, Value) {
    let mut args: Vec<&str> = ARGS.to_vec();
    args.extend(["doctor", name, "--json"]);
    let r = s.warren(&args);
    let v = r.json();
    (r, v)
}

/// The first step that is not a pass or skip: `(id, hop, status)`.
fn first_trouble(v: &Value) -> (String, u64, String, String, String) {
    let steps = v["steps"].as_array().expect("steps");
    let s = steps
        .iter()
        .find(|s| s["status"] == "fail" || s["status"] == "warn")
        .unwrap_or_else(|| panic!("no trouble in {v:#}"));
    (
        s["id"].as_str().unwrap_or_default().to_string(),
        s["hop"].as_u64().unwrap_or(99),
        s["status"].as_str().unwrap_or_default().to_string(),
        s["detail"].as_str().unwrap_or_default().to_string(),
        s["hint"].as_str().unwrap_or_default().to_string(),
    )
}

fn failed_at(v: &Value) -> (String, u64, String, String) {
    let steps = v["steps"].as_array().expect("steps");
    let s = steps
        .iter()
        .find(|s| s["status"] == "fail")
        .unwrap_or_else(|| panic!("no failed step in {v:#}"));
    (
        s["id"].as_str().unwrap_or_default().to_string(),
        s["hop"].as_u64().unwrap_or(99),
        s["detail"].as_str().unwrap_or_default().to_string(),
        s["hint"].as_str().unwrap_or_default().to_string(),
    )
}

/// A bastion, a key it trusts, and an entry for a PostgreSQL-ish target on `target_port`.
fn setup(target_port: u16, extra_storage: &str, tunnel_lines: &str) -> Option<(Sshd, Scratch)> {
    if !have_servers() {
        return None;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let text = entry("pg", target_port, &sshd, Some(&key), tunnel_lines).replace(
        "[storage.postgres.pg]\n",
        &format!("[storage.postgres.pg]\n{extra_storage}"),
    );
    s.write("epoch.toml", &text);
    Some((sshd, s))
}

#[test]
fn the_healthy_path_passes_every_step_and_names_postgresql() {
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(
        pg.port,
        "username = \"postgres\"\ndatabase = \"postgres\"\n",
        "",
    ) else {
        return;
    };
    let (r, v) = doctor(&s, "pg");
    r.expect_code(0);
    assert_eq!(v["connection"], "pg");
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().expect("steps");
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "config", "dns", "tcp", "banner", "kex", "host_key", "auth", "forward", "probe"
        ]
    );
    for s in steps {
        assert_eq!(s["status"], "pass", "{s:#}");
        assert!(s["duration_ms"].is_u64() && s["hint"].is_null());
    }
    assert!(
        steps[3]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("SSH-2.0-OpenSSH")
    );
    assert!(
        steps[4]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("cipher")
    );
    assert!(
        steps[5]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("SHA256:")
    );
    assert!(
        steps[6]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("accepted")
    );
    let probe = steps[8]["detail"].as_str().unwrap_or_default();
    assert!(
        probe.contains("PostgreSQL") && probe.contains("no TLS: the server does not offer it"),
        "{probe}"
    );

    // The human walk shows the same, a line a step.
    let mut args: Vec<&str> = ARGS.to_vec();
    args.extend(["doctor", "pg"]);
    s.warren(&args)
        .expect_code(0)
        .expect_stdout("[ok  ] hop 0 probe")
        .expect_stdout("no step failed");
}

#[test]
fn nothing_listening_fails_at_tcp() {
    let closed = support::sshd::free_port();
    let Some((_sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    let text = std::fs::read_to_string(s.path().join("epoch.toml"))
        .expect("epoch")
        .replace(
            &format!("port = {}\nuser", _sshd.port),
            &format!("port = {closed}\nuser"),
        );
    s.write("epoch.toml", &text);
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, hop, detail, hint) = failed_at(&v);
    assert_eq!((id.as_str(), hop), ("tcp", 0));
    assert!(detail.contains("refused"), "{detail}");
    assert!(hint.contains("nothing listens"), "{hint}");
    let after: Vec<&Value> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .skip_while(|s| s["id"] != "tcp")
        .skip(1)
        .collect();
    assert!(
        after.iter().all(|s| s["status"] == "skip"),
        "later steps are skipped"
    );
}

fn fake_server(greeting: Option<&'static [u8]>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            if let Some(g) = greeting {
                let _ = c.write_all(g);
            }
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(20));
                drop(c);
            });
        }
    });
    port
}

fn point_bastion_at(s: &Scratch, sshd: &Sshd, port: u16, extra: &str) {
    let text = std::fs::read_to_string(s.path().join("epoch.toml"))
        .expect("epoch")
        .replace(
            &format!("port = {}\nuser", sshd.port),
            &format!("port = {port}\n{extra}user"),
        );
    s.write("epoch.toml", &text);
}

#[test]
fn a_non_ssh_service_is_named_at_banner() {
    let Some((sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    point_bastion_at(
        &s,
        &sshd,
        fake_server(Some(b"220 mail.example.com ESMTP Postfix\r\n")),
        "",
    );
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "banner");
    assert!(
        detail.contains("this port speaks SMTP, not SSH"),
        "{detail}"
    );
    assert!(
        detail.contains("220 mail.example.com"),
        "the first bytes are shown: {detail}"
    );
    assert!(hint.contains("port is wrong"), "{hint}");
}

#[test]
fn a_silent_port_times_out_at_banner() {
    let Some((sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    point_bastion_at(&s, &sshd, fake_server(None), "connect_timeout = 2\n");
    let started = std::time::Instant::now();
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, _) = failed_at(&v);
    assert_eq!(id, "banner");
    assert!(detail.contains("says nothing"), "{detail}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "bounded by connect_timeout"
    );
}

#[test]
fn a_changed_host_key_fails_at_host_key_with_the_fingerprint() {
    let Some((sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    let other = keygen(s.path(), "other", "ed25519", "", false);
    let f: Vec<&str> = other.public_line.split_whitespace().collect();
    s.write(
        "known_hosts",
        &format!("[127.0.0.1]:{} {} {}\n", sshd.port, f[0], f[1]),
    );
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "host_key");
    assert!(
        detail.contains("CHANGED") && detail.contains("SHA256:"),
        "{detail}"
    );
    assert!(hint.contains("ssh-keygen -R"), "{hint}");
}

#[test]
fn an_unknown_host_under_strict_fails_at_host_key() {
    let Some((_sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    s.write("known_hosts", "");
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "host_key");
    assert!(detail.contains("not known"), "{detail}");
    assert!(hint.contains("warren trust pg"), "{hint}");
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).unwrap_or_default(),
        "",
        "doctor writes nothing"
    );
}

#[test]
fn a_key_not_authorized_fails_at_auth_with_the_offered_methods() {
    let Some((sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    let stranger = keygen(s.path(), "stranger", "ed25519", "", false);
    let text = std::fs::read_to_string(s.path().join("epoch.toml"))
        .expect("epoch")
        .replace("id_ed25519", "stranger");
    s.write("epoch.toml", &text);
    let _ = (&sshd, stranger);
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, hop, detail, hint) = failed_at(&v);
    assert_eq!((id.as_str(), hop), ("auth", 0));
    assert!(
        detail.contains("server offered publickey") && detail.contains("stranger: refused"),
        "{detail}"
    );
    assert!(
        hint.contains("authorized_keys") && hint.contains("0700"),
        "{hint}"
    );
}

#[test]
fn allow_tcp_forwarding_no_fails_at_forward() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("AllowTcpForwarding no");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, Some(&key), ""),
    );
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "forward");
    assert!(detail.contains("administratively prohibited"), "{detail}");
    assert!(hint.contains("AllowTcpForwarding"), "{hint}");
}

#[test]
fn a_closed_database_port_behind_the_bastion_fails_at_forward() {
    let closed = support::sshd::free_port();
    let Some((_sshd, s)) = setup(closed, "", "") else {
        return;
    };
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "forward");
    assert!(detail.contains("could not connect"), "{detail}");
    assert!(hint.contains("down") && hint.contains("firewall"), "{hint}");
}

#[test]
fn a_database_port_that_speaks_another_protocol_fails_at_probe() {
    let Some((sshd, s)) = setup(0, "", "") else {
        return;
    };
    // The "database" is the sshd itself: it answers with an SSH banner.
    let text = std::fs::read_to_string(s.path().join("epoch.toml"))
        .expect("epoch")
        .replacen("port = 0\n", &format!("port = {}\n", sshd.port), 1);
    s.write("epoch.toml", &text);
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, _) = failed_at(&v);
    assert_eq!(id, "probe");
    assert!(detail.contains("speaks SSH, not PostgreSQL"), "{detail}");
}

#[test]
fn a_key_readable_by_others_is_a_config_warning() {
    use std::os::unix::fs::PermissionsExt;
    let Some((_sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    std::fs::set_permissions(
        s.path().join("id_ed25519"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let (_, v) = doctor(&s, "pg");
    let (id, hop, status, detail, hint) = first_trouble(&v);
    assert_eq!((id.as_str(), hop, status.as_str()), ("config", 0, "warn"));
    assert!(detail.contains("mode 0644"), "{detail}");
    assert!(
        hint.contains("UNPROTECTED PRIVATE KEY FILE") && hint.contains("chmod 600"),
        "{hint}"
    );
}

#[test]
fn an_encrypted_key_with_no_passphrase_is_flagged_and_fails_auth() {
    let Some((sshd, s)) = setup(echo_server(), "", "") else {
        return;
    };
    let enc = keygen(s.path(), "enc", "ed25519", "secret words", false);
    sshd.authorize(&enc.public_line);
    let text = std::fs::read_to_string(s.path().join("epoch.toml"))
        .expect("epoch")
        .replace("id_ed25519", "enc");
    s.write("epoch.toml", &text);
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, status, detail, hint) = first_trouble(&v);
    assert_eq!((id.as_str(), status.as_str()), ("config", "warn"));
    assert!(
        detail.contains("encrypted and no key_passphrase"),
        "{detail}"
    );
    assert!(
        hint.contains("key_passphrase") || hint.contains("ssh-add"),
        "{hint}"
    );
    let (id, _, detail, _) = failed_at(&v);
    assert_eq!(id, "auth");
    assert!(detail.contains("encrypted"), "{detail}");
}

#[test]
fn a_refused_key_on_the_second_hop_fails_at_auth_hop_1() {
    if !have_servers() {
        return;
    }
    let jump = Sshd::start("");
    let bastion = Sshd::start("");
    let (s, key) = with_key(&jump);
    s.write(
        "known_hosts",
        &format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            bastion.known_hosts_line()
        ),
    );
    // The key is authorized on the jump host only.
    let text = entry(
        "pg",
        echo_server(),
        &bastion,
        Some(&key),
        &format!(
            "jump_host = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", key_file = \"{key}\" }}",
            jump.port,
            support::tunnel::local_user()
        ),
    );
    s.write("epoch.toml", &text);
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, hop, _, _) = failed_at(&v);
    assert_eq!((id.as_str(), hop), ("auth", 1));
    let hop0: Vec<&Value> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["hop"] == 0)
        .collect();
    assert!(
        hop0.iter().all(|s| s["status"] == "pass"),
        "hop 0 is fine: {hop0:#?}"
    );
}

#[test]
fn the_report_has_the_walk_and_redacted_settings_and_unknown_names_exit_2() {
    let Some((_sshd, s)) = setup(
        echo_server(),
        "password = \"hunter2-db\"\n",
        "key_passphrase = \"hunter2-key\"",
    ) else {
        return;
    };
    let mut args: Vec<&str> = ARGS.to_vec();
    args.extend(["doctor", "pg", "--report"]);
    let r = s.warren(&args);
    let out = r.stdout();
    assert!(
        out.contains("warren doctor report: pg") && out.contains("hop 0 forward"),
        "{out}"
    );
    assert!(
        out.contains("key_passphrase") && out.contains("***"),
        "{out}"
    );
    assert!(
        !out.contains("hunter2"),
        "a secret leaked into the report:\n{out}"
    );
    let mut args: Vec<&str> = ARGS.to_vec();
    args.extend(["doctor", "nope"]);
    s.warren(&args)
        .expect_code(2)
        .expect_stderr("no connection named 'nope'");
}

#[test]
fn no_common_key_exchange_algorithm_names_both_lists() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("KexAlgorithms diffie-hellman-group1-sha1");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, Some(&key), ""),
    );
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "kex");
    assert!(
        detail.contains("no common")
            && detail.contains("diffie-hellman-group1-sha1")
            && detail.contains("curve25519-sha256"),
        "{detail}"
    );
    assert!(hint.contains("modern"), "{hint}");
}

#[test]
fn a_busy_local_port_is_a_warning_and_the_walk_goes_on() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    let Some((_sshd, s)) = setup(echo_server(), &format!("local_port = {busy}\n"), "") else {
        return;
    };
    let (r, v) = doctor(&s, "pg");
    let (id, _, status, detail, hint) = first_trouble(&v);
    assert_eq!((id.as_str(), status.as_str()), ("config", "warn"));
    assert!(
        detail.contains(&format!("local port 127.0.0.1:{busy} is not free")),
        "{detail}"
    );
    // The holder is named: this test process.
    assert!(
        detail.contains(&format!("(pid {})", std::process::id())),
        "{detail}"
    );
    assert!(hint.contains("--port-fallback"), "{hint}");
    let forward = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "forward")
        .cloned()
        .unwrap_or_default();
    assert_eq!(forward["status"], "pass", "the path is still walked");
    drop(r);
}

#[test]
fn with_a_password_file_the_probe_logs_in_and_names_a_wrong_password() {
    let Some(pg) = Postgres::start_with_password("correct horse battery") else {
        return;
    };
    let Some((_sshd, s)) = setup(
        pg.port,
        "username = \"postgres\"\ndatabase = \"postgres\"\npassword_file = \"pw\"\n",
        "",
    ) else {
        return;
    };
    let probe = |v: &Value| {
        v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == "probe")
            .cloned()
            .unwrap_or_default()
    };

    s.write("pw", "correct horse battery\n");
    let (r, v) = doctor(&s, "pg");
    r.expect_code(0);
    let p = probe(&v);
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("logged in to postgres with the password from password_file (SCRAM-SHA-256)"),
        "{p:#}"
    );
    assert!(
        !r.stdout().contains("correct horse"),
        "the password never reaches the output"
    );

    s.write("pw", "wrong horse\n");
    let (r, v) = doctor(&s, "pg");
    r.expect_code(1);
    let p = probe(&v);
    assert_eq!(p["status"], "fail");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("28P01"),
        "{p:#}"
    );
    assert!(
        p["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("password_file"),
        "{p:#}"
    );

    // Without a password_file nothing is sent: the probe says what the server asks for, and
    // that the login was not checked (a warn, not a pass).
    let text = std::fs::read_to_string(s.path().join("epoch.toml"))
        .expect("epoch")
        .replace("password_file = \"pw\"\n", "");
    s.write("epoch.toml", &text);
    let (r, v) = doctor(&s, "pg");
    r.expect_code(0);
    assert_eq!(probe(&v)["status"], "warn", "{v:#}");
    let detail = probe(&v)["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains("asks postgres for a SCRAM-SHA-256 password")
            && detail.contains("login not checked: no password configured"),
        "{detail}"
    );
}

#[test]
fn a_remote_forward_is_checked_by_asking_the_bastion_to_listen() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    let rev = |port: u16| {
        format!(
            "[reverse.back]\nremote_bind = \"127.0.0.1\"\nremote_port = {port}\ntarget = \"127.0.0.1:9\"\n[reverse.back.bastion]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{key}\"\n",
            sshd.port,
            support::tunnel::local_user()
        )
    };
    s.write("epoch.toml", &rev(0));
    let (r, v) = doctor(&s, "back");
    r.expect_code(0);
    let fwd = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "forward")
        .cloned()
        .unwrap_or_default();
    assert!(
        fwd["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("the bastion can listen on 127.0.0.1:"),
        "{fwd:#}"
    );
    s.write("epoch.toml", &rev(busy));
    let (r, v) = doctor(&s, "back");
    r.expect_code(1);
    let (id, _, detail, hint) = failed_at(&v);
    assert_eq!(id, "forward");
    assert!(
        detail.contains(&format!("refused to listen on 127.0.0.1:{busy}")),
        "{detail}"
    );
    assert!(
        hint.contains("GatewayPorts") && hint.contains("in use"),
        "{hint}"
    );
}
