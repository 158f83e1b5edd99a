//! The per-user daemon: `up --detach` hands tunnels to it and returns, `status` and `down`
//! talk to it, and its control socket is private, single, self-healing and strict.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use support::Scratch;
use support::net::{echo_server, echo_through};
use support::sshd::Sshd;
use support::tunnel::{entry, have_servers, with_key};
use warren::daemon::protocol::VERSION;

/// A scratch home with its own runtime dir; the daemon is closed when this goes away.
struct Home {
    s: Scratch,
    run: String,
}

impl Home {
    fn new(s: Scratch) -> Home {
        let run = s.path().join("run").display().to_string();
        std::fs::create_dir_all(&run).expect("run dir");
        Home { s, run }
    }
    fn warren(&self, args: &[&str]) -> support::Run {
        let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
        all.extend_from_slice(args);
        self.s.warren_env(&all, &[("XDG_RUNTIME_DIR", &self.run)])
    }
    fn socket(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.run).join("warren/control.sock")
    }
    fn ask(&self, line: &[u8]) -> serde_json::Value {
        let mut c = UnixStream::connect(self.socket()).expect("connect to the control socket");
        c.write_all(line).expect("write");
        let mut answer = String::new();
        BufReader::new(c).read_line(&mut answer).expect("answer");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.warren(&["down", "--all"]);
    }
}

fn setup() -> Option<(Sshd, Home, u16)> {
    if !have_servers() {
        return None;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write("epoch.toml", &entry("pg", echo, &sshd, Some(&key), ""));
    Some((sshd, Home::new(s), echo))
}

#[test]
fn up_detach_returns_and_the_tunnel_keeps_carrying_data_until_down() {
    let Some((_sshd, h, echo)) = setup() else {
        return;
    };
    let r = h.warren(&["up", "--detach", "pg"]);
    r.expect_code(0)
        .expect_stdout(&format!("-> 127.0.0.1:{echo}"))
        .expect_stdout("up");
    // The client process has exited; the daemon carries the tunnel.
    let r = h.warren(&["status", "--json"]);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v[0]["name"], "pg");
    assert_eq!(v[0]["state"], "up");
    let local = v[0]["local"][0].as_str().unwrap_or_default().to_string();
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 239) as u8).collect();
    assert_eq!(echo_through(&local, &data), data);
    // Counters show in status.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let v = h.warren(&["status", "--json"]).json();
    assert!(v[0]["bytes_in"].as_u64().unwrap_or(0) >= 500_000, "{v}");

    h.warren(&["down", "pg"])
        .expect_code(0)
        .expect_stdout("0 tunnel(s) still running");
    h.warren(&["status"])
        .expect_code(0)
        .expect_stdout("no tunnels are running");
    assert!(
        std::net::TcpStream::connect(&local).is_err(),
        "the tunnel is closed"
    );
}

