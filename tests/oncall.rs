//! On-call operations against a real sshd: tags select tunnels (`up @prod`, `down @prod`,
//! `list --tag`), a busy local port is named with its program and pid (and `--port-fallback`
//! takes the next one), and time limits close tunnels by themselves (`--for`, `idle_timeout`).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Scratch;
use support::net::{Up, echo_server, echo_through};
use support::sshd::Sshd;
use support::tunnel::{entry, have_servers, with_key};

const ARGS: [&str; 4] = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];

fn args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut a: Vec<&str> = ARGS.to_vec();
    a.extend_from_slice(rest);
    a
}

fn tagged(s: &Scratch, sshd: &Sshd, key: &str) {
    let echo = echo_server();
    let e = |name: &str, tags: &str| {
        entry(name, echo, sshd, Some(key), "").replace(
            &format!("[storage.postgres.{name}]\n"),
            &format!("[storage.postgres.{name}]\ntags = {tags}\n"),
        )
    };
    s.write(
        "epoch.toml",
        &[
            e("orders", "[\"prod\", \"eu\"]"),
            e("billing", "\"prod\""),
            e("scratch", "[\"dev\"]"),
        ]
        .join("\n"),
    );
}

#[test]
fn tags_select_what_up_down_and_list_touch() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    tagged(&s, &sshd, &key);
    let list = s.warren(&args(&["list", "--tag", "prod", "--json"]));
    list.expect_code(0);
    let names: Vec<String> = list
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["orders", "billing"]);
    s.warren(&args(&["list"]))
        .expect_stdout("TAGS")
        .expect_stdout("prod,eu");
    s.warren(&args(&["up", "@nope"]))
        .expect_code(2)
        .expect_stderr("no connection is tagged 'nope'");

    let mut up = Up::start(s.path(), &args(&["up", "@prod", "--json"]));
    for name in ["orders", "billing"] {
        up.listening(name);
    }
    std::thread::sleep(Duration::from_millis(300));
    let opened: Vec<String> = up
        .seen
        .iter()
        .filter(|v| v["event"] == "listening")
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(opened.len(), 2, "exactly the prod tunnels: {opened:?}");
    assert!(!opened.contains(&"scratch".to_string()));
    assert_eq!(up.interrupt(), 0);

    // Through the daemon: up and down by tag.
    let run = s.path().join("run");
    std::fs::create_dir_all(&run).expect("run");
    let rd = run.display().to_string();
    let w = |a: &[&str]| s.warren_env(&args(a), &[("XDG_RUNTIME_DIR", &rd)]);
    w(&["up", "--detach", "@prod"]).expect_code(0);
    w(&["up", "--detach", "scratch"]).expect_code(0);
    w(&["down", "@prod"])
        .expect_code(0)
        .expect_stdout("1 tunnel(s) still running");
    let v = w(&["status", "--json"]).json();
    assert_eq!(v[0]["name"], "scratch", "{v}");
    w(&["down", "--all"]).expect_code(0);
}

