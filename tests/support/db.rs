//! What the database tests share: warren run with the scratch home's known_hosts and a runtime
//! dir of its own, an epoch.toml entry reaching a database on loopback through an sshd, and
//! doctor's probe step read from `--json`.
#![allow(dead_code)]

use serde_json::Value;

use super::Scratch;
use super::sshd::Sshd;
use super::tunnel::local_user;

/// warren with `--ssh-config /dev/null --known-hosts known_hosts` and its own runtime dir.
pub fn warren(s: &Scratch, args: &[&str]) -> super::Run {
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    let run = format!("{}/run", s.path().display());
    std::fs::create_dir_all(&run).expect("run dir");
    s.warren_env(&all, &[("XDG_RUNTIME_DIR", &run)])
}

/// As [`warren`], with `input` on stdin (for a client that `connect` runs).
pub fn warren_stdin(s: &Scratch, args: &[&str], input: &str) -> super::Run {
    let mut all = vec!["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    all.extend_from_slice(args);
    let run = format!("{}/run", s.path().display());
    std::fs::create_dir_all(&run).expect("run dir");
    s.warren_stdin(&all, &[("XDG_RUNTIME_DIR", &run)], input)
}

/// `[storage.ENGINE.NAME]` for 127.0.0.1:`port` through `sshd` with `key`, `lines` in the
/// database table.
pub fn entry(engine: &str, name: &str, port: u16, sshd: &Sshd, key: &str, lines: &str) -> String {
    format!(
        "[storage.{engine}.{name}]\nhost = \"127.0.0.1\"\nport = {port}\n{lines}\n[storage.{engine}.{name}.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{key}\"\n\n",
        sshd.port,
        local_user()
    )
}

/// doctor's probe step for `name` (with `args` before `doctor`): exit code, status, detail,
/// hint.
pub fn probe_with(s: &Scratch, args: &[&str], name: &str) -> (i32, String, String, String) {
    let mut all = args.to_vec();
    all.extend(["doctor", name, "--json"]);
    let r = s.warren(&all);
    assert!(!r.stderr().contains("panicked"), "{}", r.describe());
    let v = r.json();
    let p: Value = v["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "probe").cloned())
        .unwrap_or_else(|| panic!("no probe step:\n{}", r.describe()));
    let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    (r.code(), text("status"), text("detail"), text("hint"))
}

/// doctor's probe step for `name` through an entry's sshd (known_hosts in the scratch home).
pub fn probe(s: &Scratch, name: &str) -> (i32, String, String, String) {
    probe_with(
        s,
        &["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"],
        name,
    )
}

/// Polls `warren status --json` until the first tunnel's `health.ok` is `want`, for at most
/// 10 s; that health and how long it took.
pub fn wait_health(s: &Scratch, want: bool) -> (Value, std::time::Duration) {
    let t = std::time::Instant::now();
    loop {
        let v = warren(s, &["status", "--json"]).json();
        let h = v[0]["health"].clone();
        if h["ok"].as_bool() == Some(want) {
            return (h, t.elapsed());
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "health.ok never became {want} within 10 s: {v:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
