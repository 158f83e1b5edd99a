//! The audit log, against a real sshd: a tunnel opened and closed in the TUI (tmux) is there
//! with the TUI as the one who asked, its client connection with the bytes it carried; a
//! `warren up --detach` through the daemon is there with the client's uid and pid, and so
//! is the host key that accept-new recorded on the first connection, the close that
//! `warren down` asked for, and a changed key refused with the failure it caused; a
//! foreground `warren up` is there as the CLI, and its time limit as the reason it closed; `warren logs --audit` reads it (aligned, or `--json`). And no
//! password or passphrase of a connection ever reaches it (a property test).

mod support;

use std::os::unix::fs::PermissionsExt;

use support::net::{echo_server, echo_through};
use support::sshd::{Sshd, free_port};
use support::tmux::Tmux;
use support::tunnel::{entry, have_servers, local_user, unknown_host, with_key};

/// The records of `warren logs --audit --json` run with these variables.
fn records(s: &support::Scratch, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let r = s.warren_env(&["logs", "--audit", "--json"], env);
    r.expect_code(0);
    r.stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The first record of `event` about `name`.
fn find<'a>(
    recs: &'a [serde_json::Value],
    event: &str,
    name: &str,
) -> Option<&'a serde_json::Value> {
    recs.iter()
        .find(|r| r["event"] == event && r["name"] == name)
}

fn own_uid() -> u64 {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

#[test]
fn a_tunnel_opened_and_closed_in_the_tui_is_in_the_audit_log_with_its_connection() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let local = free_port();
    s.write(
        "ssh_config",
        &format!(
            "Host db\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n",
            sshd.port,
            local_user()
        ),
    );
    let state = s.path().join("state").display().to_string();
    let env = [("XDG_STATE_HOME", state.as_str())];
    s.warren_env(&["logs", "--audit"], &env)
        .expect_code(0)
        .expect_stderr("no audit log yet");

    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts",
    );
    t.wait_for("connections");
    t.keys(&["Enter"]);
    t.wait_until("db up", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("db"))
    });
    let data = b"seventeen bytes!!";
    assert_eq!(echo_through(&format!("127.0.0.1:{local}"), data), data);
    // The connection's close is recorded once the tunnel has seen it end.
    let path = s.path().join("state/warren/audit.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&path)
        .unwrap_or_default()
        .contains("client_closed")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no client_closed record in {}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Enter again closes it.
    t.keys(&["Enter"]);
    t.wait_until("db down", |s| {
        s.lines()
            .any(|l| l.contains("db") && (l.contains("down") || l.contains("○")))
    });
    t.keys(&["q"]);
    t.wait_for("EXITED 0");

    let mode = std::fs::metadata(&path)
        .expect("the audit log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    let recs = records(&s, &env);
    let asked = find(&recs, "open_requested", "db").expect("open_requested");
    assert_eq!(asked["by"]["client"], "tui", "{asked}");
    assert_eq!(asked["uid"], own_uid());
    let auth = find(&recs, "authenticated", "db").expect("authenticated");
    assert_eq!(auth["user"], local_user());
    assert!(
        auth["method"]
            .as_str()
            .unwrap_or_default()
            .contains("id_ed25519"),
        "the key that logged in: {auth}"
    );
    assert!(find(&recs, "up", "db").is_some(), "{recs:#?}");
    let closed = find(&recs, "client_closed", "db").expect("client_closed");
    assert_eq!(closed["bytes_in"], data.len());
    assert_eq!(closed["bytes_out"], data.len());
    assert_eq!(closed["target"], format!("127.0.0.1:{echo}"));
    let close = find(&recs, "close_requested", "db").expect("close_requested");
    assert_eq!(close["by"]["client"], "tui");
    let end = find(&recs, "closed", "db").expect("closed");
    assert_eq!(end["why"], "asked");
    // In order: asked, up, closed.
    let at = |e: &str| recs.iter().position(|r| r["event"] == e);
    assert!(at("open_requested") < at("up") && at("up") < at("closed"));

    // The human form: one line a record, its columns aligned.
    let r = s.warren_env(&["logs", "--audit"], &env);
    r.expect_code(0);
    let text = r.stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), recs.len(), "{text}");
    let up = lines
        .iter()
        .find(|l| l.contains(" up "))
        .expect("an up line");
    let opened = lines
        .iter()
        .find(|l| l.contains("open_requested"))
        .expect("an open_requested line");
    assert!(opened.contains("by tui"), "{opened}");
    assert_eq!(up.find(" db"), opened.find(" db"), "aligned:\n{text}");
}