#[test]
fn up_by_tag_opens_the_tagged_tunnels_of_ssh_config_and_epoch_toml_alike() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    tagged(&s, &sshd, &key);
    let echo = echo_server();
    let host = |name: &str, extra: &str| {
        format!(
            "Host {name}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{echo}\n{extra}",
            sshd.port,
            support::tunnel::local_user(),
            support::sshd::free_port()
        )
    };
    // A note above a Host, `Tag` (OpenSSH 9.4+; older ssh needs IgnoreUnknown), a note inside
    // a block, and a host with other tags.
    s.write(
        "ssh_config",
        &[
            "IgnoreUnknown Tag\n\n# warren: tags = prod, web\n".to_string(),
            host("web-prod", ""),
            host("api-prod", "    Tag prod\n"),
            host("web-dev", "    # warren: tags = dev, web\n"),
        ]
        .concat(),
    );
    let a = |rest: &[&str]| {
        let mut v = vec!["--ssh-config", "ssh_config", "--known-hosts", "known_hosts"];
        v.extend_from_slice(rest);
        v.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let names = |v: serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect();
        n.sort();
        n
    };
    let list = s.warren(
        &a(&["list", "--tag", "web", "--json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(names(list.json()), ["web-dev", "web-prod"]);
    let list = s.warren(
        &a(&["list", "--json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let all = list.json();
    let web_prod = all
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "web-prod"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        web_prod["tags"],
        serde_json::json!(["prod", "web"]),
        "{web_prod}"
    );

    let args = a(&["up", "@prod", "--json"]);
    let mut up = Up::start(
        s.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for name in ["orders", "billing", "web-prod", "api-prod"] {
        up.listening(name);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut opened: Vec<String> = up
        .seen
        .iter()
        .filter(|v| v["event"] == "listening")
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect();
    opened.sort();
    assert_eq!(opened, ["api-prod", "billing", "orders", "web-prod"]);
    assert_eq!(up.interrupt(), 0);
}

/// A listener held by a python3 process: (the process, its port).
fn python_listener() -> Option<(std::process::Child, u16)> {
    if !support::require("python3") {
        return None;
    }
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    Some((child, line.trim().parse().expect("a port")))
}

#[test]
fn a_busy_port_is_named_with_its_program_and_the_next_one_can_be_taken() {
    if !have_servers() {
        return;
    }
    let Some((mut python, busy)) = python_listener() else {
        return;
    };
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &entry("pg", echo, &sshd, Some(&key), "").replace(
            "[storage.postgres.pg]\n",
            &format!("[storage.postgres.pg]\nlocal_port = {busy}\n"),
        ),
    );
    let r = s.warren(&args(&["up", "pg"]));
    r.expect_code(1)
        .expect_stderr(&format!("in use by python3 (pid {})", python.id()));
    // doctor's config step says the same.
    s.warren(&args(&["doctor", "pg"]))
        .expect_stdout(&format!("python3 (pid {})", python.id()));
    // --port-fallback: the next free port, reported.
    let mut up = Up::start(s.path(), &args(&["up", "pg", "--port-fallback", "--json"]));
    let warned = up.wait_for("the fallback", |v| {
        v["event"] == "warning" && v["message"].as_str().unwrap_or_default().contains("using")
    });
    assert!(
        warned["message"]
            .as_str()
            .unwrap_or_default()
            .contains("python3"),
        "{warned}"
    );
    let local = up.listening("pg");
    assert_ne!(local, format!("127.0.0.1:{busy}"));
    assert_eq!(echo_through(&local, b"elsewhere"), b"elsewhere");
    assert_eq!(up.interrupt(), 0);
    let _ = python.kill();
    let _ = python.wait();
}

#[test]
fn up_for_a_while_ends_by_itself_with_the_port_closed() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry("pg", echo_server(), &sshd, Some(&key), ""),
    );
    let started = Instant::now();
    let mut up = Up::start(s.path(), &args(&["up", "pg", "--for", "3s", "--json"]));
    let local = up.listening("pg");
    let ended = up.wait_for("the time limit", |v| {
        v["event"] == "state" && v["state"] == "expired"
    });
    assert!(
        ended["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("time limit (3s)"),
        "{ended}"
    );
    // It exits 0 by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Ok(Some(st)) = up.child.try_wait() {
            break st.code();
        }
        assert!(Instant::now() < deadline, "warren up did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    assert_eq!(code, Some(0));
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(
        std::net::TcpStream::connect(&local).is_err(),
        "the port is closed"
    );
}

#[test]
fn idle_timeout_closes_an_unused_tunnel_and_keeps_a_used_one() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry("idle", echo, &sshd, Some(&key), "idle_timeout = \"2s\""),
            entry("busy", echo, &sshd, Some(&key), "idle_timeout = \"2s\"")
        ),
    );
    let mut up = Up::start(s.path(), &args(&["up", "idle", "busy", "--json"]));
    up.listening("idle");
    let busy = up.listening("busy");
    // A client stays connected to busy the whole time.
    let mut held = std::net::TcpStream::connect(&busy).expect("connect");
    let ended = up.wait_for("idle closed", |v| {
        v["event"] == "state" && v["state"] == "expired" && v["name"] == "idle"
    });
    assert!(
        ended["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("idle_timeout"),
        "{ended}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !up.seen
            .iter()
            .any(|v| v["event"] == "state" && v["name"] == "busy" && v["state"] == "expired"),
        "the used tunnel stays open"
    );
    use std::io::{Read, Write};
    held.write_all(b"still here").expect("write");
    let mut back = [0u8; 10];
    held.read_exact(&mut back).expect("read");
    assert_eq!(&back, b"still here");
    drop(held);
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn the_daemon_runs_the_notify_command_for_a_drop_and_a_recovery() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &entry(
            "orders",
            echo,
            &sshd,
            Some(&key),
            "reconnect_delay = 0.2\nkeepalive_interval = 1\nkeepalive_count_max = 2\nconnect_timeout = 3",
        ),
    );
    // The stub: one line per notice, with what the command got in its environment.
    let log = s.path().join("notices");
    s.write(
        "cfg/warren/config.toml",
        &format!(
            "[notifications]\non = [\"dropped\", \"reconnected\", \"failed\"]\ncommand = 'echo \"$WARREN_EVENT $WARREN_TUNNEL: $WARREN_MESSAGE\" >> {}'\n",
            log.display()
        ),
    );
    let run = s.path().join("run");
    std::fs::create_dir_all(&run).expect("run");
    let (rd, cfg) = (
        run.display().to_string(),
        s.path().join("cfg").display().to_string(),
    );
    let env = [
        ("XDG_RUNTIME_DIR", rd.as_str()),
        ("XDG_CONFIG_HOME", cfg.as_str()),
    ];
    let w = |a: &[&str]| s.warren_env(&args(a), &env);
    w(&["up", "--detach", "orders"]).expect_code(0);
    let notices = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| l.starts_with(want)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no '{want}' notice within 30 s; the command recorded:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    sshd.kill();
    notices("dropped orders: ");
    sshd.restart();
    let text = notices("reconnected orders: ");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one notice for the drop, one for the recovery, nothing else: {lines:?}"
    );
    w(&["down", "--all"]).expect_code(0);
}

