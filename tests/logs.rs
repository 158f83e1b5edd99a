//! Logs: the daemon and the TUI write them under the state dir (0600); `warren logs NAME`
//! shows a tunnel's lines; and after a session with a key passphrase and a password (a
//! second factor asked by the daemon and answered on the terminal of `up --detach`), no
//! secret is in any log.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::Scratch;
use support::mfa;
use support::net::{echo_server, echo_through};
use support::sshd::keygen;
use support::tmux::Tmux;
use support::tunnel::have_servers;

const PASSPHRASE: &str = "open sesame 9";

fn ready() -> bool {
    have_servers() && support::require("tmux") && {
        let made = mfa::account();
        if !made && std::env::var("CI").as_deref() == Ok("true") {
            panic!("cannot create the test account {}", mfa::USER);
        }
        made
    }
}

#[test]
fn the_daemon_asks_up_detach_on_its_terminal_and_no_secret_reaches_a_log() {
    if !ready() {
        return;
    }
    let sshd = mfa::sshd("publickey,password");
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", PASSPHRASE, false);
    mfa::authorize(&key.public_line);
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &format!(
            "[storage.postgres.mfa]\nhost = \"127.0.0.1\"\nport = {echo}\n\n[storage.postgres.mfa.ssh_tunnel]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{}\"\nkey_passphrase = \"{PASSPHRASE}\"\n",
            sshd.port,
            mfa::USER,
            key.private.display()
        ),
    );
    let warren = env!("CARGO_BIN_EXE_warren");
    let d = s.path().display();
    let env = format!("HOME={d} XDG_STATE_HOME={d}/state XDG_RUNTIME_DIR={d}/run");
    let t = Tmux::start(&format!(
        "cd {d} && mkdir -p run && {env} {warren} --config epoch.toml --ssh-config /dev/null --known-hosts known_hosts up --detach mfa"
    ));
    // The daemon asks for the second factor; this terminal answers it.
    t.wait_for("password:");
    t.type_text(mfa::PASSWORD);
    t.keys(&["Enter"]);
    let screen = t.wait_for("EXITED 0");
    assert!(screen.contains("mfa"), "{screen}");
    assert!(!screen.contains(mfa::PASSWORD), "echoed:\n{screen}");
    let run = |args: &[&str]| {
        s.warren_env(
            args,
            &[
                ("XDG_STATE_HOME", &format!("{d}/state")),
                ("XDG_RUNTIME_DIR", &format!("{d}/run")),
            ],
        )
    };
    let st = run(&[
        "--config",
        "epoch.toml",
        "--ssh-config",
        "/dev/null",
        "status",
        "--json",
    ]);
    let v = st.json();
    assert_eq!(v[0]["state"], "up", "{v}");
    let local = v[0]["local"][0].as_str().unwrap_or_default().to_string();
    assert_eq!(echo_through(&local, b"logged"), b"logged");
    run(&["down", "--all"]).expect_code(0);

    // The daemon's log says what happened to mfa; `warren logs mfa` shows it.
    let logs = run(&["logs", "mfa"]);
    logs.expect_code(0).expect_stdout("tunnel=mfa");
    assert!(logs.stdout().contains("up"), "{}", logs.describe());
    let dir = s.path().join("state/warren");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the state dir") {
        let p = entry.expect("entry").path();
        if !p.to_string_lossy().contains(".log") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for secret in [PASSPHRASE, mfa::PASSWORD] {
            assert!(
                !text.contains(secret),
                "{} holds a secret:\n{text}",
                p.display()
            );
        }
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    assert!(seen >= 1, "no log was written in {}", dir.display());
}
