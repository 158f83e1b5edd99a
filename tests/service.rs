//! `warren service`: a systemd unit that runs `warren up NAME...`, written where systemd
//! looks, naming the right binary and connections.

mod support;

use support::Scratch;

const EPOCH: &str = "[storage.postgres.orders]\nhost = \"db\"\n[storage.postgres.orders.ssh_tunnel]\nhost = \"bastion\"\n\n[storage.redis.cache]\nhost = \"c\"\n[storage.redis.cache.ssh_tunnel]\nhost = \"bastion\"\n";

#[test]
fn install_writes_a_user_unit_that_runs_warren_up() {
    let s = Scratch::new();
    s.write("epoch.toml", EPOCH);
    let cfg = s.path().join("cfg").display().to_string();
    let env = [("XDG_CONFIG_HOME", cfg.as_str())];
    let r = s.warren_env(
        &[
            "--ssh-config",
            "/dev/null",
            "--config",
            "epoch.toml",
            "service",
            "install",
            "orders",
            "cache",
        ],
        &env,
    );
    r.expect_code(0)
        .expect_stdout("systemctl --user enable --now warren-orders-cache.service");
    let unit_path = s
        .path()
        .join("cfg/systemd/user/warren-orders-cache.service");
    let unit = std::fs::read_to_string(&unit_path).expect("the unit is written");
    let exe = env!("CARGO_BIN_EXE_warren");
    let epoch = s.path().join("epoch.toml").display().to_string();
    assert!(
        unit.contains(&format!(
            "ExecStart={exe} --ssh-config /dev/null --config {epoch} up orders cache"
        )),
        "{unit}"
    );
    assert!(
        unit.contains("Restart=on-failure") && unit.contains("WantedBy=default.target"),
        "{unit}"
    );
    if support::have("systemd-analyze") {
        let run = s.path().join("run");
        std::fs::create_dir_all(&run).expect("run dir");
        // A user manager needs a runtime dir; the test gives it its own.
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(&unit_path)
            .env("XDG_RUNTIME_DIR", &run)
            .output()
            .expect("verify");
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!(
            "systemd-analyze is not installed: the unit's syntax was not verified by systemd"
        );
    }
    s.warren_env(
        &[
            "--config",
            "epoch.toml",
            "service",
            "status",
            "orders",
            "cache",
        ],
        &env,
    )
    .expect_code(0)
    .expect_stdout("installed at");
    s.warren_env(
        &[
            "--config",
            "epoch.toml",
            "service",
            "uninstall",
            "orders",
            "cache",
        ],
        &env,
    )
    .expect_code(0);
    assert!(!unit_path.exists());
    s.warren_env(
        &[
            "--config",
            "epoch.toml",
            "service",
            "status",
            "orders",
            "cache",
        ],
        &env,
    )
    .expect_code(1)
    .expect_stdout("not installed");
    // An unknown connection is refused before anything is written.
    s.warren_env(
        &["--config", "epoch.toml", "service", "install", "nope"],
        &env,
    )
    .expect_code(2)
    .expect_stderr("no connection named 'nope'");
}

/// warren copied into a directory only root may write (`--system` refuses a binary anyone
/// else could replace), under the scratch dir (0700, in sticky /tmp).
fn root_owned_copy(s: &Scratch, dir: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = s.path().join(dir);
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let exe = bin.join("warren");
    std::fs::copy(env!("CARGO_BIN_EXE_warren"), &exe).expect("copy warren");
    exe
}

fn print_system(
    s: &Scratch,
    exe: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> support::Run {
    let mut args = vec![
        "--ssh-config",
        "ssh_config",
        "--config",
        "epoch.toml",
        "service",
        "install",
        "--system",
        "--print",
    ];
    args.extend_from_slice(extra);
    s.run_env(exe, &args, env)
}

#[test]
fn a_system_unit_runs_as_the_user_who_ran_sudo_sandboxed() {
    let s = Scratch::new();
    s.write("epoch.toml", EPOCH);
    s.write(
        "ssh_config",
        "Host relayed\n  HostName db.internal\n  ProxyCommand nc %h %p\n",
    );
    let exe = root_owned_copy(&s, "bin");
    let nobody_home = support::user_home("nobody");

    let r = print_system(&s, &exe, &["orders"], &[("SUDO_USER", "nobody")]);
    r.expect_code(0);
    let unit = r.stdout();
    for line in [
        "User=nobody\n",
        "NoNewPrivileges=yes\n",
        "ProtectSystem=strict\n",
        "ProtectHome=read-only\n",
        "MemoryDenyWriteExecute=yes\n",
        "PrivateTmp=yes\n",
        "CapabilityBoundingSet=\n",
        "WantedBy=multi-user.target\n",
    ] {
        assert!(unit.contains(line), "{line}: {unit}");
    }
    // It may write its logs and the known_hosts file, as nobody sees them, and nothing else.
    assert!(
        unit.contains(&format!(
            "ReadWritePaths=-{nobody_home}/.local/state/warren -{nobody_home}/.ssh/known_hosts\n"
        )),
        "{unit}"
    );
    // Nothing was written.
    assert!(!std::path::Path::new("/etc/systemd/system/warren-orders.service").exists());
    if support::have("systemd-analyze") {
        let path = s.path().join("warren-orders.service");
        std::fs::write(&path, &unit).expect("write unit");
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("verify");
        // systemd warns of `nobody` itself (a shared account); the test has no other user.
        let said: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("Special user nobody"))
            .collect();
        assert!(
            out.status.success() && !said.contains("warren-orders.service:"),
            "systemd-analyze verify: {said}\n{unit}"
        );
    }

    // A connection that runs a command keeps a writable home (an SSM or IAP helper caches
    // credentials there), and the unit says why.
    let r = print_system(&s, &exe, &["relayed"], &[("SUDO_USER", "nobody")]);
    r.expect_code(0);
    let unit = r.stdout();
    assert!(
        !unit.lines().any(|l| l.starts_with("ProtectHome=")),
        "{unit}"
    );
    assert!(
        unit.contains("No ProtectHome=read-only or MemoryDenyWriteExecute: relayed runs a command"),
        "{unit}"
    );

    // --user names the user; root is refused, and so is not knowing whom.
    print_system(&s, &exe, &["--user", "nobody", "orders"], &[])
        .expect_code(0)
        .expect_stdout("User=nobody\n");
    print_system(&s, &exe, &["--user", "root", "orders"], &[])
        .expect_code(2)
        .expect_stderr("will not install a system unit that runs as root");
    print_system(&s, &exe, &["orders"], &[])
        .expect_code(2)
        .expect_stderr("cannot tell which");
    print_system(&s, &exe, &["--user", "no-such-user-here", "orders"], &[])
        .expect_code(2)
        .expect_stderr("no user named no-such-user-here");
}

