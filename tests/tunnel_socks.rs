//! Dynamic forwards (DynamicForward, `ssh -D`): a local SOCKS5 / SOCKS4a proxy whose
//! connections become channels from the bastion, against a real sshd.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::net::{Up, echo_server};
use support::sshd::{Sshd, free_port};
use support::tunnel::{have_servers, local_user, with_key};

/// An sshd, a tunnel with a DynamicForward on 127.0.0.1, and its port.
fn proxy() -> Option<(Sshd, support::Scratch, Up, String)> {
    if !have_servers() {
        return None;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let port = free_port();
    s.write(
        "ssh_config",
        &format!("Host socks\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    DynamicForward 127.0.0.1:{port}\n", sshd.port, local_user()),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "up",
            "socks",
            "--json",
        ],
    );
    let local = up.listening("socks");
    assert_eq!(local, format!("127.0.0.1:{port}"));
    Some((sshd, s, up, local))
}

fn connect5(proxy: &str, addr: &[u8], port: u16) -> (TcpStream, [u8; 10]) {
    let mut c = TcpStream::connect(proxy).expect("connect to the proxy");
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .ok();
    c.write_all(&[5, 1, 0]).expect("greeting");
    let mut choice = [0u8; 2];
    c.read_exact(&mut choice).expect("method choice");
    assert_eq!(choice, [5, 0], "no authentication");
    let mut req = vec![5, 1, 0];
    req.extend_from_slice(addr);
    req.extend_from_slice(&port.to_be_bytes());
    c.write_all(&req).expect("request");
    let mut reply = [0u8; 10];
    c.read_exact(&mut reply).expect("reply");
    (c, reply)
}

fn echo_check(mut c: TcpStream, data: &[u8]) {
    c.write_all(data).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut back = Vec::new();
    c.read_to_end(&mut back).expect("read");
    assert_eq!(back, data);
}

#[test]
fn socks5_connect_by_address_and_by_name_reaches_the_echo_server() {
    let Some((_sshd, _s, up, proxy)) = proxy() else {
        return;
    };
    let echo = echo_server();
    let (c, reply) = connect5(&proxy, &[1, 127, 0, 0, 1], echo);
    assert_eq!(reply[1], 0, "granted");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    echo_check(c, &data);
    let mut by_name = vec![3, 9];
    by_name.extend_from_slice(b"localhost");
    let (c, reply) = connect5(&proxy, &by_name, echo);
    assert_eq!(reply[1], 0, "granted (the bastion resolves the name)");
    echo_check(c, b"by name");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn socks4a_connect_by_name() {
    let Some((_sshd, _s, up, proxy)) = proxy() else {
        return;
    };
    let echo = echo_server();
    let mut c = TcpStream::connect(&proxy).expect("connect");
    let mut req = vec![4, 1];
    req.extend_from_slice(&echo.to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 1]);
    req.extend_from_slice(b"me\0localhost\0");
    c.write_all(&req).expect("request");
    let mut reply = [0u8; 8];
    c.read_exact(&mut reply).expect("reply");
    assert_eq!(reply[1], 0x5a, "granted");
    echo_check(c, b"socks4a");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn unsupported_methods_and_commands_are_refused_cleanly() {
    let Some((_sshd, _s, up, proxy)) = proxy() else {
        return;
    };
    // Only username/password offered: "no acceptable methods", then closed.
    let mut c = TcpStream::connect(&proxy).expect("connect");
    c.write_all(&[5, 1, 2]).expect("greeting");
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).expect("read");
    assert_eq!(reply, [5, 0xff]);
    // BIND is not served.
    let mut c = TcpStream::connect(&proxy).expect("connect");
    c.write_all(&[5, 1, 0]).expect("greeting");
    let mut choice = [0u8; 2];
    c.read_exact(&mut choice).expect("choice");
    c.write_all(&[5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
        .expect("bind request");
    let mut r = [0u8; 10];
    c.read_exact(&mut r).expect("reply");
    assert_eq!(r[1], 7, "command not supported");
    // A closed port behind the bastion: "connection refused".
    let (_, reply) = connect5(&proxy, &[1, 127, 0, 0, 1], free_port());
    assert_eq!(reply[1], 5, "connection refused");
    // The proxy still serves after all that.
    let echo = echo_server();
    let (c, reply) = connect5(&proxy, &[1, 127, 0, 0, 1], echo);
    assert_eq!(reply[1], 0);
    echo_check(c, b"still serving");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn socks_port_in_epoch_toml_is_a_dynamic_forward() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let port = free_port();
    s.write(
        "epoch.toml",
        &support::tunnel::entry(
            "pg",
            echo,
            &sshd,
            Some(&key),
            &format!("socks_port = {port}"),
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
    up.wait_for("the SOCKS listener", |v| {
        v["event"] == "listening" && v["local"] == format!("127.0.0.1:{port}")
    });
    up.wait_for("up", |v| v["event"] == "state" && v["state"] == "up");
    let (c, reply) = connect5(&format!("127.0.0.1:{port}"), &[1, 127, 0, 0, 1], echo);
    assert_eq!(reply[1], 0);
    echo_check(c, b"via socks_port");
    assert_eq!(up.interrupt(), 0);
}