/// Under `--no-exec` the daemon runs no command at all: not the settings' notify command
/// either, and its log says it did not.
#[test]
fn no_exec_runs_no_notify_command() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry("orders", echo_server(), &sshd, Some(&key), ""),
    );
    let marker = s.path().join("NOTIFIED");
    s.write(
        "cfg/warren/config.toml",
        &format!(
            "[notifications]\non = [\"failed\", \"dropped\", \"reconnected\"]\ncommand = 'touch {}'\n",
            marker.display()
        ),
    );
    let run = s.path().join("run");
    std::fs::create_dir_all(&run).expect("run");
    let (rd, cfg) = (
        run.display().to_string(),
        s.path().join("cfg").display().to_string(),
    );
    let env = [
        ("XDG_RUNTIME_DIR", rd.as_str()),
        ("XDG_CONFIG_HOME", cfg.as_str()),
    ];
    let w = |a: &[&str]| s.warren_env(&args(a), &env);
    w(&["--no-exec", "up", "--detach", "orders"]).expect_code(0);
    // A failure the notify command would hear of: a tunnel to a name nobody has.
    let _ = w(&["--no-exec", "up", "--detach", "nosuch"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = String::new();
    while Instant::now() < deadline {
        said = w(&["logs"]).stdout();
        if said.contains("the notify command") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        said.contains("is not run: the daemon runs no command (--no-exec)"),
        "{said}"
    );
    assert!(!marker.exists(), "the notify command ran under --no-exec");
    w(&["down", "--all"]).expect_code(0);
}

/// macOS finds a port's owner with lsof (no /proc there): the parser, run here on what the
/// real lsof prints for our own listeners (IPv4 and IPv6 on one port).
#[test]
fn lsof_field_output_names_the_listener() {
    if !support::require("lsof") {
        return;
    }
    let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = v4.local_addr().expect("addr").port();
    let _v6 = std::net::TcpListener::bind(("::1", port)).ok();
    let out = Command::new("lsof")
        .args(warren::tunnel::owner::lsof_args(port))
        .output()
        .expect("lsof");
    let text = String::from_utf8_lossy(&out.stdout);
    let owner = warren::tunnel::owner::parse_lsof_fields(&text);
    let me = std::process::id();
    assert!(
        matches!(&owner, Some(warren::tunnel::owner::Owner::Process { pid, .. }) if *pid == me),
        "{owner:?} from:\n{text}"
    );
}
