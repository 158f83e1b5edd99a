//! Bastions reached through a command, against real OpenSSH servers: a netcat-like
//! ProxyCommand, `ssh -W` through a second sshd, a ProxyCommand bastion carrying the next hop
//! of a chain (each with 1 MiB byte-exact), the command started again when the bastion comes
//! back, `warren doctor`'s `proxy` step for the usual failures, `--no-exec`, and
//! ProxyUseFdpass: a command (python3's `socket.send_fds`) that connects, passes the
//! connected socket back over its stdout and exits, as ssh's `ssh_proxy_fdpass_connect`
//! expects.
//!
//! The netcat stand-in is a bash script over /dev/tcp (bash is everywhere; nc and socat are
//! not; see `support::net::nc_script`): it relays until either side closes, as `nc` does.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::Scratch;
use support::net::{Up, echo_server, echo_through, nc_script};
use support::sshd::{Sshd, free_port, keygen};
use support::tunnel::{have_servers, local_user};

/// `nc %h %p`, the stand-in written into the scratch home.
fn nc(s: &Scratch) -> String {
    format!("{} %h %p", nc_script(s.path()).display())
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Sends 1 MiB through `local` and checks the echo byte for byte.
#[track_caller]
fn one_mib_through(local: &str, seed: u64) {
    let data = pseudo_random(1024 * 1024, seed);
    let back = echo_through(local, &data);
    assert_eq!(back.len(), data.len(), "all of the 1 MiB came back");
    assert_eq!(
        Sha256::digest(&back),
        Sha256::digest(&data),
        "byte-exact both ways"
    );
}

/// A scratch home with a key every server in `servers` trusts, and their host keys in
/// `known_hosts`; returns the key's path.
fn home(servers: &[&Sshd]) -> (Scratch, String) {
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    let mut kh = String::new();
    for sshd in servers {
        sshd.authorize(&key.public_line);
        kh.push_str(&sshd.known_hosts_line());
        kh.push('\n');
    }
    s.write("known_hosts", &kh);
    (s, key.private.display().to_string())
}

/// A Host block for `sshd` (strict host keys, this key only), with `lines`.
fn host(s: &Scratch, name: &str, sshd: &Sshd, key: &str, lines: &str) -> String {
    format!(
        "Host {name}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    IdentitiesOnly yes\n    IdentityAgent none\n    UserKnownHostsFile {}/known_hosts\n    GlobalKnownHostsFile none\n    StrictHostKeyChecking yes\n{lines}\n",
        sshd.port,
        local_user(),
        s.path().display()
    )
}

fn up(s: &Scratch, names: &[&str]) -> Up {
    let mut args = vec!["--ssh-config", "ssh_config", "--config", "/dev/null", "up"];
    args.extend_from_slice(names);
    args.push("--json");
    Up::start(s.path(), &args)
}

#[test]
fn a_netcat_like_proxy_command_carries_one_mib_exactly() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    let relay = nc(&s);
    let (echo, local) = (echo_server(), free_port());
    s.write(
        "ssh_config",
        &host(
            &s,
            "db",
            &sshd,
            &key,
            &format!(
                "    ProxyCommand {relay}\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n"
            ),
        ),
    );
    let mut up = up(&s, &["db"]);
    let addr = up.listening("db");
    one_mib_through(&addr, 1);
    one_mib_through(&addr, 2);
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn ssh_dash_w_through_a_second_sshd_carries_one_mib_exactly() {
    if !have_servers() || !support::require("ssh") {
        return;
    }
    let (jump, target) = (Sshd::start(""), Sshd::start(""));
    let (s, key) = home(&[&jump, &target]);
    // The jump host is known to OpenSSH's ssh only, through its own config.
    s.write(
        "jump_config",
        &format!("{}    BatchMode yes\n", host(&s, "jump", &jump, &key, "")),
    );
    let (echo, local) = (echo_server(), free_port());
    let d = s.path().display();
    s.write(
        "ssh_config",
        &host(
            &s,
            "db",
            &target,
            &key,
            &format!("    ProxyCommand sh -c 'echo $$ > {d}/ssh.pid; exec ssh -F {d}/jump_config -W %h:%p jump'\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n"),
        ),
    );
    let mut up = up(&s, &["db"]);
    let addr = up.listening("db");
    one_mib_through(&addr, 3);
    assert_eq!(
        jump.session_pids().len(),
        1,
        "ssh -W went through the jump server"
    );
    let pid = std::fs::read_to_string(s.path().join("ssh.pid")).expect("pid");
    let pid = pid.trim();
    assert!(alive(pid), "ssh -W runs under the tunnel");
    assert_eq!(up.interrupt(), 0);
    assert!(
        !alive(pid),
        "ssh -W stopped and reaped (no zombie) when warren exits"
    );
}

#[test]
fn a_proxy_command_bastion_carries_the_next_hop_of_a_chain() {
    if !have_servers() {
        return;
    }
    let (bastion, target) = (Sshd::start(""), Sshd::start(""));
    let (s, key) = home(&[&bastion, &target]);
    let relay = nc(&s);
    let echo = echo_server();
    let local = free_port();
    // ssh_config: the target's ProxyJump names a bastion reached through its ProxyCommand.
    s.write(
        "ssh_config",
        &format!(
            "{}{}",
            host(
                &s,
                "inner",
                &target,
                &key,
                &format!(
                    "    ProxyJump bastion\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n"
                )
            ),
            host(
                &s,
                "bastion",
                &bastion,
                &key,
                &format!("    ProxyCommand {relay}\n")
            ),
        ),
    );
    // epoch.toml: proxy_command on a jump_host table.
    let user = local_user();
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.pg]\nhost = \"127.0.0.1\"\nport = {echo}\n\n\
             [storage.postgres.pg.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\nkey_file = \"{key}\"\nstrict_host_key_checking = true\n\n\
             [storage.postgres.pg.ssh_tunnel.jump_host]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\nkey_file = \"{key}\"\nproxy_command = '''{relay}'''\n",
            target.port, bastion.port
        ),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "up",
            "inner",
            "pg",
            "--json",
        ],
    );
    let a = up.listening("inner");
    let b = up.listening("pg");
    one_mib_through(&a, 4);
    one_mib_through(&b, 5);
    assert!(
        !bastion.session_pids().is_empty() && !target.session_pids().is_empty(),
        "both servers were reached"
    );
    // The target is reached only through the bastion: without it, both tunnels are lost.
    let mut bastion = bastion;
    bastion.kill();
    for name in ["inner", "pg"] {
        up.wait_for("reconnecting", |v| {
            v["event"] == "state" && v["state"] == "reconnecting" && v["name"] == name
        });
    }
    assert_eq!(up.interrupt(), 0);
}

