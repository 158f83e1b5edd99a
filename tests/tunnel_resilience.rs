//! Tunnels that survive: a bastion killed and restarted, a frozen bastion found by keepalive,
//! a client that stops reading; and the remaining host key, chain and listener cases.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, keygen};
use support::tunnel::{entry, have_servers, local_user, with_key};

const ARGS: [&str; 4] = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];

fn up_args<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = ARGS.to_vec();
    v.push("up");
    v.extend_from_slice(names);
    v.push("--json");
    v
}

#[test]
fn a_revoked_host_key_is_refused() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let fields: Vec<&str> = sshd.host_key_line.split_whitespace().collect();
    s.write(
        "known_hosts",
        &format!(
            "{}\n@revoked * {} {}\n",
            sshd.known_hosts_line(),
            fields[0],
            fields[1]
        ),
    );
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            "strict_host_key_checking = false",
        ),
    );
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("marked @revoked at")
        .expect_stderr("known_hosts:2");
}

#[test]
fn a_hashed_known_hosts_entry_is_accepted() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let kh = s.path().join("known_hosts");
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .expect("ssh-keygen -H");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&kh).expect("known_hosts");
    assert!(text.starts_with("|1|"), "hashed: {text}");
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    let mut up = Up::start(s.path(), &up_args(&["pg"]));
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"hashed"), b"hashed");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_three_deep_nested_jump_host_chain_from_epoch_toml() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let user = local_user();
    let hop = |path: &str| {
        format!(
            "[storage.postgres.deep.ssh_tunnel{path}]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\nkey_file = \"{key}\"\n",
            sshd.port
        )
    };
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.deep]\nhost = \"127.0.0.1\"\nport = {echo}\n\n{}\n{}\n{}\n{}",
            hop(""),
            hop(".jump_host"),
            hop(".jump_host.jump_host"),
            hop(".jump_host.jump_host.jump_host")
        ),
    );
    let mut up = Up::start(s.path(), &up_args(&["deep"]));
    let local = up.listening("deep");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo_through(&local, &data), data);
    assert_eq!(
        sshd.session_pids().len(),
        4,
        "four SSH connections, each inside the one before"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_local_port_in_use_fails_that_tunnel_only() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry(
                "busy",
                echo,
                &sshd,
                Some(&key),
                &format!("local_port = {busy}")
            ),
            entry("fine", echo, &sshd, Some(&key), "")
        ),
    );
    let mut up = Up::start(s.path(), &up_args(&["busy", "fine"]));
    let err = up.wait_for("error for busy", |v| {
        v["event"] == "error" && v["name"] == "busy"
    });
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("cannot listen on 127.0.0.1:{busy}")),
        "{err}"
    );
    let local = up.listening("fine");
    assert_eq!(echo_through(&local, b"still fine"), b"still fine");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn warren_up_prints_one_line_per_listening_forward() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "up",
            "pg",
        ])
        .current_dir(s.path())
        .env("HOME", s.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("warren up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(first.starts_with("pg  127.0.0.1:"), "{first}");
    assert!(
        first.ends_with(&format!(" -> 127.0.0.1:{echo} via 127.0.0.1")),
        "{first}"
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_tunnel_recovers_on_the_same_port_after_the_bastion_restarts() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), "reconnect_delay = 0.2\nkeepalive_interval = 1\nkeepalive_count_max = 2\nconnect_timeout = 3"));
    let mut up = Up::start(s.path(), &up_args(&["pg"]));
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"before"), b"before");

    sshd.kill();
    up.wait_for("reconnecting", |v| {
        v["event"] == "state" && v["state"] == "reconnecting"
    });
    sshd.restart();
    up.seen.clear();
    up.wait_for("up again", |v| v["event"] == "state" && v["state"] == "up");
    assert_eq!(
        echo_through(&local, b"after"),
        b"after",
        "same local port, no restart of warren"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_frozen_bastion_is_found_by_keepalive_and_recovered() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), "reconnect_delay = 0.2\nkeepalive_interval = 1\nkeepalive_count_max = 2\nconnect_timeout = 2"));
    let mut up = Up::start(s.path(), &up_args(&["pg"]));
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"before"), b"before");

    sshd.signal_all("STOP");
    let lost = up.wait_for("lost", |v| {
        v["event"] == "error" && v["message"].as_str().unwrap_or_default().contains("lost")
    });
    // The cause, as ssh's ServerAlive settings name it.
    let said = lost["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("no answer to 2 keepalives sent 1 s apart"),
        "{said}"
    );
    sshd.signal_all("CONT");
    up.seen.clear();
    up.wait_for("up again", |v| v["event"] == "state" && v["state"] == "up");
    assert_eq!(echo_through(&local, b"after"), b"after");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_client_that_stops_reading_does_not_stall_the_others() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    let mut up = Up::start(s.path(), &up_args(&["pg"]));
    let local = up.listening("pg");

    // A writes 96 MiB to the echo server and never reads the echo.
    let stuck = TcpStream::connect(&local).expect("connect A");
    let mut w = stuck.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let chunk = vec![7u8; 1024 * 1024];
        let mut sent = 0usize;
        for _ in 0..96 {
            if w.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    std::thread::sleep(Duration::from_secs(1));

    // B, on the same SSH connection, keeps flowing meanwhile.
    let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 253) as u8).collect();
    let started = Instant::now();
    assert_eq!(echo_through(&local, &data), data);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "B finished while A was stuck"
    );

    // A's queue is bounded: past it A is closed, so its writer ends instead of blocking forever.
    let sent = writer.join().expect("writer");
    assert!(sent <= 96 * 1024 * 1024);
    drop(stuck);
    assert_eq!(echo_through(&local, b"and after"), b"and after");
    assert_eq!(up.interrupt(), 0);
}

