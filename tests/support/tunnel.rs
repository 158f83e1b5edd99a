//! What the tunnel tests share: a scratch home whose key the sshd trusts, and epoch.toml
//! entries that point a tunnel at a loopback target through that sshd.
#![allow(dead_code)]

use super::Scratch;
use super::sshd::{Sshd, keygen};

/// sshd and ssh-keygen are installed (under CI=true their absence fails the test).
pub fn have_servers() -> bool {
    super::require("/usr/sbin/sshd") && super::require("ssh-keygen")
}

/// The user the tests run as: the sshd authenticates real accounts.
pub fn local_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A scratch home with an Ed25519 key the sshd authorizes and the sshd's host key in
/// `known_hosts`; returns the private key's path.
pub fn with_key(sshd: &Sshd) -> (Scratch, String) {
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    (s, key.private.display().to_string())
}

/// `[storage.postgres.NAME]` reaching 127.0.0.1:`target_port` through `sshd`, on a local
/// port warren picks; `key` becomes key_file; `tunnel_lines` go into the ssh_tunnel table.
pub fn entry(
    name: &str,
    target_port: u16,
    sshd: &Sshd,
    key: Option<&str>,
    tunnel_lines: &str,
) -> String {
    let key = key
        .map(|k| format!("key_file = \"{k}\"\n"))
        .unwrap_or_default();
    format!(
        "[storage.postgres.{name}]\nhost = \"127.0.0.1\"\nport = {target_port}\n\n[storage.postgres.{name}.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n{key}{tunnel_lines}\n",
        sshd.port,
        local_user()
    )
}

/// A Host block reaching `sshd` with `lines`, forwarding 127.0.0.1:`local` to `target`.
pub fn ssh_host(
    name: &str,
    sshd: &Sshd,
    key: &str,
    local: u16,
    target: u16,
    lines: &str,
) -> String {
    format!(
        "Host {name}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    IdentitiesOnly yes\n    IdentityAgent none\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{target}\n{lines}\n",
        sshd.port,
        local_user()
    )
}

/// A scratch home whose ssh_config has a `db` host with no StrictHostKeyChecking (ssh's
/// default: ask) forwarding 127.0.0.1:`local` to an echo server, and an empty known_hosts.
pub fn unknown_host(sshd: &Sshd, local: u16) -> Scratch {
    let (s, key) = with_key(sshd);
    s.write("known_hosts", "");
    let d = s.path().display();
    s.write(
        "ssh_config",
        &ssh_host(
            "db",
            sshd,
            &key,
            local,
            super::net::echo_server(),
            &format!("    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile none\n"),
        ),
    );
    s
}
