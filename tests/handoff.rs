//! The tunnel handed to the database client, against a real PostgreSQL behind a real sshd:
//! `warren exec` (psql through it, $DATABASE_URL, the exit code, the port closed after),
//! `warren url` in every form given to the real client, and `warren connect` in a terminal;
//! and the health of the database behind a tunnel the daemon holds, as PostgreSQL stops and
//! starts again.

mod support;

use support::Scratch;
use support::postgres::Postgres;
use support::sshd::Sshd;
use support::tmux::Tmux;
use support::tunnel::{entry, have_servers, with_key};

const PASSWORD: &str = "s3cret pw";

/// A bastion and an entry `pg` for the PostgreSQL on `port`, as `postgres`; the daemon runs
/// in the scratch dir's own runtime dir.
fn setup(pg: &Postgres, extra: &str) -> Option<(Sshd, Scratch)> {
    if !have_servers() || !support::require("psql") {
        return None;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write("pw", &format!("{PASSWORD}\n"));
    let text = entry("pg", pg.port, &sshd, Some(&key), "").replace(
        "[storage.postgres.pg]\n",
        &format!(
            "[storage.postgres.pg]\nusername = \"postgres\"\ndatabase = \"postgres\"\n{extra}"
        ),
    );
    s.write("epoch.toml", &text);
    std::fs::create_dir_all(s.path().join("run")).expect("run");
    Some((sshd, s))
}

fn warren(s: &Scratch, args: &[&str]) -> support::Run {
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    let run = format!("{}/run", s.path().display());
    s.warren_env(
        &all,
        &[("XDG_RUNTIME_DIR", &run), ("PGCONNECT_TIMEOUT", "5")],
    )
}

#[test]
fn exec_runs_psql_through_the_tunnel_with_its_exit_code_and_closes_it() {
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "") else {
        return;
    };
    warren(&s, &["exec", "pg", "--", "psql", "-tAc", "select 40 + 2"])
        .expect_code(0)
        .expect_stdout("42");
    warren(
        &s,
        &[
            "exec",
            "pg",
            "--",
            "sh",
            "-c",
            "psql \"$DATABASE_URL\" -tAc 'select 6 * 7'",
        ],
    )
    .expect_code(0)
    .expect_stdout("42");
    // A failing query: exec exits with psql's own code (as psql gives it directly).
    let direct = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-tAc", "select nope"])
        .output()
        .expect("psql");
    let want = direct.status.code().unwrap_or(-1);
    assert_ne!(want, 0);
    warren(&s, &["exec", "pg", "--", "psql", "-tAc", "select nope"]).expect_code(want);
    // The tunnel lives as long as the command, and no longer.
    let r = warren(
        &s,
        &[
            "exec",
            "pg",
            "--",
            "sh",
            "-c",
            "echo $WARREN_HOST:$WARREN_PORT",
        ],
    );
    r.expect_code(0);
    let addr = r.stdout().trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the local port {addr} is closed after exec"
    );
    // A command that does not exist: 127, as a shell says.
    warren(&s, &["exec", "pg", "--", "no-such-command-here"]).expect_code(127);
}

#[test]
fn exec_reuses_the_daemons_tunnel_and_leaves_it_open() {
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "") else {
        return;
    };
    warren(&s, &["up", "--detach", "pg"]).expect_code(0);
    let v = warren(&s, &["status", "--json"]).json();
    let local = v[0]["local"][0].as_str().unwrap_or_default().to_string();
    let r = warren(
        &s,
        &[
            "exec",
            "pg",
            "--",
            "sh",
            "-c",
            "echo $WARREN_HOST:$WARREN_PORT",
        ],
    );
    assert_eq!(r.stdout().trim(), local, "{}", r.describe());
    assert!(std::net::TcpStream::connect(&local).is_ok(), "still open");
    warren(&s, &["down", "--all"]).expect_code(0);
}

#[test]
fn every_url_form_works_with_the_real_client() {
    let Some(pg) = Postgres::start_with_password(PASSWORD) else {
        return;
    };
    let Some((_sshd, s)) = setup(&pg, "password_file = \"pw\"\n") else {
        return;
    };
    // An automatic port and no tunnel: it says so.
    warren(&s, &["url", "pg"])
        .expect_code(1)
        .expect_stderr("picks its local port when it opens");
    warren(&s, &["up", "--detach", "pg"]).expect_code(0);
    let psql = |conninfo: &str| {
        std::process::Command::new("psql")
            .arg(conninfo)
            .args(["-tAc", "select 'ok'"])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("psql")
    };
    // Without --with-password the password is not there, and PostgreSQL asks for one.
    let url = warren(&s, &["url", "pg"]);
    url.expect_code(0);
    assert!(!url.stdout().contains("s3cret"), "{}", url.stdout());
    assert!(!psql(url.stdout().trim()).status.success());
    for format in ["url", "dsn"] {
        let r = warren(&s, &["url", "pg", "--format", format, "--with-password"]);
        r.expect_code(0);
        let out = psql(r.stdout().trim());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("ok"),
            "{format}: {}\n{}",
            r.stdout(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The environment, sourced by a shell, and the client command line, run by one.
    let env = warren(&s, &["url", "pg", "--format", "env", "--with-password"]);
    env.expect_code(0);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{}\npsql -tAc \"select 'env ok'\" </dev/null",
            env.stdout()
        ))
        .output()
        .expect("sh");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("env ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmd = warren(&s, &["url", "pg", "--format", "psql", "--with-password"]);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} -tAc \"select 'cmd ok'\" </dev/null",
            cmd.stdout().trim()
        ))
        .output()
        .expect("sh");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cmd ok"),
        "{}: {}",
        cmd.stdout(),
        String::from_utf8_lossy(&out.stderr)
    );
    // JDBC has no client here: its shape.
    let jdbc = warren(&s, &["url", "pg", "--format", "jdbc"]);
    let local = warren(&s, &["status", "--json"]).json()[0]["local"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        jdbc.stdout().trim(),
        format!("jdbc:postgresql://{local}/postgres?user=postgres")
    );
    warren(&s, &["down", "--all"]).expect_code(0);
}