#[test]
fn a_system_unit_refuses_a_binary_others_could_replace() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    s.write("epoch.toml", EPOCH);
    s.write("ssh_config", "");
    let env = [("SUDO_USER", "nobody")];

    // A directory another user owns.
    let exe = root_owned_copy(&s, "theirs");
    let status = std::process::Command::new("chown")
        .arg("nobody")
        .arg(s.path().join("theirs"))
        .status()
        .expect("chown");
    assert!(status.success());
    let r = print_system(&s, &exe, &["orders"], &env);
    r.expect_code(2)
        .expect_stderr("theirs belongs to nobody")
        .expect_stderr("sudo install -m 0755");
    assert!(r.stdout().is_empty(), "{}", r.describe());

    // A directory everyone may write to (not sticky).
    let exe = root_owned_copy(&s, "open");
    std::fs::set_permissions(
        s.path().join("open"),
        std::fs::Permissions::from_mode(0o777),
    )
    .expect("chmod");
    print_system(&s, &exe, &["orders"], &env)
        .expect_code(2)
        .expect_stderr("open is writable by everyone (mode 0777)");

    // The binary itself group-writable.
    let exe = root_owned_copy(&s, "grp");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o775)).expect("chmod");
    print_system(&s, &exe, &["orders"], &env)
        .expect_code(2)
        .expect_stderr("is writable by its group (mode 0775)");
}

/// The macOS LaunchAgent (compiled on every system, written on macOS), read back by a real
/// property-list parser: Python's plistlib.
#[test]
fn the_launch_agent_is_a_plist_launchd_reads_with_every_key() {
    use warren::cli::{launchd, service};
    use warren::config::Paths;
    if !support::require("python3") {
        return;
    }
    let s = Scratch::new();
    let paths = Paths {
        ssh_config: Some("/Users/me/my ssh/config".into()),
        epoch: Some("/Users/me/a&b <c>.toml".into()),
        known_hosts: None,
        epoch_is_project: false,
    };
    let names = vec!["orders".to_string(), "epoch:cache".to_string()];
    let argv = service::argv(
        std::path::Path::new("/usr/local/bin/warren"),
        &paths,
        &names,
        false,
    );
    let label = launchd::label(&names);
    let text = launchd::plist(
        &label,
        &argv,
        std::path::Path::new("/Users/me/.local/state/warren"),
    );
    let file = s.write("agent.plist", &text);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import plistlib, json, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "plistlib refused it: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["Label"], "dev.warren.orders-epoch-cache");
    assert_eq!(
        v["ProgramArguments"],
        serde_json::json!([
            "/usr/local/bin/warren",
            "--ssh-config",
            "/Users/me/my ssh/config",
            "--config",
            "/Users/me/a&b <c>.toml",
            "up",
            "orders",
            "epoch:cache"
        ])
    );
    assert_eq!(v["RunAtLoad"], true);
    assert_eq!(v["KeepAlive"]["SuccessfulExit"], false);
    assert_eq!(v["EnvironmentVariables"][launchd::SERVICE_ENV], "1");
    let log = "/Users/me/.local/state/warren/service.log";
    assert_eq!(v["StandardOutPath"], log);
    assert_eq!(v["StandardErrorPath"], log);
    assert_eq!(v["SoftResourceLimits"]["NumberOfFiles"], 65536);
}

#[test]
fn an_on_demand_service_runs_warren_up_on_demand() {
    let s = Scratch::new();
    s.write("epoch.toml", EPOCH);
    let r = s.warren(&[
        "--ssh-config",
        "/dev/null",
        "--config",
        "epoch.toml",
        "service",
        "install",
        "--print",
        "--on-demand",
        "orders",
    ]);
    r.expect_code(0);
    let epoch = s.path().join("epoch.toml").display().to_string();
    assert!(
        r.stdout().contains(&format!(
            "--ssh-config /dev/null --config {epoch} up --on-demand orders"
        )),
        "{}",
        r.describe()
    );
}