#[test]
fn up_through_the_daemon_records_the_clients_uid_the_accept_new_host_key_and_the_close() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("known_hosts", "");
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo,
            &sshd,
            Some(&key),
            "strict_host_key_checking = \"accept-new\"\n",
        ),
    );
    let run = s.path().join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let run = run.display().to_string();
    let env = [("XDG_RUNTIME_DIR", run.as_str())];
    let warren = |args: &[&str]| {
        let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
        all.extend_from_slice(args);
        s.warren_env(&all, &env)
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> support::Run);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "--all"]);
        }
    }
    let _down = Down(&warren);
    warren(&["up", "--detach", "pg"])
        .expect_code(0)
        .expect_stdout("up");
    assert!(
        std::fs::read_to_string(s.path().join("known_hosts"))
            .unwrap_or_default()
            .contains("ssh-ed25519"),
        "accept-new recorded the key"
    );
    warren(&["down", "pg"]).expect_code(0);

    let recs = records(&s, &env);
    let asked = find(&recs, "open_requested", "pg").expect("open_requested");
    assert_eq!(asked["by"]["client"], "daemon_client", "{asked}");
    assert_eq!(asked["by"]["uid"], own_uid(), "{asked}");
    assert!(
        asked["by"]["pid"].as_u64().is_some_and(|p| p > 0),
        "{asked}"
    );
    // The daemon wrote it, not the client.
    assert_ne!(asked["pid"], asked["by"]["pid"], "{asked}");
    let hk = find(&recs, "host_key", "pg").expect("host_key");
    assert_eq!(hk["decision"], "recorded", "{hk}");
    assert_eq!(hk["fingerprint"], sshd.fingerprint(), "{hk}");
    assert!(find(&recs, "up", "pg").is_some(), "{recs:#?}");
    let close = find(&recs, "close_requested", "pg").expect("close_requested");
    assert_eq!(close["by"]["client"], "daemon_client");
    assert_eq!(close["by"]["uid"], own_uid());
    // `down` is another client than `up`.
    assert_ne!(close["by"]["pid"], asked["by"]["pid"]);
    assert_eq!(find(&recs, "closed", "pg").expect("closed")["why"], "asked");

    // The bastion's key changes: the next open is refused, and that is recorded too.
    sshd.restart_with_a_new_host_key();
    let r = warren(&["up", "--detach", "pg"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    let recs = records(&s, &env);
    let hk = recs
        .iter()
        .rfind(|r| r["event"] == "host_key")
        .expect("a second host_key record");
    assert_eq!(hk["decision"], "changed_refused", "{hk}");
    assert_eq!(hk["fingerprint"], sshd.fingerprint(), "{hk}");
    let end = recs.last().expect("records");
    assert_eq!(end["event"], "closed", "{end}");
    assert_eq!(end["why"], "failed", "{end}");
    assert!(
        end["error"]
            .as_str()
            .unwrap_or_default()
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{end}"
    );
}

#[test]
fn host_keys_accepted_once_and_rejected_in_the_tui_are_recorded_as_such() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let s = unknown_host(&sshd, free_port());
    let state = s.path().join("state").display().to_string();
    let env = [("XDG_STATE_HOME", state.as_str())];
    let tui = || {
        let t = Tmux::warren(s.path(), "", "--ssh-config ssh_config");
        t.wait_for("connections");
        t.keys(&["Enter"]);
        t
    };
    let t = tui();
    t.answer_host_key("o");
    t.wait_until("db up", |s| {
        s.lines().any(|l| l.contains("● up") && l.contains(" db "))
    });
    t.quit_closing_tunnels();
    drop(t);
    let t = tui();
    t.answer_host_key("n");
    t.wait_until("db failed", |s| s.contains("host key rejected"));
    t.keys(&["q"]);
    t.wait_for("EXITED 0");

    let recs = records(&s, &env);
    let decisions: Vec<&serde_json::Value> = recs
        .iter()
        .filter(|r| r["event"] == "host_key")
        .map(|r| &r["decision"])
        .collect();
    assert_eq!(decisions, ["accepted_once", "rejected"], "{recs:#?}");
    let hk = find(&recs, "host_key", "db").expect("host_key");
    assert_eq!(hk["fingerprint"], sshd.fingerprint(), "{hk}");
    assert_eq!(hk["key_type"], "ED25519", "{hk}");
    // Nothing was written to known_hosts.
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).unwrap_or_default(),
        ""
    );
    let failed = recs.last().expect("records");
    assert_eq!(
        (&failed["event"], &failed["why"]),
        (&"closed".into(), &"failed".into())
    );
}

#[test]
fn a_foreground_up_is_recorded_as_the_cli_and_its_time_limit_as_the_close() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, Some(&key), ""),
    );
    // It ends by itself at its limit.
    s.warren_kh(&["up", "pg", "--for", "1s", "--json"])
        .expect_code(0);
    let recs = records(&s, &[]);
    let asked = find(&recs, "open_requested", "pg").expect("open_requested");
    assert_eq!(asked["by"]["client"], "cli", "{asked}");
    assert_eq!(asked["by"]["command"], "up", "{asked}");
    assert!(find(&recs, "up", "pg").is_some(), "{recs:#?}");
    let end = find(&recs, "closed", "pg").expect("closed");
    assert_eq!(end["why"], "limit", "{end}");
    assert!(
        end["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("time limit (1s)"),
        "{end}"
    );
    // Nothing asked it to close.
    assert!(find(&recs, "close_requested", "pg").is_none(), "{recs:#?}");
}

