//! Short-lived SSH certificates from a `certificate_command`, against a real sshd that trusts
//! a CA the test makes (`TrustedUserCAKeys`) and authorizes no key: the command (a script that
//! signs the key it is given with `ssh-keygen -s`, counting its runs) is run before the first
//! connect, and again when the bastion comes back after the certificate expired; a command
//! that fails is diagnosed at doctor's `certificate` step with its exit status and stderr; a
//! certificate for another principal is refused before anything is dialled; an untrusted
//! epoch.toml runs no command.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Scratch;
use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, keygen};
use support::tunnel::{entry, have_servers, local_user};

const ARGS: [&str; 4] = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];

/// A bastion that trusts the test's CA, and a scratch home with a key it does not authorize,
/// the CA, the bastion's host key in known_hosts and `sign`, a certificate_command that
/// signs for `principal` with `validity` and appends a line to `runs` each time it runs.
fn bastion(principal: &str, validity: &str, overrides: &str) -> (Sshd, Scratch, String) {
    let s = Scratch::new();
    let ca = keygen(s.path(), "ca", "ed25519", "", false);
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    let sshd = Sshd::start(&format!(
        "{overrides}\nTrustedUserCAKeys {}.pub",
        ca.private.display()
    ));
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let d = s.path().display();
    s.write(
        "sign",
        &format!(
            "#!/bin/sh\n# signs the public key in $1 (%f) and prints the certificate\nset -e\necho run >> {d}/runs\nwork=$(mktemp -d)\ncp \"$1\" \"$work/key.pub\"\nssh-keygen -s {d}/ca -I test -n {principal} -V {validity} \"$work/key.pub\"\ncat \"$work/key-cert.pub\"\nrm -rf \"$work\"\n"
        ),
    );
    (sshd, s, key.private.display().to_string())
}

