//! Authentication against a real sshd: ssh-agent, an encrypted key with its passphrase, a PEM
//! RSA key, a user certificate; and the report when nothing works.

mod support;

use support::Scratch;
use support::agent::Agent;
use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, keygen};
use support::tunnel::{entry, local_user};

fn have_servers() -> bool {
    support::require("/usr/sbin/sshd")
        && support::require("ssh-keygen")
        && support::require("ssh-agent")
}

/// Opens the tunnel and checks that data flows through it.
fn tunnel_works(s: &Scratch, env: &[(&str, &str)]) {
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
        env,
    );
    let local = up.listening("pg");
    assert_eq!(
        echo_through(&local, b"through the tunnel"),
        b"through the tunnel"
    );
    assert_eq!(up.interrupt(), 0);
}

fn scratch_for(sshd: &Sshd) -> Scratch {
    let s = Scratch::new();
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    s
}

#[test]
fn keys_from_a_real_ssh_agent() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "agent_key", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let agent = Agent::start(s.path());
    agent.add(&key.private);
    std::fs::remove_file(&key.private).expect("only the agent has the key now");
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, None, "use_agent = true"),
    );
    tunnel_works(
        &s,
        &[("SSH_AUTH_SOCK", agent.socket.to_str().unwrap_or_default())],
    );
}

#[test]
fn an_encrypted_key_with_its_passphrase_from_the_environment() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "enc_key", "ed25519", "correct horse", false);
    sshd.authorize(&key.public_line);
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!(
                "key_file = \"{}\"\nkey_passphrase = \"${{PG_KEY_PASS}}\"",
                key.private.display()
            ),
        ),
    );
    tunnel_works(&s, &[("PG_KEY_PASS", "correct horse")]);

    // Without the passphrase, the report says why the key was not used.
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!("key_file = \"{}\"", key.private.display()),
        ),
    );
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("encrypted, and no key_passphrase is set")
        .expect_stderr("server offered publickey");
}

#[test]
fn a_pem_rsa_key() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "rsa_key", "rsa", "", true);
    let text = std::fs::read_to_string(&key.private).expect("key");
    assert!(
        text.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "ssh-keygen -m PEM wrote PKCS#1"
    );
    sshd.authorize(&key.public_line);
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!("key_file = \"{}\"", key.private.display()),
        ),
    );
    tunnel_works(&s, &[]);
}

#[test]
fn a_user_certificate_signed_by_a_trusted_ca() {
    if !have_servers() {
        return;
    }
    let ca_dir = tempfile::tempdir().expect("ca dir");
    let ca = keygen(ca_dir.path(), "user_ca", "ed25519", "", false);
    let sshd = Sshd::start(&format!("TrustedUserCAKeys {}.pub", ca.private.display()));
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "cert_key", "ed25519", "", false);
    // The key itself is not in authorized_keys: only the certificate lets it in.
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca.private)
        .args(["-I", "warren-test", "-n", &local_user(), "-V", "+1h"])
        .arg(format!("{}.pub", key.private.display()))
        .output()
        .expect("ssh-keygen -s");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = format!("{}-cert.pub", key.private.display());
    // Without the certificate the key is refused ...
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!("key_file = \"{}\"", key.private.display()),
        ),
    );
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("refused");
    // ... and with it, accepted.
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!(
                "key_file = \"{}\"\ncert_file = \"{cert}\"",
                key.private.display()
            ),
        ),
    );
    tunnel_works(&s, &[]);
}

#[test]
fn a_key_not_authorized_reports_the_offered_methods_and_what_was_tried() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "stranger", "ed25519", "", false);
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!("key_file = \"{}\"", key.private.display()),
        ),
    );
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("authentication failed")
        .expect_stderr("server offered publickey")
        .expect_stderr("stranger: refused");
}

/// A private key of the user's own that others may read is ignored, as ssh ignores it (its
/// `sshkey_perm_ok`), with ssh's words; after `chmod 600` both log in. Differential: real ssh
/// and warren on the same key against the same sshd.
#[test]
fn a_key_others_may_read_is_ignored_as_ssh_ignores_it() {
    use std::os::unix::fs::PermissionsExt;
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "id_open", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            None,
            &format!("key_file = \"{}\"", key.private.display()),
        ),
    );
    let ssh = |s: &Scratch| {
        support::sshd::run_ssh(
            s.path(),
            &[
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                &format!(
                    "UserKnownHostsFile={}",
                    s.path().join("known_hosts").display()
                ),
                "-i",
                &key.private.display().to_string(),
                "-p",
                &sshd.port.to_string(),
                &format!("{}@127.0.0.1", local_user()),
                "true",
            ],
        )
    };
    std::fs::set_permissions(&key.private, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (ok, said) = ssh(&s);
    assert!(!ok, "ssh used a 0644 key: {said}");
    assert!(said.contains("are too open"), "{said}");
    s.warren_kh(&["up", "pg"])
        .expect_code(1)
        .expect_stderr("Permissions 0644 for")
        .expect_stderr("are too open")
        .expect_stderr("This private key will be ignored");

    std::fs::set_permissions(&key.private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (ok, said) = ssh(&s);
    assert!(ok, "ssh with the key at 0600: {said}");
    tunnel_works(&s, &[]);
}

/// A tunnel the config binds to a non-loopback address (warren binds loopback otherwise)
/// works, and warren says once who can reach it, naming the setting's line.
#[test]
fn a_non_loopback_bind_is_said_once_with_who_can_reach_it() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = scratch_for(&sshd);
    let key = keygen(s.path(), "id", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let text = entry(
        "pg",
        echo_server(),
        &sshd,
        None,
        &format!("key_file = \"{}\"", key.private.display()),
    )
    .replace(
        "[storage.postgres.pg]\n",
        "[storage.postgres.pg]\nlocal_bind = \"0.0.0.0\"\n",
    );
    s.write("epoch.toml", &text);
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
    assert!(local.starts_with("0.0.0.0:"), "{local}");
    let warning = up.wait_for("warning", |v| {
        v["event"] == "warning"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("is not a loopback address"))
    });
    let m = warning["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("any host that can reach this machine") && m.contains("epoch.toml:"),
        "{m}"
    );
    let port = local.rsplit(':').next().unwrap_or_default();
    assert_eq!(
        echo_through(&format!("127.0.0.1:{port}"), b"still works"),
        b"still works"
    );
    let warnings = up.seen.iter().filter(|v| v["event"] == "warning").count();
    assert_eq!(warnings, 1, "{:#?}", up.seen);
    assert_eq!(up.interrupt(), 0);
}