/// Whether a process is there (a zombie counts: it was not reaped).
fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn the_command_is_started_again_when_the_bastion_comes_back() {
    if !have_servers() {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    nc_script(s.path());
    let d = s.path().display();
    // Each start writes its pid, then becomes the relay.
    let script = s.write(
        "proxy.sh",
        &format!(
            "#!/bin/sh\necho $$ >> {d}/starts\nprintf 'relay %s starting \\033[31m\\n' $$ >&2\nexec {d}/nc \"$1\" \"$2\"\n"
        ),
    );
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.pg]\nhost = \"127.0.0.1\"\nport = {echo}\n\n\
             [storage.postgres.pg.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{key}\"\n\
             proxy_command = \"{} %h %p\"\nreconnect_delay = 0.2\nkeepalive_interval = 1\nkeepalive_count_max = 2\nconnect_timeout = 3\n",
            sshd.port,
            local_user(),
            script.display()
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
    let local = up.listening("pg");
    one_mib_through(&local, 6);
    let starts = || -> Vec<String> {
        std::fs::read_to_string(s.path().join("starts"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(starts().len(), 1, "started once");
    // What it writes to stderr reaches the tunnel's log, escaped.
    let said = up.wait_for("its stderr", |v| {
        v["event"] == "warning"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("ProxyCommand (hop 0): relay"))
    });
    let said = said["message"].as_str().unwrap_or_default();
    assert!(
        said.ends_with("starting \\x1b[31m") && !said.contains('\u{1b}'),
        "{said}"
    );

    sshd.kill();
    up.wait_for("reconnecting", |v| {
        v["event"] == "state" && v["state"] == "reconnecting"
    });
    sshd.restart();
    up.seen.clear();
    up.wait_for("up again", |v| v["event"] == "state" && v["state"] == "up");
    one_mib_through(&local, 7);
    let all = starts();
    assert!(all.len() >= 2, "started again after the loss: {all:?}");
    // Every command but the live one is gone and reaped (no zombie).
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in &all[..all.len() - 1] {
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "the old ProxyCommand {pid} is still there"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let last = all.last().cloned().unwrap_or_default();
    assert!(alive(&last), "the live one runs");
    assert_eq!(up.interrupt(), 0);
    // And it is stopped (and reaped) when warren closes the tunnel.
    assert!(!alive(&last), "stopped with warren");
}

/// Writes `dir/fdpass.py HOST PORT`: connects, sends the connected socket over its stdout
/// (SCM_RIGHTS, one byte of data, as ssh's `mm_send_fd`), writes its pid to `dir/fdpass.pid`
/// and exits. With `--no-pass` it exits without sending one.
fn fdpass_script(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fdpass.py");
    std::fs::write(
        &path,
        format!(
            "import os, socket, sys\n\
             open({pid:?}, 'w').write(str(os.getpid()))\n\
             if sys.argv[1] == '--no-pass':\n    sys.exit(0)\n\
             c = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n\
             out = socket.socket(fileno=1)\n\
             socket.send_fds(out, [b'\\0'], [c.fileno()])\n",
            pid = dir.join("fdpass.pid").display().to_string()
        ),
    )
    .expect("write fdpass.py");
    path
}

#[test]
fn a_proxy_command_that_passes_a_socket_carries_one_mib_exactly_after_it_exits() {
    if !have_servers() || !support::require("python3") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    let script = fdpass_script(s.path());
    let (echo, local) = (echo_server(), free_port());
    s.write(
        "ssh_config",
        &host(
            &s,
            "db",
            &sshd,
            &key,
            &format!(
                "    ProxyCommand python3 {} %h %p\n    ProxyUseFdpass yes\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n",
                script.display()
            ),
        ),
    );
    let mut up = up(&s, &["db"]);
    let addr = up.listening("db");
    let pid = std::fs::read_to_string(s.path().join("fdpass.pid")).expect("the command ran");
    // The command has exited (a zombie until warren closes the tunnel and reaps it): the
    // data can only go through the socket it passed.
    let exited = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exited(pid.trim()) {
        assert!(
            Instant::now() < deadline,
            "the fd-passing command did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    one_mib_through(&addr, 7);
    one_mib_through(&addr, 8);
    assert_eq!(
        sshd.session_pids().len(),
        1,
        "one SSH session to the server"
    );
    assert_eq!(up.interrupt(), 0);
}

#[test]
fn a_fdpass_command_that_passes_nothing_is_the_error() {
    if !support::require("python3") {
        return;
    }
    let s = Scratch::new();
    let script = fdpass_script(s.path());
    proxy_host(
        &s,
        &format!(
            "python3 {} --no-pass\n    ProxyUseFdpass yes\n    LocalForward 127.0.0.1:{} 127.0.0.1:9",
            script.display(),
            free_port()
        ),
    );
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--config",
        "/dev/null",
        "up",
        "bastion",
    ]);
    r.expect_code(1)
        .expect_stderr("without passing a connected socket");
}

fn doctor(s: &Scratch, name: &str, extra: &[&str]) -> (support::Run, Value) {
    let mut args = vec!["--ssh-config", "ssh_config", "--config", "/dev/null"];
    args.extend_from_slice(extra);
    args.extend(["doctor", name, "--json"]);
    let r = s.warren(&args);
    let v = r.json();
    (r, v)
}

/// The failed step: `(id, hop, detail, hint)`, and the ids of every step.
fn failed_at(v: &Value) -> (String, String, String, Vec<String>) {
    let steps = v["steps"].as_array().expect("steps");
    let ids = steps
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let s = steps
        .iter()
        .find(|s| s["status"] == "fail")
        .unwrap_or_else(|| panic!("no failed step in {v:#}"));
    (
        s["id"].as_str().unwrap_or_default().to_string(),
        s["detail"].as_str().unwrap_or_default().to_string(),
        s["hint"].as_str().unwrap_or_default().to_string(),
        ids,
    )
}

fn proxy_host(s: &Scratch, command: &str) {
    s.write(
        "ssh_config",
        &format!(
            "Host bastion\n    HostName bastion.invalid\n    User {}\n    IdentityAgent none\n    ProxyCommand {command}\n",
            local_user()
        ),
    );
}

#[test]
fn doctor_says_the_proxy_command_is_not_installed() {
    let s = Scratch::new();
    proxy_host(&s, "warren-no-such-proxy-tool --target %h --port %p");
    let (r, v) = doctor(&s, "bastion", &[]);
    r.expect_code(1);
    let (id, detail, hint, ids) = failed_at(&v);
    assert_eq!(id, "proxy", "{}", r.describe());
    assert!(
        !ids.iter().any(|i| i == "dns" || i == "tcp"),
        "no dns or tcp step for a hop reached through a command: {ids:?}"
    );
    assert!(
        detail.contains("warren-no-such-proxy-tool --target bastion.invalid --port 22"),
        "the command as run: {detail}"
    );
    assert!(detail.contains("status 127"), "{detail}");
    assert!(detail.contains("not found"), "its stderr: {detail}");
    assert!(hint.contains("not installed"), "{hint}");
}

#[test]
fn doctor_shows_what_a_failing_proxy_command_said_and_the_usual_cause() {
    let s = Scratch::new();
    let cases = [
        (
            "An error occurred (ExpiredTokenException) when calling the StartSession operation: The security token included in the request is expired",
            1,
            "credentials",
        ),
        (
            "SessionManagerPlugin is not found. Please refer to SessionManager Documentation here: http://docs.aws.amazon.com/console/systems-manager/session-manager-plugin-not-found",
            255,
            "session-manager-plugin",
        ),
        ("something else went wrong", 1, "run it by hand"),
    ];
    for (said, status, hint_has) in cases {
        proxy_host(&s, &format!("sh -c 'echo \"{said}\" >&2; exit {status}'"));
        let (r, v) = doctor(&s, "bastion", &[]);
        r.expect_code(1);
        let (id, detail, hint, _) = failed_at(&v);
        assert_eq!(id, "proxy", "{}", r.describe());
        assert!(
            detail.contains(&format!("exited with status {status}")),
            "{detail}"
        );
        assert!(detail.contains(said), "its stderr: {detail}");
        assert!(hint.contains(hint_has), "for {said:?}: {hint}");
    }
}

#[test]
fn doctor_walks_a_proxied_hop_to_the_end() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    let relay = nc(&s);
    let echo = echo_server();
    s.write(
        "ssh_config",
        &host(
            &s,
            "db",
            &sshd,
            &key,
            &format!(
                "    ProxyCommand {relay}\n    LocalForward 127.0.0.1:{} 127.0.0.1:{echo}\n",
                free_port()
            ),
        ),
    );
    let (r, v) = doctor(&s, "db", &[]);
    r.expect_code(0);
    let ids: Vec<&str> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "config", "proxy", "banner", "kex", "host_key", "auth", "forward", "probe"
        ],
        "{}",
        r.describe()
    );
    let proxy = &v["steps"][1];
    assert_eq!(proxy["status"], "pass");
    assert!(
        proxy["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!(
                "exec {}/nc 127.0.0.1 {}",
                s.path().display(),
                sshd.port
            )),
        "{proxy}"
    );
    assert!(
        v["steps"][2]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("SSH-2.0-OpenSSH"),
        "the banner came through the command"
    );
}