#[test]
fn connect_runs_psql_in_the_terminal() {
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "") else {
        return;
    };
    if !support::require("tmux") {
        return;
    }
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config /dev/null --known-hosts known_hosts connect pg",
    );
    t.wait_for("postgres=#");
    // (tmux takes a trailing ; as its own separator: \g runs the query.)
    t.type_text("select 6 * 7 as answer \\g");
    t.keys(&["Enter"]);
    t.wait_for("42");
    t.type_text("\\q");
    t.keys(&["Enter"]);
    t.wait_for("EXITED 0");
}

#[test]
fn connect_without_the_client_names_its_package() {
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "") else {
        return;
    };
    let run = format!("{}/run", s.path().display());
    s.warren_env(
        &["--ssh-config", "/dev/null", "connect", "pg"],
        &[("XDG_RUNTIME_DIR", &run), ("PATH", "/nonexistent")],
    )
    .expect_code(1)
    .expect_stderr("psql is not installed")
    .expect_stderr("postgresql-client");
}

/// Polls `warren status --json` until the first tunnel's `health.ok` is `want` (or `limit`
/// passes); returns that health and how long it took.
fn wait_health(
    s: &Scratch,
    want: bool,
    limit: std::time::Duration,
) -> (serde_json::Value, std::time::Duration) {
    let t = std::time::Instant::now();
    loop {
        let v = warren(s, &["status", "--json"]).json();
        let h = v[0]["health"].clone();
        if h["ok"].as_bool() == Some(want) {
            return (h, t.elapsed());
        }
        assert!(
            t.elapsed() < limit,
            "health.ok never became {want} within {limit:?}: {v:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn health_follows_the_database_behind_a_daemon_tunnel() {
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "health_interval = 2\n") else {
        return;
    };
    warren(&s, &["up", "--detach", "pg"]).expect_code(0);
    let limit = std::time::Duration::from_secs(10);
    let (h, _) = wait_health(&s, true, limit);
    assert!(h["latency_ms"].as_u64().is_some(), "{h}");
    assert!(
        h["checked_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{h}"
    );
    let up = warren(&s, &["status"]);
    assert!(up.stdout().contains("· db ok "), "{}", up.describe());

    // The database stops; the SSH session stays up.
    pg.stop();
    let (h, took) = wait_health(&s, false, limit);
    eprintln!("health went false {took:?} after PostgreSQL stopped");
    let detail = h["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("refused") || detail.contains("closed"),
        "the detail says the database refused or closed: {h}"
    );
    assert!(h["latency_ms"].is_null(), "{h}");
    let v = warren(&s, &["status", "--json"]).json();
    assert_eq!(v[0]["state"], "up", "the SSH session stays up: {v:#}");
    let st = warren(&s, &["status"]);
    assert!(st.stdout().contains("db failing: "), "{}", st.describe());

    pg.restart();
    let (_, took) = wait_health(&s, true, limit);
    eprintln!("health came back {took:?} after PostgreSQL restarted");
    // Each change is in the tunnel's log, in order; the history keeps the checks.
    let v = warren(&s, &["status", "--json"]).json();
    let log: Vec<&str> = v[0]["log"]
        .as_array()
        .map(|l| l.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let changes: Vec<&str> = log
        .iter()
        .filter(|l| l.starts_with("db "))
        .map(|l| {
            if l.starts_with("db ok") {
                "ok"
            } else {
                "failing"
            }
        })
        .collect();
    assert_eq!(changes, ["ok", "failing", "ok"], "{log:#?}");
    assert!(
        v[0]["health_history"]
            .as_array()
            .is_some_and(|h| h.len() >= 3)
    );
    warren(&s, &["down", "--all"]).expect_code(0);
}

/// `x` in the TUI: the tunnel opens, psql gets the terminal, and the TUI comes back when it
/// exits; `c` then copies the connection in the form asked for.
#[test]
fn x_in_the_tui_runs_psql_and_comes_back() {
    if !support::require("tmux") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "") else {
        return;
    };
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config /dev/null --known-hosts known_hosts",
    );
    t.wait_for("connections");
    t.keys(&["x"]);
    t.wait_for("postgres=#");
    t.type_text("select 6 * 7 as answer \\g");
    t.keys(&["Enter"]);
    t.wait_for("42");
    t.type_text("\\q");
    t.keys(&["Enter"]);
    // Back in the TUI, the tunnel still open.
    let screen = t.wait_for("psql exited with 0");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("● up") && l.contains("pg")),
        "{screen}"
    );
    t.keys(&["c"]);
    t.wait_for("copy as:");
    t.keys(&["j"]);
    t.wait_for("copied: jdbc:postgresql://127.0.0.1:");
    t.quit_closing_tunnels();
}

