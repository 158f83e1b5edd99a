//! A tunnel's lifecycle against a real sshd: a failed tunnel opens again once its bastion is
//! back (from `up`, `up --detach` and the TUI), a unix-socket forward closes and reopens on
//! the same path, ExitOnForwardFailure, 50 bastion restarts under one tunnel with fds and
//! memory flat, a daemon killed and replaced with its tunnels on the same ports, two clients
//! at once, 100 tunnels in one daemon, and a resume from sleep noticed at once.

mod support;

use support::daemon::Home;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, free_port};
use support::tmux::Tmux;
use support::tunnel::{entry, have_servers, local_user, with_key};

/// sha256 of 1 MiB sent through `addr` and echoed back equals that of what was sent.
fn one_mib_exact(addr: &str, seed: u8) -> bool {
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let back = echo_through(addr, &data);
    Sha256::digest(&back) == Sha256::digest(&data)
}

fn proc_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn proc_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_tunnel_that_failed_while_its_bastion_was_down_opens_once_it_is_back() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &entry("late", echo, &sshd, Some(&key), "connect_timeout = 3"),
    );
    let h = Home::new(s);
    sshd.kill();
    // Foreground: fails, as ssh -N would.
    h.warren(&["up", "late"]).expect_code(1);
    // Detached: fails too, and the daemon does not keep the failure as an answer.
    h.warren(&["up", "--detach", "late"])
        .expect_code(1)
        .expect_stdout("failed");
    sshd.restart();
    let r = h.warren(&["up", "--detach", "late", "--json"]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v[0]["state"], "up", "{v}");
    let local = v[0]["local"][0].as_str().unwrap_or_default().to_string();
    assert!(one_mib_exact(&local, 1));
    // A failure in a running daemon: the bastion goes, the tunnel fails for good
    // (auto_reconnect off), its listener closes; once the bastion is back, up opens it.
    let text = std::fs::read_to_string(h.s.path().join("epoch.toml")).expect("epoch");
    h.s.write(
        "epoch.toml",
        &text.replace("connect_timeout = 3", "connect_timeout = 3\nauto_reconnect = false\nkeepalive_interval = 1\nkeepalive_count_max = 1"),
    );
    h.warren(&["down", "--all"]).expect_code(0);
    h.warren(&["up", "--detach", "late"]).expect_code(0);
    let local = h.status()[0]["local"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    sshd.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = h.status();
        if v.as_array().is_none_or(|a| a.is_empty()) || v[0]["state"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "the tunnel never failed: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        std::net::TcpStream::connect(&local).is_err(),
        "a failed tunnel's listener is closed"
    );
    sshd.restart();
    let r = h.warren(&["up", "--detach", "late", "--json"]);
    r.expect_code(0);
    let local = r.json()[0]["local"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(one_mib_exact(&local, 2));
}

#[test]
fn enter_in_the_tui_reopens_a_failed_tunnel_once_the_bastion_is_back() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let local = free_port();
    s.write(
        "ssh_config",
        &format!(
            "Host late\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    ConnectTimeout 3\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n",
            sshd.port,
            local_user()
        ),
    );
    sshd.kill();
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts",
    );
    t.wait_for("connections");
    t.keys(&["Enter"]);
    t.wait_until("late failed", |s| {
        s.lines()
            .any(|l| l.contains("✘ failed") && l.contains("late"))
    });
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
        "a failed tunnel's listener is closed"
    );
    sshd.restart();
    t.keys(&["Enter"]);
    t.wait_until("late up", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("late"))
    });
    assert!(one_mib_exact(&format!("127.0.0.1:{local}"), 3));
    t.quit_closing_tunnels();
}