#[test]
fn no_exec_refuses_each_command_naming_its_line_and_runs_none() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    let relay = nc(&s);
    let d = s.path().display();
    let marker = |what: &str| format!("touch {d}/ran-{what}");
    let cases = [
        (
            "proxy",
            format!(
                "    ProxyCommand sh -c '{}; exec {relay}'\n",
                marker("proxy")
            ),
            "ProxyCommand",
            11,
        ),
        (
            "khcmd",
            format!("    KnownHostsCommand /bin/sh -c '{}'\n", marker("khcmd")),
            "KnownHostsCommand",
            11,
        ),
        ("match", String::new(), "Match exec", 13),
    ];
    for (name, lines, what, line) in &cases {
        let mut text = host(
            &s,
            name,
            &sshd,
            &key,
            &format!(
                "{lines}    LocalForward 127.0.0.1:{} 127.0.0.1:9\n",
                free_port()
            ),
        );
        if *name == "match" {
            text.push_str(&format!("Match exec \"{}\"\n    Port 1\n", marker("match")));
        }
        s.write("ssh_config", &text);
        let at = format!("{d}/ssh_config:{line}");
        // up: refused before anything runs or is dialled.
        let r = s.warren(&[
            "--no-exec",
            "--ssh-config",
            "ssh_config",
            "--config",
            "/dev/null",
            "up",
            name,
        ]);
        r.expect_code(1).expect_stderr(what).expect_stderr(&at);
        // doctor: the config step fails with the same reason.
        let (r, v) = doctor(&s, name, &["--no-exec"]);
        r.expect_code(1);
        let (id, detail, _, _) = failed_at(&v);
        assert_eq!(id, "config", "{}", r.describe());
        assert!(
            detail.contains(&at) && detail.contains("--no-exec"),
            "{detail}"
        );
        // The environment variable does the same.
        let r = s.warren_env(
            &[
                "--ssh-config",
                "ssh_config",
                "--config",
                "/dev/null",
                "up",
                name,
            ],
            &[("WARREN_NO_EXEC", "1")],
        );
        r.expect_code(1).expect_stderr(&at);
        assert!(
            !s.path().join(format!("ran-{name}")).exists(),
            "{what} did not run under --no-exec"
        );
    }
    // Without --no-exec the Match exec does run (and its block applies).
    let r = s.warren(&["--ssh-config", "ssh_config", "show", "match"]);
    r.expect_code(0).expect_stdout("the block applies");
    assert!(s.path().join("ran-match").exists());
}