/// Every local user can read a process's arguments in /proc: while `connect --with-password`
/// runs psql, no process's command line holds the password (psql gets it in PGPASSWORD).
#[test]
fn connect_with_password_keeps_it_out_of_every_command_line() {
    use std::io::Write;
    let Some(pg) = Postgres::start() else { return };
    let Some((_sshd, s)) = setup(&pg, "password_file = \"pw\"\n") else {
        return;
    };
    let run = format!("{}/run", s.path().display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "--ssh-config",
            "/dev/null",
            "--known-hosts",
            "known_hosts",
            "connect",
            "pg",
            "--with-password",
        ])
        .current_dir(s.path())
        .env("HOME", s.path())
        .env("XDG_RUNTIME_DIR", &run)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("warren connect");
    let cmdlines = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Wait for psql to be running (its stdin is our open pipe, so it waits for input).
    let t = std::time::Instant::now();
    let mut seen = false;
    while t.elapsed() < std::time::Duration::from_secs(20) {
        let all = cmdlines();
        // Debian's psql is a wrapper that execs the real one: wait for that.
        if all
            .iter()
            .any(|c| c.contains("bin/psql") && c.contains("host="))
        {
            seen = true;
            assert!(
                !all.iter().any(|c| c.contains(PASSWORD)),
                "a command line holds the password: {:?}",
                all.iter()
                    .filter(|c| c.contains(PASSWORD))
                    .collect::<Vec<_>>()
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(b"select 'still ok';\n");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        seen,
        "psql never ran: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("still ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `local_bind = "auto"`: two PostgreSQL entries, both on 5432, each at its own loopback
/// address derived from its name, and psql to each reaches its own server.
#[test]
fn two_auto_bound_databases_share_port_5432_and_each_reaches_its_own() {
    let (Some(a), Some(b)) = (Postgres::start(), Postgres::start()) else {
        return;
    };
    if !have_servers() || !support::require("psql") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let mut text = String::new();
    for (name, pg) in [("orders", &a), ("users", &b)] {
        text += &entry(name, pg.port, &sshd, Some(&key), "").replace(
            &format!("[storage.postgres.{name}]\n"),
            &format!("[storage.postgres.{name}]\nusername = \"postgres\"\nlocal_bind = \"auto\"\n"),
        );
        text += "\n";
    }
    s.write("epoch.toml", &text);
    std::fs::create_dir_all(s.path().join("run")).expect("run");
    // The addresses `url` gives are the derived ones, on 5432.
    for (name, addr) in [("orders", "127.191.139.77"), ("users", "127.141.51.52")] {
        warren(&s, &["url", name])
            .expect_code(0)
            .expect_stdout(&format!("{addr}:5432"));
    }
    // The addresses are the machine's, not the test's: the daemon lets go of them however the
    // test ends.
    struct Down<'a>(&'a Scratch);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            warren(self.0, &["down", "--all"]);
        }
    }
    let _down = Down(&s);
    warren(&s, &["up", "--detach", "orders", "users"]).expect_code(0);
    for (addr, pg) in [("127.191.139.77", &a), ("127.141.51.52", &b)] {
        let out = std::process::Command::new("psql")
            .args(["-h", addr, "-p", "5432", "-U", "postgres", "-tAc"])
            .arg("select current_setting('port')")
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql to {addr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            pg.port.to_string(),
            "{addr} reached the other server"
        );
    }
    // A new daemon (the last one went with its tunnels) listens on the same addresses.
    let daemons = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("{}.* daemon$", s.path().display())])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = daemons();
    assert!(!first.is_empty(), "a daemon runs");
    warren(&s, &["down", "--all"]).expect_code(0);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !daemons().is_empty() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(daemons().is_empty(), "the daemon went with its last tunnel");
    warren(&s, &["up", "--detach", "orders", "users"]).expect_code(0);
    assert_ne!(daemons(), first, "a new daemon");
    let status = warren(&s, &["status", "--json"]).json();
    for (name, addr) in [
        ("orders", "127.191.139.77:5432"),
        ("users", "127.141.51.52:5432"),
    ] {
        let t = status
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("{name} in {status}"));
        assert_eq!(t["local"][0], addr, "{t}");
    }
}