#[test]
fn a_unix_socket_forward_closes_and_reopens_on_the_same_path() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let sock = s.path().join("sockets/pg.sock");
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            &format!("local_socket = \"{}\"", sock.display()),
        ),
    );
    let h = Home::new(s);
    let echo_unix = |path: &Path| {
        let mut c = std::os::unix::net::UnixStream::connect(path).expect("connect");
        c.write_all(b"unix").expect("write");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut back = Vec::new();
        c.read_to_end(&mut back).expect("read");
        back
    };
    for round in 0..3 {
        h.warren(&["up", "--detach", "pg"]).expect_code(0);
        assert_eq!(echo_unix(&sock), b"unix", "round {round}");
        h.warren(&["down", "pg"]).expect_code(0);
        assert!(!sock.exists(), "the socket file is removed on close");
    }
}

#[test]
fn exit_on_forward_failure_with_a_busy_port_exits_1_with_the_reason() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port();
    let echo = echo_server();
    let host = |name: &str, extra: &str| {
        format!(
            "Host {name}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    LocalForward 127.0.0.1:{busy_port} 127.0.0.1:{echo}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{echo}\n{extra}",
            sshd.port,
            local_user(),
            free_port()
        )
    };
    s.write(
        "ssh_config",
        &format!(
            "{}\n{}",
            host("strict", "    ExitOnForwardFailure yes\n"),
            host("lax", "")
        ),
    );
    s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--known-hosts",
        "known_hosts",
        "up",
        "strict",
    ])
    .expect_code(1)
    .expect_stdout("ExitOnForwardFailure is on")
    .expect_stderr(&format!("cannot listen on 127.0.0.1:{busy_port}"));
    // Without it, the other forward carries on (as ssh without ExitOnForwardFailure).
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "up",
            "lax",
            "--json",
        ],
    );
    up.wait_for("up", |v| v["event"] == "state" && v["state"] == "up");
    drop(busy);
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn fifty_bastion_restarts_under_one_tunnel_with_fds_and_memory_flat() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            "reconnect_delay = 0.1\nkeepalive_interval = 1\nkeepalive_count_max = 2\nconnect_timeout = 3",
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
    let pid = up.child.id();
    assert!(one_mib_exact(&local, 0));
    let (mut fds10, mut rss10) = (0, 0);
    for cycle in 1..=50u32 {
        sshd.kill();
        sshd.restart();
        let restarted = Instant::now();
        // Each cycle: 1 MiB through the tunnel, exact, within 10 s of the restart.
        loop {
            let ok =
                std::panic::catch_unwind(|| one_mib_exact(&local, cycle as u8)).unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(10),
                "cycle {cycle}: no exact 1 MiB within 10 s of the restart"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if cycle == 10 {
            (fds10, rss10) = (proc_fds(pid), proc_rss_kb(pid));
        }
    }
    let (fds50, rss50) = (proc_fds(pid), proc_rss_kb(pid));
    eprintln!("fds {fds10} -> {fds50}, RSS {rss10} kB -> {rss50} kB");
    assert!(fds50 <= fds10 + 4, "fds grew: {fds10} -> {fds50}");
    assert!(
        rss50 <= rss10 + rss10 / 4 + 2048,
        "RSS grew: {rss10} kB -> {rss50} kB"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_daemon_killed_is_replaced_and_its_tunnels_come_back_on_the_same_ports() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry("a", echo, &sshd, Some(&key), ""),
            entry("b", echo, &sshd, Some(&key), "")
        ),
    );
    let h = Home::new(s);
    h.warren(&["up", "--detach", "a", "b"]).expect_code(0);
    let before = h.status();
    let ports: Vec<String> = (0..2)
        .map(|i| {
            before[i]["local"][0]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let pid = h.daemon_pid().expect("the daemon's pid");
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the daemon did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next client finds the daemon gone and starts one, which opens the tunnels again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let v = h.status();
        if v.as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|t| t["state"] == "up"))
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the tunnels did not come back: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(h.daemon_pid(), Some(pid), "a new daemon");
    for i in 0..2 {
        assert_eq!(after[i]["local"][0].as_str().unwrap_or_default(), ports[i]);
        assert!(one_mib_exact(&ports[i], i as u8));
    }
}