#[test]
fn no_exec_holds_for_a_daemon_started_without_it() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    let relay = nc(&s);
    let d = s.path().display();
    let mut text = host(
        &s,
        "plain",
        &sshd,
        &key,
        &format!("    LocalForward 127.0.0.1:{} 127.0.0.1:9\n", free_port()),
    );
    text.push_str(&host(
        &s,
        "proxy",
        &sshd,
        &key,
        &format!(
            "    ProxyCommand sh -c 'touch {d}/ran-proxy; exec {relay}'\n    LocalForward 127.0.0.1:{} 127.0.0.1:9\n",
            free_port()
        ),
    ));
    s.write("ssh_config", &text);
    std::fs::create_dir_all(s.path().join("run")).expect("run");
    let run = format!("{d}/run");
    let warren = |args: &[&str]| {
        let mut all = vec!["--ssh-config", "ssh_config", "--config", "/dev/null"];
        all.extend_from_slice(args);
        s.warren_env(&all, &[("XDG_RUNTIME_DIR", run.as_str())])
    };
    // The daemon starts without --no-exec (for a tunnel that needs no command).
    warren(&["up", "--detach", "plain"]).expect_code(0);
    // It reads the config as --no-exec does for a client that asks so.
    warren(&["--no-exec", "up", "--detach", "proxy"])
        .expect_code(1)
        .expect_stdout("ProxyCommand")
        .expect_stdout("--no-exec")
        .expect_stdout(&format!("{d}/ssh_config:"));
    assert!(
        !s.path().join("ran-proxy").exists(),
        "the daemon ran the ProxyCommand for a --no-exec client"
    );
    warren(&["down", "--all"]).expect_code(0);
}