/// Signs the sshd's host key with a new CA for `principal`; returns the CA's public line.
fn host_certificate(sshd: &mut Sshd, principal: &str) -> String {
    let ca_dir = tempfile::tempdir().expect("ca dir");
    let ca = keygen(ca_dir.path(), "host_ca", "ed25519", "", false);
    let host_pub = sshd.dir.path().join("host_ed25519.pub");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca.private)
        .args(["-I", "warren-test-host", "-h", "-n", principal, "-V", "+1h"])
        .arg(&host_pub)
        .output()
        .expect("ssh-keygen -s -h");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = sshd.dir.path().join("host_ed25519-cert.pub");
    sshd.reconfigure(&format!("HostCertificate {}", cert.display()));
    ca.public_line
}

#[test]
fn a_host_certificate_signed_by_a_listed_ca_is_accepted() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let ca = host_certificate(&mut sshd, "127.0.0.1");
    let fields: Vec<&str> = ca.split_whitespace().collect();
    // Only the CA is known, not the host's own key.
    s.write(
        "known_hosts",
        &format!(
            "@cert-authority [127.0.0.1]:{} {} {}\n",
            sshd.port, fields[0], fields[1]
        ),
    );
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    let mut up = Up::start(s.path(), &up_args(&["pg"]));
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"certified"), b"certified");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_host_certificate_for_another_host_is_refused() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let ca = host_certificate(&mut sshd, "db.example.com");
    let fields: Vec<&str> = ca.split_whitespace().collect();
    s.write(
        "known_hosts",
        &format!("@cert-authority * {} {}\n", fields[0], fields[1]),
    );
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, Some(&key), ""),
    );
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("it is for db.example.com, not 127.0.0.1")
        .expect_stderr("is not known");
}

#[test]
fn a_changed_host_key_is_refused_under_strict() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let other = keygen(s.path(), "other_host", "ed25519", "", false);
    let fields: Vec<&str> = other.public_line.split_whitespace().collect();
    s.write(
        "known_hosts",
        &format!(
            "# pinned\n[127.0.0.1]:{} {} {}\n",
            sshd.port, fields[0], fields[1]
        ),
    );
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            "strict_host_key_checking = true",
        ),
    );
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("REMOTE HOST IDENTIFICATION HAS CHANGED")
        .expect_stderr("known_hosts:2")
        .expect_stderr("SHA256:");
}

#[test]
fn a_unix_socket_listener_is_private_and_carries_data() {
    if !have_servers() {
        return;
    }
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let sock = s.path().join("run/pg.sock");
    let text = entry(
        "pg",
        echo,
        &sshd,
        Some(&key),
        &format!("local_socket = \"{}\"", sock.display()),
    );
    s.write("epoch.toml", &text);
    let mut up = Up::start(s.path(), &up_args(&["pg"]));
    let local = up.listening("pg");
    assert_eq!(local, sock.display().to_string());
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the socket is the user's only");
    let mut c = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    c.write_all(b"over a unix socket").expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut back = Vec::new();
    c.read_to_end(&mut back).expect("read");
    assert_eq!(back, b"over a unix socket");
    assert_eq!(up.interrupt(), 0);
}
