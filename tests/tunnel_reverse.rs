//! Remote forwards (RemoteForward, `ssh -R`) through a real sshd: the bastion's port reaches a
//! local echo server, port 0 is reported, the port is asked for again after the bastion
//! restarts, and a refused port is a clear error.

mod support;

use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, free_port};
use support::tunnel::{have_servers, local_user, with_key};

fn config(sshd: &Sshd, key: &str, remote: &str) -> String {
    format!(
        "Host rev\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    ServerAliveInterval 1\n    ServerAliveCountMax 2\n    RemoteForward {remote}\n",
        sshd.port,
        local_user()
    )
}

fn remote_listening(up: &mut Up) -> String {
    let ev = up.wait_for("listening on the bastion", |v| {
        v["event"] == "listening"
            && v["local"]
                .as_str()
                .unwrap_or_default()
                .ends_with("on the bastion")
    });
    ev["local"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches(" on the bastion")
        .to_string()
}

#[test]
fn the_bastions_port_reaches_the_local_target_and_comes_back_after_a_restart() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let rp = free_port();
    s.write(
        "ssh_config",
        &config(&sshd, &key, &format!("127.0.0.1:{rp} 127.0.0.1:{echo}")),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "up",
            "rev",
            "--json",
        ],
    );
    assert_eq!(remote_listening(&mut up), format!("127.0.0.1:{rp}"));
    up.wait_for("up", |v| v["event"] == "state" && v["state"] == "up");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    assert_eq!(
        echo_through(&format!("127.0.0.1:{rp}"), &data),
        data,
        "byte-exact through the bastion's port"
    );

    sshd.kill();
    up.wait_for("reconnecting", |v| {
        v["event"] == "state" && v["state"] == "reconnecting"
    });
    sshd.restart();
    up.seen.clear();
    assert_eq!(
        remote_listening(&mut up),
        format!("127.0.0.1:{rp}"),
        "asked for again after the reconnect"
    );
    assert_eq!(
        echo_through(&format!("127.0.0.1:{rp}"), b"after the restart"),
        b"after the restart"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn port_zero_lets_the_bastion_pick_and_reports_it() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "ssh_config",
        &config(&sshd, &key, &format!("127.0.0.1:0 127.0.0.1:{echo}")),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "up",
            "rev",
            "--json",
        ],
    );
    let addr = remote_listening(&mut up);
    assert!(!addr.ends_with(":0"), "the picked port is reported: {addr}");
    assert_eq!(echo_through(&addr, b"picked"), b"picked");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_refused_remote_port_is_a_clear_error() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let rp = taken.local_addr().expect("addr").port();
    s.write(
        "ssh_config",
        &config(
            &sshd,
            &key,
            &format!("127.0.0.1:{rp} 127.0.0.1:{}", echo_server()),
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
            "rev",
            "--json",
        ],
    );
    let err = up.wait_for("refusal", |v| v["event"] == "error");
    let msg = err["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("the bastion refused to listen on 127.0.0.1:{rp}"))
            && msg.contains("in use"),
        "{msg}"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_reverse_table_in_epoch_toml_works_the_same() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "[reverse.back]\nremote_bind = \"127.0.0.1\"\nremote_port = 0\ntarget = \"127.0.0.1:{echo}\"\n\n[reverse.back.bastion]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{key}\"\n",
            sshd.port,
            local_user()
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
            "back",
            "--json",
        ],
    );
    let addr = remote_listening(&mut up);
    assert_eq!(echo_through(&addr, b"from epoch.toml"), b"from epoch.toml");
    assert_eq!(up.interrupt(), 0);
}
