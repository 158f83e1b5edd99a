//! `warren up` against a real OpenSSH sshd on 127.0.0.1: data through a local forward,
//! concurrency, host keys, jump chains and shared sessions.

mod support;

use sha2::{Digest, Sha256};
use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, keygen};
use support::tunnel::{entry, have_servers, local_user, with_key};

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn sixty_four_mib_each_way_arrive_byte_exact() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "up",
            "pg",
            "--json",
        ],
    );
    let local = up.listening("pg");
    assert!(
        local.starts_with("127.0.0.1:"),
        "listens on loopback: {local}"
    );
    let data = pseudo_random(64 * 1024 * 1024, 7);
    let back = echo_through(&local, &data);
    assert_eq!(back.len(), data.len(), "all 64 MiB came back");
    assert_eq!(
        Sha256::digest(&back),
        Sha256::digest(&data),
        "byte-exact both ways"
    );
    assert_eq!(up.interrupt(), 0, "SIGINT closes the tunnels and exits 0");
}

#[test]
fn two_hundred_concurrent_connections_echo_one_mib_each() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "up",
            "pg",
            "--json",
        ],
    );
    let local = up.listening("pg");
    let handles: Vec<_> = (0..200u64)
        .map(|i| {
            let local = local.clone();
            std::thread::spawn(move || {
                let data = pseudo_random(1024 * 1024, i + 1);
                let back = echo_through(&local, &data);
                back == data
            })
        })
        .collect();
    let failures = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|ok| !ok)
        .count();
    assert_eq!(failures, 0, "every connection echoed its 1 MiB exactly");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn an_unknown_host_key_is_refused_under_strict_with_its_fingerprint() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("known_hosts", "");
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, Some(&key), ""),
    );
    let r = s.warren_kh(&["up", "pg"]);
    r.expect_code(1)
        .expect_stderr("is not known")
        .expect_stderr("SHA256:");
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).unwrap_or_default(),
        "",
        "strict never writes known_hosts"
    );
}

#[test]
fn a_changed_host_key_is_refused_even_under_accept_new() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let other = keygen(s.path(), "other_host", "ed25519", "", false);
    let fields: Vec<&str> = other.public_line.split_whitespace().collect();
    s.write(
        "known_hosts",
        &format!("[127.0.0.1]:{} {} {}\n", sshd.port, fields[0], fields[1]),
    );
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            "strict_host_key_checking = \"accept-new\"",
        ),
    );
    let r = s.warren_kh(&["up", "pg"]);
    r.expect_code(1)
        .expect_stderr("REMOTE HOST IDENTIFICATION HAS CHANGED")
        .expect_stderr("known_hosts:1")
        .expect_stderr("ssh-keygen -R");
}

#[test]
fn accept_new_appends_exactly_one_line_and_keeps_the_rest() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let before = "# my hosts\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
    s.write("known_hosts", before);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo,
            &sshd,
            Some(&key),
            "strict_host_key_checking = \"accept-new\"",
        ),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "up",
            "pg",
            "--json",
        ],
    );
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"hello"), b"hello");
    assert_eq!(up.interrupt(), 0);
    let after = std::fs::read_to_string(s.path().join("known_hosts")).expect("known_hosts");
    assert!(after.starts_with(before), "existing lines kept:\n{after}");
    let added: Vec<&str> = after[before.len()..].lines().collect();
    assert_eq!(added.len(), 1, "exactly one line added:\n{after}");
    assert!(
        added[0].starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port)),
        "{}",
        added[0]
    );
}

#[test]
fn a_two_hop_proxyjump_chain_carries_data() {
    if !have_servers() {
        return;
    }
    let jump = Sshd::start("");
    let bastion = Sshd::start("");
    let (s, key) = with_key(&jump);
    let pubkey = std::fs::read_to_string(format!("{key}.pub")).expect("pub");
    bastion.authorize(pubkey.trim());
    s.write(
        "known_hosts",
        &format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            bastion.known_hosts_line()
        ),
    );
    let echo = echo_server();
    let user = local_user();
    s.write(
        "ssh_config",
        &format!(
            "Host jump\n    HostName 127.0.0.1\n    Port {}\n    User {user}\n    IdentityFile {key}\n\nHost db\n    HostName 127.0.0.1\n    Port {}\n    User {user}\n    IdentityFile {key}\n    ProxyJump jump\n    LocalForward 127.0.0.1:{} 127.0.0.1:{echo}\n",
            jump.port,
            bastion.port,
            support::sshd::free_port()
        ),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "up",
            "db",
            "--json",
        ],
    );
    let local = up.listening("db");
    let data = pseudo_random(4 * 1024 * 1024, 3);
    assert_eq!(echo_through(&local, &data), data);
    // The bastion was reached through the jump host: its session came from loopback via jump.
    assert_eq!(
        jump.session_pids().len(),
        1,
        "one SSH session on the jump host"
    );
    assert_eq!(
        bastion.session_pids().len(),
        1,
        "one SSH session on the bastion"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn tunnels_on_the_same_chain_share_one_ssh_connection() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let (e1, e2) = (echo_server(), echo_server());
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry("one", e1, &sshd, Some(&key), ""),
            entry("two", e2, &sshd, Some(&key), "")
        ),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "up",
            "one",
            "two",
            "--json",
        ],
    );
    let a = up.listening("one");
    let b = up.wait_for("listening two", |v| {
        v["event"] == "listening" && v["name"] == "two"
    })["local"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(echo_through(&a, b"first"), b"first");
    assert_eq!(echo_through(&b, b"second"), b"second");
    assert_eq!(
        sshd.session_pids().len(),
        1,
        "both tunnels ride one SSH connection"
    );
    assert_eq!(up.interrupt(), 0);
}
