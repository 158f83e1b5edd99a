//! The TUI in a real terminal (tmux) against a real sshd: the list, the filter, a tunnel
//! opened with Enter that carries data, the diagnostics pane, and quit with q / y.

mod support;

use support::net::{echo_server, echo_through};
use support::sshd::{Sshd, free_port};
use support::tmux::Tmux;
use support::tunnel::{have_servers, local_user, with_key};

#[test]
fn the_tui_lists_filters_opens_a_tunnel_diagnoses_and_quits() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let local = free_port();
    s.write(
        "ssh_config",
        &format!(
            "Host db\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{echo}\n\nHost other\n    HostName other.example.com\n",
            sshd.port,
            local_user()
        ),
    );
    let warren = env!("CARGO_BIN_EXE_warren");
    let t = Tmux::start(&format!(
        "cd {} && HOME={} XDG_STATE_HOME={}/state {warren} --ssh-config ssh_config --known-hosts known_hosts",
        s.path().display(),
        s.path().display(),
        s.path().display()
    ));
    let screen = t.wait_for("connections");
    assert!(
        screen.contains("db") && screen.contains("other"),
        "{screen}"
    );

    // Filter down to db.
    t.keys(&["/"]);
    t.type_text("db");
    t.wait_until("the filter to hide 'other'", |s| {
        s.contains("filter: /db") && !s.contains("other.example.com")
    });
    t.keys(&["Enter"]);

    // Open it and move data through it.
    t.keys(&["Enter"]);
    t.wait_until("db up", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("db"))
    });
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"through the TUI's tunnel"),
        b"through the TUI's tunnel"
    );

    // The diagnostics fill in step by step.
    t.keys(&["d"]);
    let screen = t.wait_for("no step failed");
    for step in [
        "config", "dns", "tcp", "banner", "kex", "host_key", "auth", "forward", "probe",
    ] {
        assert!(screen.contains(step), "step {step} missing:\n{screen}");
    }
    t.keys(&["Escape"]);

    // q asks first (a tunnel is open), y quits, the tunnel closes, the process exits 0.
    t.keys(&["q"]);
    t.wait_for("Tunnels are open");
    t.keys(&["y"]);
    t.wait_for("EXITED 0");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
        "the tunnel closed on quit"
    );
    let log = std::fs::read_to_string(s.path().join("state/warren/warren.log")).unwrap_or_default();
    assert!(
        log.contains("\"event\":\"listening\""),
        "the TUI logs to a file under the state dir:\n{log}"
    );
}