#[test]
fn a_hundred_tunnels_in_one_daemon() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let names: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
    let text: String = names
        .iter()
        .map(|n| entry(n, echo, &sshd, Some(&key), ""))
        .collect::<Vec<_>>()
        .join("\n");
    s.write("epoch.toml", &text);
    let h = Home::new(s);
    let mut args = vec!["up", "--detach"];
    args.extend(names.iter().map(String::as_str));
    h.warren(&args).expect_code(0);
    let v = h.status();
    let list = v.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 100);
    assert!(list.iter().all(|t| t["state"] == "up"), "{v}");
    // They share one SSH connection (equal trust), and every one carries data.
    assert_eq!(sshd.session_pids().len(), 1, "one session for all");
    for (i, t) in list.iter().enumerate() {
        let local = t["local"][0].as_str().unwrap_or_default();
        assert_eq!(
            echo_through(local, format!("t{i}").as_bytes()),
            format!("t{i}").as_bytes()
        );
    }
}

#[test]
fn the_tui_and_warren_status_at_once() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry("one", echo_server(), &sshd, Some(&key), ""),
            entry("two", echo_server(), &sshd, Some(&key), "")
        ),
    );
    let h = Home::new(s);
    h.warren(&["up", "--detach", "one"]).expect_code(0);
    let t = Tmux::warren(
        h.s.path(),
        &format!("XDG_RUNTIME_DIR={}", h.run),
        "--ssh-config /dev/null --known-hosts known_hosts",
    );
    t.wait_until("one up in the TUI", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("one"))
    });
    // The TUI opens two in the daemon; status (another client) sees both.
    t.keys(&["j", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = h.status();
        let up = v
            .as_array()
            .map(|a| a.iter().filter(|t| t["state"] == "up").count())
            .unwrap_or(0);
        if up == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "status never saw both: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // status closes one; the TUI sees it go.
    h.warren(&["down", "one"]).expect_code(0);
    t.wait_until("one down in the TUI", |s| {
        s.lines().any(|l| l.contains("down") && l.contains("one"))
    });
    t.keys(&["q"]);
    t.wait_for("they keep running");
    t.keys(&["y"]);
    t.wait_for("EXITED 0");
}

#[test]
fn a_clock_jump_has_every_session_re_checked_at_once() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    // Keepalives would take a minute: only the re-check can explain a fast reaction.
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            "keepalive_interval = 60\nreconnect_delay = 0.1\nconnect_timeout = 3",
        ),
    );
    let skew = s.path().join("skew");
    s.write("skew", "0");
    let skew_env = skew.display().to_string();
    let mut up = Up::start_env(
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
        &[("WARREN_TEST_CLOCK_SKEW_FILE", &skew_env)],
    );
    let local = up.listening("pg");
    assert!(one_mib_exact(&local, 5));
    // The laptop "sleeps": the bastion's session freezes, then the clock jumps.
    for p in sshd.session_pids() {
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &p.to_string()])
            .status();
    }
    let frozen = sshd.session_pids();
    std::fs::write(&skew, "3600").expect("jump");
    let jumped = Instant::now();
    up.wait_for("the re-check finding it dead", |v| {
        v["event"] == "state" && v["state"] == "reconnecting"
    });
    let took = jumped.elapsed();
    // The monitor looks every second and the ping waits 2 s: about 3 s. The bound leaves
    // room for a slow machine and still excludes the keepalives' minute.
    assert!(
        took < Duration::from_secs(20),
        "noticed after {took:?} (keepalives alone would take 60 s or more)"
    );
    up.wait_for("up again", |v| v["event"] == "state" && v["state"] == "up");
    assert!(one_mib_exact(&local, 6));
    for p in frozen {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &p.to_string()])
            .status();
    }
    assert_eq!(up.interrupt(), 0);
}