mod secrets {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use proptest::prelude::*;
    use warren::audit::{By, CliCommand, Closed, Entry, HostKeyDecision, Kind};
    use warren::config::epoch;
    use warren::config::ssh_config::{FileKind, SshConfig};
    use warren::config::{Connection, Context};

    /// A connection whose config holds a password, a passphrase and a password_file with a
    /// third secret, reaching a port where nothing listens.
    fn connection(home: &Path, password: &str, passphrase: &str, in_file: &str) -> Connection {
        let file = home.join("pw");
        std::fs::write(&file, in_file).expect("password file");
        let text = format!(
            "[storage.postgres.orders]\nhost = \"127.0.0.1\"\nport = 5432\nusername = \"reporter\"\npassword = {password:?}\npassword_file = {:?}\n\n[storage.postgres.orders.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"ops\"\nkey_passphrase = {passphrase:?}\nconnect_timeout = 2\n",
            file.display(),
            super::free_port(),
        );
        let ctx = Arc::new(Context::new(
            PathBuf::from(home),
            "tester",
            Default::default(),
        ));
        let ssh = SshConfig::from_texts(
            Arc::clone(&ctx),
            &[(Path::new("/dev/null"), "", FileKind::User)],
        );
        let f = epoch::load(&home.join("epoch.toml"), &text, &ctx, &ssh);
        assert_eq!(f.connections.len(), 1, "{:#?}", f.problems);
        f.connections.into_iter().next().expect("one")
    }

    /// Every kind of record, made from the connection as warren makes them.
    fn every_kind(c: &Connection) -> Vec<Entry> {
        let name = &c.display_name;
        let hop = &c.hops[0];
        let target = c.target().unwrap_or_default();
        let kinds = vec![
            Kind::OpenRequested { by: By::Tui },
            Kind::OpenRequested {
                by: By::Cli {
                    command: CliCommand::Up,
                },
            },
            Kind::CloseRequested {
                by: By::DaemonClient {
                    pid: Some(7),
                    uid: 1000,
                },
            },
            Kind::OnDemandOpen {
                peer: "127.0.0.1:50000".into(),
            },
            Kind::SessionClosed {
                reason: "no client connection for 10m (idle_timeout)".into(),
            },
            Kind::ClientFailed {
                reason: format!("the bastion could not open a channel to {target}"),
            },
            Kind::Closed {
                why: Closed::Limit {
                    reason: "its time limit (1h) was reached".into(),
                },
            },
            Kind::authenticated(0, hop, Some("publickey")),
            Kind::authenticated(0, hop, None),
            Kind::Up,
            Kind::Closed { why: Closed::Asked },
            Kind::HostKey {
                host: hop.host.value.clone(),
                key_type: "ED25519".into(),
                fingerprint: "SHA256:x".into(),
                decision: HostKeyDecision::Recorded,
            },
            Kind::ClientOpened {
                peer: "127.0.0.1:50000".into(),
                target: target.clone(),
            },
            Kind::ClientClosed {
                peer: "127.0.0.1:50000".into(),
                target,
                bytes_in: 1,
                bytes_out: 2,
            },
        ];
        kinds.into_iter().map(|k| Entry::new(name, k)).collect()
    }

    static LOG_HOME: std::sync::LazyLock<tempfile::TempDir> =
        std::sync::LazyLock::new(|| tempfile::tempdir().expect("the log's home"));

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn no_password_or_passphrase_reaches_the_audit_log(
            password in "[A-Za-z0-9!#%&*+,.:;<=>?@^_~ -]{10,40}",
            passphrase in "[A-Za-z0-9!#%&*+,.:;<=>?@^_~ -]{10,40}",
            in_file in "[A-Za-z0-9]{12,30}",
        ) {
            let home = tempfile::tempdir().expect("home");
            let c = connection(home.path(), &password, &passphrase, &in_file);
            // One log for the whole process (installed once), in a home of its own.
            let ctx = Context::new(LOG_HOME.path().to_path_buf(), "tester", Default::default());
            warren::audit::install(&ctx);
            let log = warren::audit::log().expect("installed");
            let closed = |text: &str| text.matches("\"event\":\"closed\"").count();
            let before = closed(&std::fs::read_to_string(log.path()).unwrap_or_default());
            // What the engine itself writes: the open, its failure (nothing listens there).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let status = rt.block_on(async {
                let engine = warren::engine::Engine::start();
                let s = engine.open(c.clone()).await;
                engine.shutdown().await;
                s
            });
            prop_assert!(
                matches!(status.map(|s| s.state), Some(warren::engine::TunnelState::Failed { .. })),
                "the tunnel to a closed port failed"
            );
            for e in every_kind(&c) {
                log.record(e);
            }
            let written = std::fs::read_to_string(log.path()).unwrap_or_default();
            prop_assert!(closed(&written) > before + 1, "the failure and the record made here:\n{written}");
            for secret in [&password, &passphrase, &in_file] {
                // JSON escapes nothing in these alphabets: a secret would appear as it is.
                prop_assert!(!written.contains(secret.as_str()), "{secret:?} in:\n{written}");
            }
        }
    }
}
