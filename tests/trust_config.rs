//! A project's `./epoch.toml` runs nothing until the user trusts it: a hostile file in the
//! working directory (a ProxyCommand that leaves a marker, known_hosts_file pointed at
//! authorized_keys, host_key_alias "restrict", password_file at the user's private key) is
//! listed, but `list`, `doctor`, `up`, the TUI and the daemon run none of it, and say what was held
//! back and how to trust the file; after `warren trust-config` the command runs; one changed
//! byte untrusts the file again. An entry that asks for nothing of that kind works untrusted,
//! and the daemon works in `/`.

mod support;

use std::path::Path;

use support::Scratch;
use support::sshd::Sshd;
use support::tunnel::{have_servers, local_user, with_key};

fn warren(s: &Scratch, args: &[&str]) -> support::Run {
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    let run = format!("{}/run", s.path().display());
    std::fs::create_dir_all(&run).expect("run dir");
    s.warren_env(&all, &[("XDG_RUNTIME_DIR", &run)])
}

/// warren run in the project directory `proj` under the scratch home (HOME stays the
/// scratch dir, so `~/.ssh` is outside the project).
fn in_project(s: &Scratch, args: &[&str]) -> support::Run {
    let proj = s.path().join("proj");
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    let run = format!("{}/run", s.path().display());
    std::fs::create_dir_all(&run).expect("run dir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.args(&all)
        .current_dir(&proj)
        .env("HOME", s.path())
        .env("XDG_RUNTIME_DIR", &run);
    for (k, _) in std::env::vars() {
        if k.starts_with("EPOCH_") || k.starts_with("XDG_CONFIG") || k == "SSH_AUTH_SOCK" {
            cmd.env_remove(k);
        }
    }
    support::Run {
        args: all.iter().map(|a| a.to_string()).collect(),
        output: cmd.output().expect("run warren"),
    }
}

fn hostile(sshd: &Sshd, marker: &Path) -> String {
    format!(
        "[storage.postgres.evil]\nhost = \"127.0.0.1\"\nport = 5432\npassword_file = \"~/.ssh/id_ed25519\"\nlocal_bind = \"0.0.0.0\"\n\n[storage.postgres.evil.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\nproxy_command = \"touch {m}; exec nc 127.0.0.1 {port}\"\nknown_hosts_file = \"~/.ssh/authorized_keys\"\nhost_key_alias = \"restrict\"\n",
        port = sshd.port,
        user = local_user(),
        m = marker.display()
    )
}

#[test]
fn a_directorys_epoch_toml_runs_nothing_until_trusted() {
    if !have_servers() || !support::require("nc") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let proj = s.path().join("proj");
    std::fs::create_dir_all(&proj).expect("proj");
    // The project's own key and known_hosts, inside its directory.
    std::fs::copy(&key, proj.join("id_ed25519")).expect("copy key");
    std::fs::copy(s.path().join("known_hosts"), proj.join("known_hosts")).expect("copy kh");
    let key = proj.join("id_ed25519").display().to_string();
    let marker = s.path().join("MARKER");
    s.write(".ssh/authorized_keys", "");
    s.write(".ssh/id_ed25519", "not really a key\n");
    let plain = format!(
        "[storage.postgres.plain]\nhost = \"127.0.0.1\"\nport = 5432\n\n[storage.postgres.plain.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{key}\"\n",
        sshd.port,
        local_user()
    );
    s.write(
        "proj/epoch.toml",
        &format!("{}\n{plain}", hostile(&sshd, &marker)),
    );

    // Listed, with one warning that says what to do; nothing ran.
    let r = in_project(&s, &["list"]);
    assert!(r.stdout().contains("evil"), "{}", r.describe());
    r.expect_stderr("epoch.toml is not trusted")
        .expect_stderr("warren trust-config epoch.toml");
    assert!(!marker.exists(), "list ran the ProxyCommand");

    // doctor and up refuse the entry at once, naming what was held back, line by line.
    let r = in_project(&s, &["doctor", "evil", "--json"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    let v = r.json();
    let config = &v["steps"][0];
    assert_eq!(config["id"], "config", "{v:#}");
    assert_eq!(config["status"], "fail", "{v:#}");
    let detail = config["detail"].as_str().unwrap_or_default();
    for held in [
        "proxy_command runs a command (epoch.toml:11)",
        "known_hosts_file changes where host keys are checked and written",
        "host_key_alias changes the name",
        "password_file reads",
        "local_bind 0.0.0.0 lets other hosts use the tunnel (epoch.toml:5)",
    ] {
        assert!(detail.contains(held), "{held}: {detail}");
    }
    assert!(!marker.exists(), "doctor ran the ProxyCommand");
    let r = in_project(&s, &["up", "--detach", "evil"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    // Through the daemon, which was handed the file by its absolute path and keeps its need
    // for trust.
    r.expect_stdout("evil is not opened")
        .expect_stdout("proj/epoch.toml is not trusted");
    assert!(!marker.exists(), "up ran the ProxyCommand");
    assert_eq!(
        std::fs::read_to_string(s.path().join(".ssh/authorized_keys")).unwrap_or_default(),
        "",
        "authorized_keys was written"
    );

    // An entry that asks for nothing of the kind works untrusted (through the daemon, which
    // works in `/`).
    in_project(&s, &["up", "--detach", "plain"]).expect_code(0);
    let status = in_project(&s, &["status", "--json"]).json();
    assert_eq!(status[0]["state"], "up", "{status:#}");
    let pids = std::process::Command::new("pgrep")
        .args(["-f", &format!("{}/epoch.toml", proj.display())])
        .output()
        .expect("pgrep");
    let pids = String::from_utf8_lossy(&pids.stdout).to_string();
    let pid = pids.lines().next().unwrap_or_default().trim().to_string();
    assert!(
        !pid.is_empty(),
        "the daemon is named its epoch.toml by absolute path"
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("daemon cwd");
    assert_eq!(cwd, Path::new("/"));
    // The daemon keeps the file's need for trust: the hostile entry is refused there too.
    let r = in_project(&s, &["up", "--detach", "evil"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    assert!(!marker.exists(), "the daemon ran the ProxyCommand");
    in_project(&s, &["down", "--all"]).expect_code(0);

    // Trusted: the file's entries may run what it names.
    std::fs::write(
        proj.join("epoch.toml"),
        format!("{}\n", hostile_runnable(&sshd, &marker)),
    )
    .expect("write");
    let r = in_project(&s, &["trust-config"]);
    r.expect_code(0).expect_stdout("trusted epoch.toml");
    assert!(
        r.stdout().contains("proxy_command runs a command"),
        "it says what it now allows: {}",
        r.describe()
    );
    let r = in_project(&s, &["doctor", "runnable", "--json"]);
    assert!(
        marker.exists(),
        "a trusted file's ProxyCommand runs: {}",
        r.describe()
    );
    std::fs::remove_file(&marker).expect("rm marker");

    // One byte changed: untrusted again.
    let mut text = std::fs::read_to_string(proj.join("epoch.toml")).expect("read");
    text.push(' ');
    std::fs::write(proj.join("epoch.toml"), text).expect("write");
    let r = in_project(&s, &["doctor", "runnable", "--json"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    assert!(!marker.exists(), "a changed file ran its ProxyCommand");

    // --revoke forgets a file.
    in_project(&s, &["trust-config"]).expect_code(0);
    in_project(&s, &["trust-config", "--revoke"])
        .expect_code(0)
        .expect_stdout("no longer trusted");
    let r = in_project(&s, &["doctor", "runnable", "--json"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    assert!(!marker.exists());
}

/// An entry whose only held-back setting is its ProxyCommand (so that, trusted, it runs).
fn hostile_runnable(sshd: &Sshd, marker: &Path) -> String {
    format!(
        "[storage.postgres.runnable]\nhost = \"127.0.0.1\"\nport = 5432\n\n[storage.postgres.runnable.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\nproxy_command = \"touch {m}; exec nc 127.0.0.1 {port}\"\n",
        port = sshd.port,
        user = local_user(),
        m = marker.display()
    )
}

/// The user's own file (named with --config, or in ~/.config/epoch) needs no trust, unless
/// others may write to it.
#[test]
fn the_users_own_file_needs_no_trust_unless_others_may_write_it() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let marker = s.path().join("MARKER");
    let text = format!(
        "[storage.postgres.mine]\nhost = \"127.0.0.1\"\n[storage.postgres.mine.ssh_tunnel]\nhost = \"127.0.0.1\"\nproxy_command = \"touch {}\"\n",
        marker.display()
    );
    let own = s.write(".config/epoch/epoch.toml", &text);
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = warren(&s, &["list"]);
    assert!(!r.stderr().contains("not trusted"), "{}", r.describe());
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let r = warren(&s, &["list"]);
    r.expect_stderr("others may write to it");
    let r = warren(&s, &["doctor", "mine"]);
    assert_ne!(r.code(), 0, "{}", r.describe());
    assert!(!marker.exists());
}

/// Names that would reach a shell as `%h` / `%r` are refused as OpenSSH 9.6 refuses them on
/// its command line, before any command starts: a host or user in an ssh_tunnel table, and a
/// jump_host alias (whose ssh_config `Match exec` would get it).
#[test]
fn shell_metacharacters_in_names_are_refused_before_any_command_runs() {
    let s = Scratch::new();
    let seen = s.path().join("SEEN");
    let marker = s.path().join("MARKER");
    s.write(
        "ssh_config",
        &format!("Match exec \"echo %h >> {}\"\n  User x\n", seen.display()),
    );
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.a]\nhost = \"db\"\n[storage.postgres.a.ssh_tunnel]\nhost = \"b;touch {m}\"\n\n[storage.postgres.b]\nhost = \"db\"\n[storage.postgres.b.ssh_tunnel]\nhost = \"bastion\"\nuser = \"-oProxyCommand=touch {m}\"\n\n[storage.postgres.c]\nhost = \"db\"\n[storage.postgres.c.ssh_tunnel]\nhost = \"bastion\"\njump_host = \"edge$(touch {m})\"\n",
            m = marker.display()
        ),
    );
    let r = s.warren(&["--ssh-config", "ssh_config", "list"]);
    let e = r.stderr();
    assert!(
        e.contains("epoch.toml:4")
            && e.contains("holds ';', which OpenSSH 9.6 refuses in a host name"),
        "{}",
        r.describe()
    );
    assert!(
        e.contains("epoch.toml:10")
            && e.contains("starts with '-', which OpenSSH 9.6 refuses in a user name"),
        "{}",
        r.describe()
    );
    assert!(
        e.contains("epoch.toml:16") && e.contains("jump_host 'edge$(touch"),
        "{}",
        r.describe()
    );
    assert!(!marker.exists());
    assert!(
        !std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .contains("edge"),
        "the jump_host name reached Match exec"
    );
}

/// ~/.ssh/config that others may write to is refused as ssh refuses it ("Bad owner or
/// permissions"), and none of it is read; a file named with --ssh-config (ssh's -F) is not
/// checked, by ssh either (checked here against ssh -G -F on the same file).
#[test]
fn an_ssh_config_others_may_write_is_refused_as_ssh_refuses_it() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let cfg = s.write(
        ".ssh/config",
        "Host db-tunnel\n  HostName 10.0.0.5\n  LocalForward 15432 127.0.0.1:5432\n",
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let r = s.warren(&["list"]);
    r.expect_code(2)
        .expect_stderr("Bad owner or permissions on")
        .expect_stderr("chmod go-w");
    assert!(!r.stdout().contains("db-tunnel"), "{}", r.describe());
    // With -F (--ssh-config) neither checks.
    let r = s.warren(&["--ssh-config", &cfg.display().to_string(), "list"]);
    r.expect_code(0).expect_stdout("db-tunnel");
    if support::require("ssh") {
        let out = std::process::Command::new("ssh")
            .args(["-G", "-F", &cfg.display().to_string(), "db-tunnel"])
            .output()
            .expect("ssh -G");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    s.warren(&["list"])
        .expect_code(0)
        .expect_stdout("db-tunnel");
}

/// A daemon directory warren will not use (another user's) is not "no daemon": status, down,
/// extend and reconnect say they cannot reach it, and why, and exit 1.
#[test]
fn a_daemon_that_cannot_be_reached_is_not_reported_as_none() {
    let s = Scratch::new();
    let run = s.path().join("run");
    std::fs::create_dir_all(run.join("warren")).expect("mkdir");
    let chown = std::process::Command::new("chown")
        .args(["65534", &run.join("warren").display().to_string()])
        .status();
    if !matches!(chown, Ok(st) if st.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot chown (the tests run as root under CI)"
        );
        eprintln!("SKIPPED: cannot chown the runtime dir to another user");
        return;
    }
    let env = [("XDG_RUNTIME_DIR", run.to_str().unwrap_or_default())];
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["down", "--all"],
        vec!["reconnect"],
    ] {
        let r = s.warren_env(&args, &env);
        assert_eq!(r.code(), 1, "{}", r.describe());
        assert!(
            r.stderr().contains("cannot reach the daemon")
                && r.stderr().contains("belongs to another user"),
            "{}",
            r.describe()
        );
        assert!(
            !r.stdout().contains("no tunnels are running"),
            "{}",
            r.describe()
        );
        assert!(
            !r.stderr().contains("no daemon is running"),
            "{}",
            r.describe()
        );
    }
}

/// The TUI (a real terminal, tmux) started in a directory with a hostile epoch.toml lists
/// its entry; opening it is refused as untrusted, diagnosing it shows what was held back, and
/// neither runs anything: the marker is never made and authorized_keys stays empty.
#[test]
fn the_tui_in_a_hostile_project_runs_nothing() {
    if !have_servers() || !support::require("tmux") || !support::require("nc") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, _key) = with_key(&sshd);
    let marker = s.path().join("MARKER");
    s.write(".ssh/authorized_keys", "");
    s.write("proj/epoch.toml", &hostile(&sshd, &marker));
    std::fs::create_dir_all(s.path().join("run")).expect("run dir");
    let d = s.path().display();
    let t = support::tmux::Tmux::start(&format!(
        "cd {d}/proj && HOME={d} XDG_STATE_HOME={d}/state XDG_RUNTIME_DIR={d}/run XDG_CONFIG_HOME={d}/.config {} --ssh-config /dev/null --known-hosts {d}/known_hosts",
        env!("CARGO_BIN_EXE_warren")
    ));
    t.wait_for("evil");
    // Open it: refused, as the file is not trusted.
    t.keys(&["Enter"]);
    t.wait_for("evil is not opened: epoch.toml is not tru");
    assert!(!marker.exists(), "opening in the TUI ran the ProxyCommand");
    // Diagnose it: the config step fails and nothing runs.
    t.keys(&["d"]);
    t.wait_for("proxy_command runs a command");
    assert!(
        !marker.exists(),
        "the TUI's diagnostics ran the ProxyCommand"
    );
    t.keys(&["Escape", "q"]);
    t.wait_for("EXITED 0");
    assert!(!marker.exists());
    assert_eq!(
        std::fs::read_to_string(s.path().join(".ssh/authorized_keys")).expect("authorized_keys"),
        "",
        "nothing was written into authorized_keys"
    );
}