/// A tunnel opened with `--no-exec` is reopened the same way by the daemon that replaces a
/// killed one, even when that daemon was started without it: its config is not read with
/// commands on (the `Match exec` never runs).
#[test]
fn a_no_exec_tunnel_restored_after_a_restart_runs_no_command() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&[&sshd]);
    let d = s.path().display();
    // Only `other` depends on the Match exec: reading the whole config with commands on runs
    // it, opening `plain` under --no-exec does not need it.
    let mut text = format!(
        "Match host other exec \"touch {d}/ran-match; false\"\n    Port 1\n\nHost other\n    HostName 127.0.0.1\n\n"
    );
    text.push_str(&host(
        &s,
        "plain",
        &sshd,
        &key,
        &format!("    LocalForward 127.0.0.1:{} 127.0.0.1:9\n", free_port()),
    ));
    s.write("ssh_config", &text);
    std::fs::create_dir_all(s.path().join("run")).expect("run");
    let run = format!("{d}/run");
    let warren = |args: &[&str]| {
        let mut all = vec!["--ssh-config", "ssh_config", "--config", "/dev/null"];
        all.extend_from_slice(args);
        s.warren_env(&all, &[("XDG_RUNTIME_DIR", run.as_str())])
    };
    warren(&["--no-exec", "up", "--detach", "plain"]).expect_code(0);
    let state = std::fs::read_to_string(s.path().join("run/warren/tunnels.json")).expect("state");
    assert!(state.contains("\"no_exec\": true"), "{state}");
    let pid: u32 = std::fs::read_to_string(s.path().join("run/warren/daemon.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the daemon did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A client without --no-exec starts the next daemon, which reopens `plain`.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = warren(&["status", "--json"]);
        let v: Value = serde_json::from_str(&r.stdout()).unwrap_or(Value::Null);
        if v.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["state"] == "up")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tunnel did not come back: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !s.path().join("ran-match").exists(),
        "the restored --no-exec tunnel's config was read with commands on"
    );
    warren(&["down", "--all"]).expect_code(0);
}
