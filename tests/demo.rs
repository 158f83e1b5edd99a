//! `warren demo` in a real terminal: the demo connections, the healthy one opened and carrying
//! PostgreSQL bytes, the broken ones failing at the right steps, nothing left after exit.

mod support;

use std::io::{Read, Write};

use support::Scratch;
use support::tmux::Tmux;

/// The port in the first `127.0.0.1:PORT` after `after` on a screen line containing `marker`.
fn port_on(screen: &str, marker: &str, after: &str) -> u16 {
    let line = screen
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker}:\n{screen}"));
    let rest = &line[line
        .find(after)
        .unwrap_or_else(|| panic!("no {after} in {line}"))
        + after.len()..];
    rest.chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line}"))
}

/// warren with `args` in a scratch home whose TMPDIR (where the demo's directory goes) is
/// its own `tmp`, so a test sees what the demo leaves there.
fn start(args: &str) -> (Scratch, std::path::PathBuf, Tmux) {
    let s = Scratch::new();
    let tmp = s.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let t = Tmux::warren(s.path(), &format!("TMPDIR={}", tmp.display()), args);
    (s, tmp, t)
}

/// Enter on the selected demo-db, and the port of its tunnel once it is up.
fn open_demo_db(t: &Tmux) -> u16 {
    t.keys(&["Enter"]);
    let screen = t.wait_until("demo-db up", |s| {
        s.lines()
            .any(|l| l.contains(" up ") && l.contains("demo-db "))
    });
    port_on(&screen, " up ", "127.0.0.1:")
}

fn entries(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .expect("tmp")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect()
}

#[test]
fn the_demo_works_and_fails_as_designed_and_leaves_nothing() {
    if !support::require("tmux") {
        return;
    }
    let (_s, tmp, t) = start("demo");
    let screen = t.wait_for("demo-key-refused");
    for name in ["demo-db ", "demo-db-down", "demo-host-key-changed"] {
        assert!(screen.contains(name), "{name} missing:\n{screen}");
    }
    let bastion = port_on(&screen, "you → demo@", "demo@127.0.0.1:");

    // The healthy one: open it and speak PostgreSQL through it.
    let local = open_demo_db(&t);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", local)).expect("connect to the tunnel");
    c.write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
        .expect("SSLRequest");
    let mut b = [0u8; 1];
    c.read_exact(&mut b).expect("answer");
    assert_eq!(&b, b"N", "the demo database answered through the tunnel");
    drop(c);
    t.keys(&["d"]);
    let screen = t.wait_for("no step failed");
    assert!(screen.contains("PostgreSQL answered"), "{screen}");
    t.keys(&["Escape"]);

    // The broken ones fail where they should.
    for (expect_step, expect_text) in [
        ("forward", "could not connect"),
        ("host_key", "CHANGED"),
        ("auth", "demo_key: refused"),
    ] {
        t.keys(&["j", "d"]);
        let screen = t.wait_for("a step failed");
        let failed = screen
            .lines()
            .find(|l| l.contains('✘'))
            .unwrap_or_default()
            .to_string();
        assert!(
            failed.contains(expect_step),
            "expected a failure at {expect_step}: {failed}\n{screen}"
        );
        // The pane wraps long lines: read it as one text.
        let text = screen
            .replace(['│', '┌', '┐', '└', '┘', '─'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains(expect_text),
            "expected {expect_text:?}:\n{screen}"
        );
        t.keys(&["Escape"]);
    }

    t.quit_closing_tunnels();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
        "no listener left (tunnel)"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", bastion)).is_err(),
        "no listener left (bastion)"
    );
    let left = entries(&tmp);
    assert!(left.is_empty(), "the demo's temp files are gone: {left:?}");
}

