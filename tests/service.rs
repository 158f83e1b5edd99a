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
