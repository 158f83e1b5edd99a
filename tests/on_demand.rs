//! On-demand tunnels through the daemon, against a real sshd and a real PostgreSQL: the
//! listener is there with no SSH connection; the first psql opens the session, which closes
//! after idle_timeout (sshd's side checked) and opens again for the next; fifty clients at
//! once share one session; with the bastion down, psql and the MariaDB client get warren's
//! own error in their protocol, and the failure is notified.

mod support;

use std::time::{Duration, Instant};

use support::Scratch;
use support::postgres::Postgres;
use support::sshd::{Sshd, free_port};
use support::tunnel::{have_servers, local_user, with_key};

/// warren with the scratch home's known_hosts, its own runtime dir and its own settings.
fn warren(s: &Scratch, args: &[&str]) -> support::Run {
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    let run = s.path().join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let cfg = s.path().join("cfg");
    s.warren_env(
        &all,
        &[
            ("XDG_RUNTIME_DIR", &run.display().to_string()),
            ("XDG_CONFIG_HOME", &cfg.display().to_string()),
        ],
    )
}

/// The daemon goes however the test ends.
struct Down<'a>(&'a Scratch);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        warren(self.0, &["down", "--all"]);
    }
}

/// `[storage.ENGINE.NAME]` for 127.0.0.1:`target` on local port `local`, through the sshd on
/// `ssh_port`, on demand with `tunnel_lines` in its ssh_tunnel table.
fn entry(engine: &str, name: &str, target: u16, local: u16, ssh_port: u16, key: &str) -> String {
    format!(
        "[storage.{engine}.{name}]\nhost = \"127.0.0.1\"\nport = {target}\nusername = \"postgres\"\n\n\
         [storage.{engine}.{name}.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {ssh_port}\nuser = \"{}\"\n\
         key_file = \"{key}\"\nlocal_port = {local}\non_demand = true\nidle_timeout = \"3s\"\nconnect_timeout = 5\n\n",
        local_user()
    )
}

fn psql(port: u16) -> std::process::Output {
    std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-tAc", "select 1"])
        .env("PGCONNECT_TIMEOUT", "30")
        .output()
        .expect("psql")
}

/// Polls until `ok` holds, for at most `secs`.
fn wait_until(secs: u64, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ok()
}

fn state(s: &Scratch) -> String {
    let r = warren(s, &["status", "--json"]);
    r.json()[0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_first_client_opens_the_session_and_idleness_closes_it_until_the_next() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    if !have_servers() || !support::require("psql") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let local = free_port();
    s.write(
        "epoch.toml",
        &entry("postgres", "pg", pg.port, local, sshd.port, &key),
    );
    let _down = Down(&s);
    warren(&s, &["up", "--detach", "pg"])
        .expect_code(0)
        .expect_stdout("on demand");
    // Listening, and no SSH connection at all.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sshd.session_pids(),
        Vec::<u32>::new(),
        "no session before a client"
    );
    assert_eq!(state(&s), "on_demand");

    let out = psql(local);
    assert!(
        out.status.success(),
        "the first psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert!(!sshd.session_pids().is_empty(), "the session is open");
    assert_eq!(state(&s), "up");

    // idle_timeout = 3s with no client: the session goes (sshd's side), the listener stays.
    assert!(
        wait_until(20, || sshd.session_pids().is_empty()),
        "the idle session was not closed: {:?}",
        sshd.session_pids()
    );
    assert_eq!(state(&s), "on_demand");
    let out = psql(local);
    assert!(
        out.status.success(),
        "psql after the idle close: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!sshd.session_pids().is_empty(), "opened again");
    // The audit log has each opening by a client, and the idle close between them.
    let audit = std::fs::read_to_string(s.path().join(".local/state/warren/audit.jsonl"))
        .expect("the audit log");
    let events: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == "pg")
        .filter_map(|v| v["event"].as_str().map(str::to_string))
        .filter(|e| e == "on_demand_open" || e == "session_closed")
        .collect();
    assert_eq!(
        events,
        ["on_demand_open", "session_closed", "on_demand_open"],
        "{audit}"
    );
}

#[test]
fn fifty_first_clients_at_once_share_one_new_session() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("LogLevel INFO");
    let (s, key) = with_key(&sshd);
    let echo = support::net::echo_server();
    let local = free_port();
    s.write(
        "epoch.toml",
        &entry("postgres", "echo", echo, local, sshd.port, &key),
    );
    let _down = Down(&s);
    warren(&s, &["up", "--detach", "echo"]).expect_code(0);
    let clients: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let data = format!("client {i} ").repeat(100).into_bytes();
                let back = support::net::echo_through(&format!("127.0.0.1:{local}"), &data);
                (data, back)
            })
        })
        .collect();
    for c in clients {
        let (sent, back) = c.join().expect("client");
        assert_eq!(back, sent, "each client's bytes come back");
    }
    let log = sshd.log_text();
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "one SSH session for fifty clients:\n{log}"
    );
}

#[test]
fn with_the_bastion_down_clients_get_warrens_error_in_their_protocol_and_a_notice() {
    if !have_servers() || !support::require("psql") || !support::require("mariadb") {
        return;
    }
    // The bastion's port has nobody listening.
    let (s, key) = {
        let s = Scratch::new();
        let key = support::sshd::keygen(s.path(), "id_ed25519", "ed25519", "", false);
        s.write("known_hosts", "");
        (s, key.private.display().to_string())
    };
    let bastion = free_port();
    let (pg_local, my_local) = (free_port(), free_port());
    s.write(
        "epoch.toml",
        &(entry("postgres", "pg", 5432, pg_local, bastion, &key)
            + &entry("mysql", "my", 3306, my_local, bastion, &key)),
    );
    let notices = s.path().join("notices");
    s.write(
        "cfg/warren/config.toml",
        &format!(
            "[notifications]\non = [\"failed\"]\ncommand = 'echo \"$WARREN_EVENT $WARREN_TUNNEL: $WARREN_MESSAGE\" >> {}'\n",
            notices.display()
        ),
    );
    let _down = Down(&s);
    warren(&s, &["up", "--detach", "pg", "my"]).expect_code(0);

    let out = psql(pg_local);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("warren: the on-demand SSH session could not be opened")
            && err.contains("refused"),
        "psql shows warren's reason: {err}"
    );

    let out = std::process::Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", &my_local.to_string(), "-u", "x"])
        .args(["--connect-timeout=30", "-e", "select 1"])
        .output()
        .expect("mariadb");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("1105")
            && err.contains("warren: the on-demand SSH session could not be opened"),
        "the MariaDB client shows warren's reason: {err}"
    );

    assert!(
        wait_until(10, || {
            std::fs::read_to_string(&notices)
                .is_ok_and(|t| t.contains("failed pg:") && t.contains("failed my:"))
        }),
        "notices: {:?}",
        std::fs::read_to_string(&notices)
    );
    // Still listening for the next client, which tries again.
    let r = warren(&s, &["status", "--json"]);
    for t in r.json().as_array().expect("tunnels") {
        assert_eq!(t["state"], "on_demand", "{t}");
        assert!(
            t["error"].as_str().is_some_and(|e| e.contains("refused")),
            "{t}"
        );
    }
}