#[test]
fn the_control_socket_is_private_single_and_strict() {
    let Some((_sshd, h, _)) = setup() else { return };
    // A socket file left by a dead daemon does not stop a new one.
    let dir = std::path::Path::new(&h.run).join("warren");
    std::fs::create_dir_all(&dir).expect("dir");
    drop(std::os::unix::net::UnixListener::bind(h.socket()).expect("stale socket"));
    assert!(h.socket().exists(), "a stale socket file is there");
    h.warren(&["up", "--detach", "pg"]).expect_code(0);

    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the directory is the user's only");
    assert_eq!(mode(&h.socket()), 0o600, "the socket is the user's only");

    // A second daemon is refused.
    let r = h.warren(&["daemon"]);
    r.expect_code(1)
        .expect_stderr("another warren daemon is running");

    // Malformed, wrong-version and oversized requests get an error; the daemon keeps serving.
    let a = h.ask(b"this is not json\n");
    assert_eq!(a["ok"], false);
    assert!(
        a["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a JSON request"),
        "{a}"
    );
    let a = h.ask(b"{\"v\": 99, \"cmd\": \"status\"}\n");
    assert!(
        a["error"]
            .as_str()
            .unwrap_or_default()
            .contains("protocol version 99"),
        "{a}"
    );
    let mut big = vec![b'x'; 70 * 1024];
    big.push(b'\n');
    let a = h.ask(&big);
    assert!(
        a["error"]
            .as_str()
            .unwrap_or_default()
            .contains("longer than"),
        "{a}"
    );
    let status = format!("{{\"v\": {VERSION}, \"cmd\": \"status\"}}\n");
    let a = h.ask(status.as_bytes());
    assert_eq!(a["ok"], true);
    assert_eq!(a["tunnels"][0]["name"], "pg", "still serving: {a}");

    // The limit is a line's, not a connection's: on one connection, an oversized line and a
    // garbled one are answered with errors, and the next request still works.
    let mut c = UnixStream::connect(h.socket()).expect("connect");
    c.write_all(&big).expect("write");
    c.write_all(b"{garbled\n").expect("write");
    c.write_all(status.as_bytes()).expect("write");
    let mut r = BufReader::new(c);
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        r.read_line(&mut line).expect("a reply");
        replies.push(serde_json::from_str::<serde_json::Value>(&line).expect("JSON"));
    }
    assert!(
        replies[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("longer than"),
        "{replies:?}"
    );
    assert_eq!(replies[1]["ok"], false, "{replies:?}");
    assert_eq!(replies[2]["tunnels"][0]["name"], "pg", "{replies:?}");
    // A tunnel named like a command is just a name.
    let a = h.ask(
        format!("{{\"v\": {VERSION}, \"cmd\": \"open\", \"names\": [\"subscribe\"]}}\n").as_bytes(),
    );
    assert!(
        a["error"]
            .as_str()
            .unwrap_or_default()
            .contains("subscribe"),
        "{a}"
    );
}

/// The daemon serves its own user only (SO_PEERCRED): a daemon run as `nobody` answers
/// nobody's `warren status`, and a raw connection from root, which the directory's 0700 does
/// not keep out, is closed without an answer.
#[test]
fn the_daemon_refuses_a_connection_from_another_uid() {
    use std::io::{BufRead, Read, Write};
    if !support::require("runuser") {
        return;
    }
    let base = tempfile::tempdir().expect("dir");
    let _ = std::process::Command::new("chmod")
        .arg("0755")
        .arg(base.path())
        .status();
    let home = base.path().join("home");
    let run = base.path().join("run");
    for d in [&home, &run] {
        std::fs::create_dir_all(d).expect("mkdir");
        let ok = std::process::Command::new("chown")
            .args(["nobody", &d.display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "cannot chown");
            eprintln!("SKIPPED: cannot chown to nobody");
            return;
        }
    }
    let as_nobody = |args: &[&str]| {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "nobody", "--", "env"])
            .arg(format!("HOME={}", home.display()))
            .arg(format!("XDG_RUNTIME_DIR={}", run.display()))
            .arg(env!("CARGO_BIN_EXE_warren"))
            .args(["--ssh-config", "/dev/null", "--config", "/dev/null"])
            .args(args)
            .current_dir(base.path());
        c
    };
    let mut daemon = as_nobody(&["daemon"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon as nobody");
    let mut line = String::new();
    if let Some(out) = daemon.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(line.trim(), "ready", "the daemon did not start");
    // root does not: the connection is closed, nothing is answered.
    let sock = run.join("warren").join("control.sock");
    let mut raw = std::os::unix::net::UnixStream::connect(&sock).expect("connect as root");
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    // A well-formed request (any line at all gets an answer from a daemon that serves it).
    let _ = raw.write_all(
        format!(
            "{{\"v\":{},\"id\":1,\"cmd\":\"status\"}}\n",
            warren::daemon::protocol::VERSION
        )
        .as_bytes(),
    );
    let mut got = Vec::new();
    let n = raw.read_to_end(&mut got).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "root got an answer: {}",
        String::from_utf8_lossy(&got)
    );
    // nobody reaches its own daemon (started again if the refusal let it stop).
    let own = as_nobody(&["status", "--json"]).output().expect("status");
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    let log = std::fs::read_to_string(home.join(".local/state/warren/daemon.log"))
        .or_else(|_| std::fs::read_to_string(run.join("warren").join("daemon.log")))
        .unwrap_or_default();
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::process::Command::new("pkill")
        .args(["-u", "nobody", "-f", "warren"])
        .status();
    if !log.is_empty() {
        assert!(log.contains("refused a connection from uid 0"), "{log}");
    }
}