/// The empty state offers the demo: D starts it in the TUI's own process, and Enter on
/// demo-db opens a tunnel that speaks PostgreSQL. Quitting removes it all.
#[test]
fn d_on_the_empty_state_starts_the_demo_and_enter_opens_demo_db() {
    if !support::require("tmux") {
        return;
    }
    let (_s, tmp, t) = start("--ssh-config /dev/null");
    let screen = t.wait_for("No connections yet");
    assert!(screen.contains("D   see warren work"), "{screen}");
    t.keys(&["D"]);
    let screen = t.wait_for("demo-key-refused");
    for name in ["demo-db ", "demo-db-down", "demo-host-key-changed"] {
        assert!(screen.contains(name), "{name} missing:\n{screen}");
    }
    let local = open_demo_db(&t);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", local)).expect("connect to the tunnel");
    c.write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
        .expect("SSLRequest");
    let mut b = [0u8; 1];
    c.read_exact(&mut b).expect("answer");
    assert_eq!(&b, b"N", "the demo database answered through the tunnel");
    drop(c);
    t.quit_closing_tunnels();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
        "no listener left"
    );
    let left = entries(&tmp);
    assert!(left.is_empty(), "the demo's temp files are gone: {left:?}");
}

/// The pid of the warren that runs in `t`'s pane (a child of the pane's shell).
fn warren_pid(t: &Tmux) -> i32 {
    let out = std::process::Command::new("tmux")
        .args(["display-message", "-p", "-t", &t.name, "#{pane_pid}"])
        .output()
        .expect("tmux display-message");
    let shell: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("pane pid");
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid: Option<i32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(shell) && head.ends_with("(warren") {
            return e.file_name().to_string_lossy().parse().expect("pid");
        }
    }
    panic!("no warren under the pane's shell {shell}");
}

/// `x` on demo-db hands the terminal to psql, which runs `select 1` and gets its row; Ctrl-\
/// there ends psql, not warren; and a signal to warren then (SIGQUIT here) ends it as `q`
/// does, the demo's directory (with its private key) removed.
#[test]
fn x_runs_select_1_in_psql_and_ctrl_backslash_leaves_warren_running() {
    if !support::require("tmux") || !support::require("psql") {
        return;
    }
    let (_s, tmp, t) = start("demo");
    t.wait_for("demo-key-refused");
    open_demo_db(&t);
    t.keys(&["x"]);
    t.wait_for("demo=>");
    // (A trailing `;` would be read by tmux as its own command separator: `\g` sends it.)
    t.type_text("select 1 as answer, current_user \\g");
    t.keys(&["Enter"]);
    let screen = t.wait_for("(1 row)");
    let row = screen
        .lines()
        .skip_while(|l| !l.contains("answer |"))
        .nth(2)
        .unwrap_or_default();
    assert!(
        row.contains('1') && row.contains("demo"),
        "the row psql printed: {row:?}\n{screen}"
    );
    assert_eq!(entries(&tmp).len(), 1, "the demo's directory is there");
    // Ctrl-\ goes to the terminal's whole process group: psql ends, warren stays.
    t.keys(&["C-\\"]);
    let screen = t.wait_for("demo-key-refused");
    assert!(!screen.contains("EXITED"), "warren ended:\n{screen}");
    assert_eq!(entries(&tmp).len(), 1, "the demo is still running");
    let pid = warren_pid(&t);
    // A Ctrl-\ in the second after a client exits is taken as the client's (the terminal sent
    // it to both); a SIGQUIT after that ends warren.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill with the pid of the warren this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGQUIT) }, 0);
    t.wait_for("EXITED 0");
    let left = entries(&tmp);
    assert!(left.is_empty(), "the demo's files are gone: {left:?}");
}

/// SIGINT, SIGTERM and SIGHUP to the demo end it as `q` does: the open tunnel's port is
/// closed and the demo's directory removed.
#[test]
fn every_signal_to_the_demo_removes_it() {
    if !support::require("tmux") {
        return;
    }
    for (name, sig) in [
        ("SIGINT", libc::SIGINT),
        ("SIGTERM", libc::SIGTERM),
        ("SIGHUP", libc::SIGHUP),
    ] {
        let (_s, tmp, t) = start("demo");
        t.wait_for("demo-key-refused");
        let local = open_demo_db(&t);
        assert_eq!(entries(&tmp).len(), 1, "{name}: the demo's directory");
        let pid = warren_pid(&t);
        // SAFETY: kill with the pid of the warren this test started.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        t.wait_for("EXITED 0");
        let left = entries(&tmp);
        assert!(
            left.is_empty(),
            "{name}: the demo's files are gone: {left:?}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
            "{name}: the tunnel's port is closed"
        );
    }
}