fn runs(s: &Scratch) -> usize {
    std::fs::read_to_string(s.path().join("runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// An epoch.toml entry `pg` to an echo server through `sshd`, with `sign` as its
/// certificate_command (`Scratch::write` trusts it, as `warren trust-config` would).
fn trusted_entry(s: &Scratch, sshd: &Sshd, key: &str, echo: u16) {
    let text = entry(
        "pg",
        echo,
        sshd,
        Some(key),
        &format!(
            "certificate_command = \"sh {}/sign %f\"\nreconnect_delay = 0.2\nconnect_timeout = 5",
            s.path().display()
        ),
    );
    s.write("epoch.toml", &text);
}

fn show(s: &Scratch) -> Value {
    let r = s.warren_kh(&["show", "pg", "--json"]);
    r.expect_code(0);
    r.json()
}

fn up_args(name: &str) -> Vec<&str> {
    let mut v: Vec<&str> = ARGS.to_vec();
    v.extend(["up", name, "--json"]);
    v
}

#[test]
fn the_tunnel_opens_and_a_restart_after_expiry_reconnects_with_a_fresh_certificate() {
    if !have_servers() {
        return;
    }
    let (mut sshd, s, key) = bastion(&local_user(), "+5s", "");
    let echo = echo_server();
    trusted_entry(&s, &sshd, &key, echo);
    let mut up = Up::start(s.path(), &up_args("pg"));
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"signed"), b"signed");
    assert_eq!(runs(&s), 1, "the command ran once, before the connect");
    let cert = Path::new(&format!("{key}-cert.pub")).to_path_buf();
    let first = std::fs::read_to_string(&cert).expect("the printed certificate is kept");
    assert!(
        first.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{first}"
    );

    // show tells the certificate and its expiry.
    let v = show(&s);
    let c = &v["certificates"][0];
    assert_eq!(c["path"], cert.display().to_string(), "{v:#}");
    let left = c["expires_in_secs"].as_i64().expect("expires_in_secs");
    assert!((-1..=5).contains(&left), "{v:#}");
    let text = s.warren_kh(&["show", "pg"]);
    text.expect_stdout("certificate_command")
        .expect_stdout("valid until");

    // Wait until it has expired (sshd would refuse it now), then bring the bastion back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while show(&s)["certificates"][0]["expires_in_secs"]
        .as_i64()
        .is_some_and(|l| l > 0)
    {
        assert!(Instant::now() < deadline, "the certificate never expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    sshd.restart();
    up.seen.clear();
    up.wait_for("up again", |v| v["event"] == "state" && v["state"] == "up");
    assert_eq!(
        echo_through(&local, b"renewed"),
        b"renewed",
        "data flows again through the same port"
    );
    assert!(runs(&s) >= 2, "the command ran again: {} runs", runs(&s));
    let second = std::fs::read_to_string(&cert).expect("certificate");
    assert_ne!(
        first, second,
        "a fresh certificate replaced the expired one"
    );
    assert_eq!(up.interrupt(), 0);
}

/// After a drop, a certificate_command that does not finish (it waits for a login in a
/// browser) makes the tunnel wait for a person: it is not run again and again.
#[test]
fn a_reconnect_whose_certificate_command_waits_for_a_login_waits_for_you() {
    if !have_servers() {
        return;
    }
    let (mut sshd, s, key) = bastion(&local_user(), "+5s", "");
    trusted_entry(&s, &sshd, &key, echo_server());
    // From its second run on, the command waits (as one waiting for an SSO login would).
    let sign = std::fs::read_to_string(s.path().join("sign")).expect("sign");
    let d = s.path().display();
    s.write(
        "sign",
        &sign.replacen(
            "set -e\n",
            &format!("set -e\nif [ -s {d}/runs ]; then echo run >> {d}/runs; exec sleep 120; fi\n"),
            1,
        ),
    );
    let mut up = Up::start(s.path(), &up_args("pg"));
    let local = up.listening("pg");
    assert_eq!(echo_through(&local, b"signed"), b"signed");
    assert_eq!(runs(&s), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while show(&s)["certificates"][0]["expires_in_secs"]
        .as_i64()
        .is_some_and(|l| l > 0)
    {
        assert!(Instant::now() < deadline, "the certificate never expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    sshd.restart();
    up.seen.clear();
    // The command's own bound is 30 s (connect_timeout, at least 30 s).
    let v = up.wait_for_within("needs you", Duration::from_secs(60), |v| {
        v["event"] == "state" && v["state"] == "needs_you"
    });
    assert_eq!(v["asking"], false, "{v}");
    let what = v["what"].as_str().unwrap_or_default();
    assert!(
        what.contains("certificate_command did not finish within 30s") && what.contains("log in"),
        "{v}"
    );
    assert_eq!(runs(&s), 2, "run once for the reconnect");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(runs(&s), 2, "and not again by itself");
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_certificate_for_another_principal_is_refused_before_connecting() {
    if !have_servers() {
        return;
    }
    let (sshd, s, key) = bastion("deploy", "+5m", "LogLevel VERBOSE");
    trusted_entry(&s, &sshd, &key, echo_server());
    let user = local_user();
    // sshd logs each connection (its readiness check was one): none more may come.
    let connections = || sshd.log_text().matches("Connection from").count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while connections() == 0 {
        assert!(Instant::now() < deadline, "{}", sshd.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = connections();
    let r = s.warren_kh(&["up", "pg"]);
    r.expect_code(1)
        .expect_stderr(&format!(
            "certificate for principal `deploy` but User is `{user}`"
        ))
        .expect_stderr("certificate_command `sh ")
        .expect_stderr(&format!("{key}-cert.pub"));
    assert_eq!(runs(&s), 1);
    assert_eq!(
        connections(),
        before,
        "nothing was dialled: {}",
        sshd.log_text()
    );
    // doctor stops at the certificate step with the same reason and the fix.
    let r = s.warren_kh(&["doctor", "pg", "--json"]);
    r.expect_code(1);
    let v = r.json();
    let step = failed(&v);
    assert_eq!(step["id"], "certificate", "{v:#}");
    let detail = step["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("principal `deploy`"), "{detail}");
    let hint = step["hint"].as_str().unwrap_or_default();
    assert!(hint.contains(&format!("principal `{user}`")), "{hint}");
    assert_eq!(connections(), before, "doctor did not dial either");
}

/// A bastion that does not trust the CA (sshd takes the first TrustedUserCAKeys, here
/// none): the certificate step passes (valid, the right principal), the server refuses the
/// certificate, and the auth step's hint names the CA it does not know, by fingerprint.
#[test]
fn a_bastion_that_does_not_know_the_ca_is_named_with_the_cas_fingerprint() {
    if !have_servers() {
        return;
    }
    let (sshd, s, key) = bastion(&local_user(), "+5m", "TrustedUserCAKeys none");
    trusted_entry(&s, &sshd, &key, echo_server());
    let r = s.warren_kh(&["doctor", "pg", "--json"]);
    r.expect_code(1);
    let v = r.json();
    let steps = v["steps"].as_array().cloned().unwrap_or_default();
    let cert = steps
        .iter()
        .find(|st| st["id"] == "certificate")
        .cloned()
        .unwrap_or_default();
    assert_eq!(cert["status"], "pass", "{v:#}");
    let step = failed(&v);
    assert_eq!(step["id"], "auth", "{v:#}");
    let ca = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(s.path().join("ca.pub"))
        .output()
        .expect("ssh-keygen -l");
    let ca = String::from_utf8_lossy(&ca.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(ca.starts_with("SHA256:"), "{ca}");
    let hint = step["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains(&format!("it does not trust the CA that signed it ({ca})"))
            && hint.contains("TrustedUserCAKeys"),
        "{hint}"
    );
}

fn failed(v: &Value) -> Value {
    v["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["status"] == "fail"))
        .cloned()
        .unwrap_or_else(|| panic!("no failed step in {v:#}"))
}

#[test]
fn a_failing_command_of_an_ssh_config_host_is_diagnosed_with_its_status_and_stderr() {
    if !have_servers() {
        return;
    }
    let (sshd, s, key) = bastion(&local_user(), "+5m", "");
    s.write(
        "fail",
        "#!/bin/sh\necho 'Error: permission denied: role \"dev\" may not sign' >&2\nexit 3\n",
    );
    let d = s.path().display();
    s.write(
        "ssh_config",
        &format!(
            "Host bastion\n    # warren: certificate_command = sh {d}/fail %f\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    IdentitiesOnly yes\n    IdentityAgent none\n    UserKnownHostsFile {d}/known_hosts\n",
            sshd.port,
            local_user()
        ),
    );
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--config",
        "/dev/null",
        "doctor",
        "bastion",
        "--json",
    ]);
    r.expect_code(1);
    let v = r.json();
    let step = failed(&v);
    assert_eq!(step["id"], "certificate", "{v:#}");
    let detail = step["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("exited with status 3"), "{detail}");
    assert!(
        detail.contains("Error: permission denied: role \"dev\" may not sign"),
        "{detail}"
    );
    assert!(
        step["hint"]
            .as_str()
            .is_some_and(|h| h.contains("run the command by hand")),
        "{v:#}"
    );
    let ids: Vec<&str> = v["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids[..2], ["config", "certificate"], "{ids:?}");
    assert!(
        v["steps"]
            .as_array()
            .is_some_and(|a| a.iter().skip(2).all(|s| s["status"] == "skip")),
        "nothing is dialled after it: {v:#}"
    );

    // A working command: the step passes and says what it gave.
    s.write(
        "ssh_config",
        &std::fs::read_to_string(s.path().join("ssh_config"))
            .expect("ssh_config")
            .replace("/fail %f", "/sign %f"),
    );
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--config",
        "/dev/null",
        "doctor",
        "bastion",
        "--json",
    ]);
    let v = r.json();
    let step = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "certificate"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(step["status"], "pass", "{v:#}");
    let detail = step["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("principals {}", local_user()))
            && detail.contains("the command ran (exit 0)"),
        "{detail}"
    );
    let auth = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "auth"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(auth["status"], "pass", "the certificate logs in: {v:#}");
}

#[test]
fn an_untrusted_epoch_toml_runs_no_certificate_command() {
    if !have_servers() {
        return;
    }
    let (sshd, s, key) = bastion(&local_user(), "+5m", "");
    // Written directly: `Scratch::write` trusts the epoch.toml it writes.
    std::fs::write(
        s.path().join("epoch.toml"),
        entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key),
            &format!(
                "certificate_command = \"sh {}/sign %f\"",
                s.path().display()
            ),
        ),
    )
    .expect("epoch.toml");
    let r = s.warren_kh(&["up", "pg"]);
    r.expect_code(1)
        .expect_stdout("certificate_command runs a command")
        .expect_stdout("warren trust-config");
    assert_eq!(runs(&s), 0, "the command did not run");

    // Trusted, but under --no-exec: still not run, and said so with its line.
    let text = std::fs::read_to_string(s.path().join("epoch.toml")).expect("epoch.toml");
    s.trust_file(&s.path().join("epoch.toml"), text.as_bytes());
    let r = s.warren_kh(&["--no-exec", "up", "pg"]);
    r.expect_code(1)
        .expect_stdout("certificate_command at ")
        .expect_stdout("epoch.toml:10 is not run");
    assert_eq!(runs(&s), 0, "the command did not run");
}

#[test]
fn status_json_tells_when_the_certificate_expires() {
    if !have_servers() {
        return;
    }
    let (sshd, s, key) = bastion(&local_user(), "+5m", "");
    trusted_entry(&s, &sshd, &key, echo_server());
    let h = support::daemon::Home::new(s);
    h.warren(&["up", "--detach", "pg"]).expect_code(0);
    let v = h.status();
    assert_eq!(v[0]["state"], "up", "{v:#}");
    let left = v[0]["certificate_expires_in_secs"]
        .as_i64()
        .unwrap_or_else(|| panic!("no certificate_expires_in_secs in {v:#}"));
    assert!((200..=300).contains(&left), "{v:#}");
    assert_eq!(runs(&h.s), 1);
    // The log of the tunnel has what the command said on stderr (ssh-keygen's line).
    let log = v[0]["log"].to_string();
    assert!(
        log.contains("certificate_command (hop 0): Signed user key"),
        "{v:#}"
    );
}

#[test]
fn the_key_is_read_in_ssh_tunnel_and_jump_host_tables_and_a_bad_value_is_an_error() {
    let s = Scratch::new();
    // Only the .pub of the key matters until the command runs.
    s.write("id.pub", "ssh-ed25519 AAAA test\n");
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.pg]\nhost = \"db\"\n\n[storage.postgres.pg.ssh_tunnel]\nhost = \"bastion\"\ncertificate_command = \"sign-bastion %f\"\nkey_file = \"{}/id\"\n\n[storage.postgres.pg.ssh_tunnel.jump_host]\nhost = \"jump\"\ncertificate_command = \"sign-jump %r\"\n\n[storage.postgres.bad]\nhost = \"db\"\n\n[storage.postgres.bad.ssh_tunnel]\nhost = \"bastion\"\ncertificate_command = 3\n",
            s.path().display()
        ),
    );
    let r = s.warren_kh(&["show", "pg", "--json"]);
    r.expect_code(0);
    let v = r.json();
    let hops = &v["hops"];
    assert_eq!(hops[0]["name"], "jump", "{v:#}");
    assert_eq!(hops[0]["certificate_command"]["value"], "sign-jump %r");
    assert!(
        hops[0]["certificate_command"]["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("epoch.toml:11")),
        "{v:#}"
    );
    assert_eq!(hops[1]["certificate_command"]["value"], "sign-bastion %f");
    // show names where the certificate will be (none yet).
    s.warren_kh(&["show", "pg"])
        .expect_stdout("certificate_command")
        .expect_stdout("none yet, the next connect runs the command");
    let r = s.warren_kh(&["show", "bad"]);
    r.expect_code(2)
        .expect_stderr("epoch.toml:18")
        .expect_stderr("certificate_command is not a command")
        .expect_stderr("vault write");
}

/// The TUI's details pane counts the certificate down while the tunnel is open.
#[test]
fn the_tui_counts_the_certificate_down() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let (sshd, s, key) = bastion(&local_user(), "+10m", "");
    trusted_entry(&s, &sshd, &key, echo_server());
    let t = support::tmux::Tmux::warren(s.path(), "", &ARGS.join(" "));
    t.wait_for("connections");
    t.keys(&["Enter"]);
    // "cert       expires in 9m59s": the seconds left, read off the screen.
    let left = |screen: &str| -> Option<u64> {
        let line = screen
            .lines()
            .find(|l| l.contains("cert ") && l.contains("expires in"))?;
        let after = line.split("expires in ").nth(1)?;
        let word = after.split_whitespace().next()?;
        let (m, rest) = word.split_once('m')?;
        let secs = rest
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .trim_end_matches('s');
        Some(m.parse::<u64>().ok()? * 60 + secs.parse::<u64>().ok()?)
    };
    let first = t.wait_until("the certificate's countdown", |s| left(s).is_some());
    let first = left(&first).expect("seconds left");
    assert!((540..=600).contains(&first), "{first}");
    let later = t.wait_until("the countdown to move", |s| {
        left(s).is_some_and(|l| l + 2 <= first)
    });
    assert!(left(&later).is_some_and(|l| l < first), "{later}");
    t.quit_closing_tunnels();
}