/// One client cannot make the daemon run without end: past 32 unanswered opens on one
/// connection, a request is refused at once; a status (and an answer) is never held up by
/// opens that wait.
#[test]
fn requests_in_flight_are_bounded_and_status_is_never_held_up() {
    use std::io::{BufRead, BufReader, Write};
    let Some((_sshd, h, _)) = setup() else {
        return;
    };
    // A "bastion" that takes the connection and never says a word: each open waits for its
    // connect_timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let mut toml = std::fs::read_to_string(h.s.path().join("epoch.toml")).expect("read");
    for i in 0..40 {
        toml.push_str(&format!(
            "[storage.postgres.hang{i}]\nhost = \"127.0.0.1\"\nport = 5432\n[storage.postgres.hang{i}.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"x\"\nconnect_timeout = 30\n\n"
        ));
    }
    std::fs::write(h.s.path().join("epoch.toml"), &toml).expect("write");
    h.s.trust_file(&h.s.path().join("epoch.toml"), toml.as_bytes());
    h.warren(&["up", "--detach", "pg"]).expect_code(0);
    assert!(h.socket().exists(), "the daemon runs");

    let mut c = UnixStream::connect(h.socket()).expect("connect");
    for i in 0..40 {
        c.write_all(
            format!(
                "{{\"v\": {VERSION}, \"id\": {}, \"cmd\": \"open\", \"names\": [\"hang{i}\"]}}\n",
                i + 1
            )
            .as_bytes(),
        )
        .expect("write");
    }
    c.write_all(format!("{{\"v\": {VERSION}, \"id\": 99, \"cmd\": \"status\"}}\n").as_bytes())
        .expect("write");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut r = BufReader::new(c);
    let (mut refused, mut status) = (Vec::new(), None);
    while status.is_none() || refused.len() < 8 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap_or_else(|e| {
            panic!("no reply within 10 s ({e}); refused so far {refused:?}, status {status:?}")
        });
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        if v["id"] == 99 {
            status = Some(v);
        } else {
            let err = v["error"].as_str().unwrap_or_default();
            assert!(
                err.contains("too many requests at once (32 unanswered"),
                "only refusals come before the opens' connect_timeout: {v}"
            );
            refused.push(v["id"].as_u64().unwrap_or_default());
        }
    }
    refused.sort_unstable();
    assert_eq!(refused, (33..=40).collect::<Vec<u64>>());
    let status = status.unwrap_or_default();
    assert_eq!(status["ok"], true, "{status}");
    drop(r);
    drop(silent);
}

/// The daemon's directory is never a symbolic link: one planted there is refused, by the
/// client and by a daemon, and reported as such, not as "no daemon".
#[test]
fn a_symlinked_daemon_directory_is_refused() {
    let s = Scratch::new();
    let h = Home::new(s);
    let elsewhere = h.s.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::symlink(&elsewhere, std::path::Path::new(&h.run).join("warren"))
        .expect("symlink");
    let r = h.warren(&["status"]);
    r.expect_code(1)
        .expect_stderr("cannot reach the daemon")
        .expect_stderr("is a symbolic link: refusing to follow it");
    assert!(!r.stdout().contains("no daemon"), "{}", r.describe());
    let r = h.warren(&["daemon"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    r.expect_stderr("is a symbolic link");
    assert_eq!(
        std::fs::read_dir(&elsewhere).expect("read").count(),
        0,
        "nothing was made where the link points"
    );
}
