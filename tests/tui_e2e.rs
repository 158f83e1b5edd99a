//! The TUI in a real terminal (tmux) against a real sshd: the list as a table at 120 columns
//! (a header, 40-character targets whole, S sorting), the filter, a tunnel opened with Enter
//! that carries data, the diagnostics pane, quit with q / y, the setup form from a HOME
//! with nothing in it, a 400-character error read whole in the details and in `l`, host
//! key answers that hold for what they say (a saved key across a bastion restart, "once"
//! across reconnects, "no" that stops the tunnel), and tunnels left running that the
//! daemon cannot open staying in the TUI with the reason.

mod support;

use support::net::{echo_server, echo_through};
use support::sshd::{Sshd, free_port};
use support::tmux::{HOST_KEY_QUESTION, Tmux, unwrapped};
use support::tunnel::{have_servers, local_user, unknown_host, with_key};

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
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts",
    );
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
    t.quit_closing_tunnels();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
        "the tunnel closed on quit"
    );
    let log = std::fs::read_to_string(s.path().join("state/warren/warren.log")).unwrap_or_default();
    assert!(
        log.contains("listening on") && log.contains("tunnel=db"),
        "the TUI logs to a file under the state dir:\n{log}"
    );
}

#[test]
fn the_tui_attaches_to_the_daemon_and_toggles_its_tunnel() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, local, run) = daemon_scratch(&sshd);
    let env = [("XDG_RUNTIME_DIR", run.as_str())];
    let args = ["--ssh-config", "/dev/null", "--known-hosts", "known_hosts"];
    let warren_cli = |extra: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend_from_slice(extra);
        s.warren_env(&a, &env)
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> support::Run);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "--all"]);
        }
    }
    let _cleanup = Down(&warren_cli);
    warren_cli(&["up", "--detach", "pg"]).expect_code(0);

    let t = Tmux::warren(
        s.path(),
        &format!("XDG_RUNTIME_DIR={run}"),
        "--ssh-config /dev/null --known-hosts known_hosts",
    );
    t.wait_until("pg up, attached", |s| {
        s.contains("attached to the daemon")
            && s.lines().any(|l| l.contains(" up ") && l.contains("pg"))
    });
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"daemon tunnel"),
        b"daemon tunnel"
    );

    // Enter closes it in the daemon; Enter again opens it there.
    t.keys(&["Enter"]);
    t.wait_until("pg down", |s| {
        s.lines().any(|l| l.contains("down") && l.contains("pg"))
    });
    let v = warren_cli(&["status", "--json"]).json();
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(0),
        "closed in the daemon: {v}"
    );
    t.keys(&["Enter"]);
    t.wait_until("pg up again", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("pg"))
    });

    // Quitting leaves it running in the daemon.
    t.keys(&["q"]);
    t.wait_for("Tunnels run in the daemon");
    t.keys(&["y"]);
    t.wait_for("EXITED 0");
    let v = warren_cli(&["status", "--json"]).json();
    assert_eq!(v[0]["name"], "pg");
    assert_eq!(v[0]["state"], "up", "left running: {v}");
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"still there"),
        b"still there"
    );
}

#[test]
fn tunnels_opened_in_the_tui_can_be_left_running_on_quit() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, local, run) = daemon_scratch(&sshd);
    let env = [("XDG_RUNTIME_DIR", run.as_str())];
    let status = || {
        s.warren_env(
            &[
                "--ssh-config",
                "/dev/null",
                "--known-hosts",
                "known_hosts",
                "status",
                "--json",
            ],
            &env,
        )
        .json()
    };
    let t = Tmux::warren(
        s.path(),
        &format!("XDG_RUNTIME_DIR={run}"),
        "--ssh-config /dev/null --known-hosts known_hosts",
    );
    let screen = t.wait_for("connections");
    assert!(
        !screen.contains("attached to the daemon"),
        "no daemon yet:\n{screen}"
    );
    t.keys(&["Enter"]);
    t.wait_until("pg up", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("pg"))
    });
    t.keys(&["q"]);
    t.wait_for("leave them running");
    t.keys(&["l"]);
    t.wait_for("EXITED 0");
    let v = status();
    let guard = scopeguard(&s, &env);
    assert_eq!(v[0]["name"], "pg", "the daemon took the tunnel over: {v}");
    assert_eq!(v[0]["state"], "up");
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"handed over"),
        b"handed over",
        "on the same local port"
    );
    drop(guard);
}

/// Closes the daemon's tunnels (and so the daemon) when dropped.
fn scopeguard<'a>(s: &'a support::Scratch, env: &'a [(&'a str, &'a str)]) -> impl Drop + 'a {
    struct G<'a>(&'a support::Scratch, &'a [(&'a str, &'a str)]);
    impl Drop for G<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .warren_env(&["--ssh-config", "/dev/null", "down", "--all"], self.1);
        }
    }
    G(s, env)
}

#[test]
fn the_list_at_120_columns_has_a_header_whole_targets_and_sorts() {
    if !support::require("tmux") {
        return;
    }
    let s = support::Scratch::new();
    let targets = [
        ("orders-replica", "orders-primary-replica2.db.internal:5432"),
        (
            "billing-warehouse",
            "billing-analytics-warehouse.db.corp:5432",
        ),
        ("cache-eu", "cache-sessions-eu-west1a.redis.corp:6379"),
        ("ledger-cold", "ledger-archive-coldstore12.db.corp:15432"),
    ];
    for (_, t) in targets {
        assert_eq!(t.len(), 40, "{t}");
    }
    let epoch: String = targets[..2]
        .iter()
        .map(|(name, t)| {
            let (host, port) = t.rsplit_once(':').expect("host:port");
            format!(
                "[storage.postgres.{name}]\nhost = \"{host}\"\nport = {port}\n\n[storage.postgres.{name}.ssh_tunnel]\nhost = \"bastion.example.com\"\nuser = \"ops\"\n\n"
            )
        })
        .collect();
    s.write("epoch.toml", &epoch);
    let ssh: String = targets[2..]
        .iter()
        .enumerate()
        .map(|(i, (name, t))| {
            format!(
                "Host {name}\n    HostName jump{i}.example.com\n    LocalForward {} {t}\n\n",
                16000 + i
            )
        })
        .collect();
    s.write("ssh_config", &ssh);
    let t = Tmux::warren(s.path(), "", "--ssh-config ssh_config --config epoch.toml");
    let screen = t.wait_for("ledger-cold");
    let header = screen
        .lines()
        .find(|l| l.contains("STATE") && l.contains("NAME"))
        .unwrap_or_else(|| panic!("no header row:\n{screen}"));
    for h in ["LOCAL", "TARGET", "VIA"] {
        assert!(header.contains(h), "{h} missing from {header}");
    }
    let row_of = |screen: &str, name: &str| {
        screen
            .lines()
            .position(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{screen}"))
    };
    for (name, target) in targets {
        let line = &screen
            .lines()
            .nth(row_of(&screen, name))
            .unwrap_or_default();
        assert!(line.contains(target), "{target} not whole:\n{screen}");
    }
    let order = |screen: &str| {
        let mut rows: Vec<(usize, &str)> = targets
            .iter()
            .map(|(n, _)| (row_of(screen, n), *n))
            .collect();
        rows.sort();
        rows.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
    };
    assert_eq!(
        order(&screen),
        [
            "billing-warehouse",
            "cache-eu",
            "ledger-cold",
            "orders-replica"
        ],
        "by name"
    );
    // S: by state (all down: by name), S again: by source, ssh_config first.
    t.keys(&["S"]);
    t.wait_for("sorted by state");
    t.keys(&["S"]);
    let screen = t.wait_for("sorted by source");
    assert_eq!(
        order(&screen),
        [
            "cache-eu",
            "ledger-cold",
            "billing-warehouse",
            "orders-replica"
        ],
        "by source:\n{screen}"
    );
    t.keys(&["q"]);
    t.wait_for("EXITED 0");
}

/// The setup form in a real terminal, from a HOME with no config directories at all: it
/// writes ~/.config/epoch/epoch.toml and the key (0600 in a 0700 ~/.ssh, at the default path),
/// shows the bastion's lines, and Enter runs the diagnostics, which pass once the bastion
/// has the key.
#[test]
fn the_setup_form_from_nothing_writes_the_entry_and_the_key_and_tests_them() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let Some(pg) = support::postgres::Postgres::start() else {
        return;
    };
    let sshd = Sshd::start("");
    let home = support::Scratch::new();
    let elsewhere = support::Scratch::new();
    let known_hosts = elsewhere.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let e = elsewhere.path().display();
    let t = Tmux::warren(
        home.path(),
        &format!("XDG_STATE_HOME={e}/state XDG_RUNTIME_DIR={e}/run"),
        &format!(
            "--ssh-config /dev/null --known-hosts {}",
            known_hosts.display()
        ),
    );
    t.wait_for("No connections yet");
    t.keys(&["s"]);
    t.wait_for("step 1 of 3");
    // engine: postgres (the default); then target, name, bastion; the rest as they are.
    t.keys(&["Tab"]);
    t.type_text(&format!("127.0.0.1:{}", pg.port));
    t.keys(&["Tab"]);
    t.type_text("fromtui");
    t.keys(&["Tab"]);
    t.type_text(&format!("{}@127.0.0.1:{}", local_user(), sshd.port));
    t.wait_for("step 2 of 3");
    t.keys(&["Tab", "Tab", "Tab", "Tab"]);
    let screen = t.wait_for("~/.ssh/id_ed25519_fromtui (default)");
    assert!(screen.contains("step 3 of 3"), "{screen}");
    t.keys(&["Enter"]);
    let screen = t.wait_for("nothing is yet");
    assert!(
        screen.contains("create ~/.ssh, ~/.config, ~/.config/epoch (0700)"),
        "{screen}"
    );
    assert!(
        !home.path().join(".config").exists(),
        "nothing written before the summary is confirmed"
    );
    t.keys(&["Enter"]);
    let screen = t.wait_for("saved 'fromtui'");
    assert!(screen.contains("permitopen="), "{screen}");
    // The bastion's line, whole: `c` puts it on the clipboard, `w` writes every line to a file.
    let public = std::fs::read_to_string(home.path().join(".ssh/id_ed25519_fromtui.pub"))
        .expect("pub")
        .trim()
        .to_string();
    let line = format!(
        "restrict,port-forwarding,permitopen=\"127.0.0.1:{}\" {public}",
        pg.port
    );
    t.accept_clipboard();
    t.keys(&["c"]);
    t.clipboard(|c| c == line);
    t.wait_for("sent the authorized_keys line");
    t.keys(&["w"]);
    let written = home.path().join("warren-fromtui-bastion.txt");
    t.wait_for(&format!("wrote {}", written.display()));
    let file = std::fs::read_to_string(&written).expect("the instructions file");
    assert!(
        file.lines().any(|l| l
            == format!(
                "echo '{line}' | sudo tee -a ~{}/.ssh/authorized_keys",
                local_user()
            )),
        "{file}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |rel: &str| {
        std::fs::metadata(home.path().join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".ssh"), 0o700);
    assert_eq!(mode(".ssh/id_ed25519_fromtui"), 0o600);
    assert_eq!(mode(".config/epoch"), 0o700);
    let text =
        std::fs::read_to_string(home.path().join(".config/epoch/epoch.toml")).expect("epoch.toml");
    assert!(text.contains("[storage.postgres.fromtui]"), "{text}");
    // The bastion's side, then step 6 from the form.
    sshd.authorize(
        std::fs::read_to_string(home.path().join(".ssh/id_ed25519_fromtui.pub"))
            .expect("pub")
            .trim(),
    );
    t.keys(&["Enter"]);
    t.wait_for("no step failed");
    t.keys(&["Escape", "q"]);
    t.wait_for("EXITED 0");
}

/// A scratch HOME with one entry "pg" on a fixed local port through `sshd` to an echo
/// server, and a runtime dir for the daemon's socket: (scratch, local port, runtime dir).
fn daemon_scratch(sshd: &Sshd) -> (support::Scratch, u16, String) {
    let (s, key) = with_key(sshd);
    let local = free_port();
    s.write(
        "epoch.toml",
        &support::tunnel::entry(
            "pg",
            echo_server(),
            sshd,
            Some(&key),
            &format!("local_port = {local}"),
        ),
    );
    let run = s.path().join("run").display().to_string();
    std::fs::create_dir_all(&run).expect("run");
    (s, local, run)
}

#[test]
fn a_long_error_is_read_whole_in_the_details_and_in_the_log_view_which_scrolls() {
    if !support::require("tmux") {
        return;
    }
    let s = support::Scratch::new();
    // A ProxyCommand that says 419 characters on stderr and exits.
    let said: String = (1..=9)
        .map(|i| format!("gateway-{i:02} refused the route to db.internal;"))
        .collect::<Vec<_>>()
        .join(" ")
        + " END-OF-MESSAGE";
    assert!(said.len() > 400);
    s.write(
        "ssh_config",
        &format!(
            "Host px\n    HostName 127.0.0.1\n    User me\n    ProxyCommand sh -c 'echo \"{said}\" >&2; exit 3'\n    LocalForward 127.0.0.1:{} 127.0.0.1:9\n",
            free_port()
        ),
    );
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts",
    );
    // Under 100 columns the details stack: their text reads in one column.
    t.resize(96, 36);
    t.wait_for("px");
    t.keys(&["Enter"]);
    let whole = format!("exited with status 3; it said: {said}");
    let sc = t.wait_until("the whole error in the details", |sc| {
        sc.contains("✘ failed")
            && unwrapped(sc).contains("error hop 0 (127.0.0.1:22)")
            && unwrapped(sc).contains(&whole)
    });
    assert!(!sc.contains("END-OF-MESS…"), "{sc}");

    // `l`: the log, each line whole; it opens at the newest and scrolls.
    t.keys(&["l"]);
    let sc = t.wait_for("history: px");
    assert!(unwrapped(&sc).contains(&whole), "{sc}");
    let range = |sc: &str| {
        let title = sc
            .lines()
            .find(|l| l.contains("history: px"))
            .unwrap_or_default()
            .to_string();
        title
            .split(" · ")
            .nth(1)
            .and_then(|r| r.split(" of ").next())
            .map(str::to_string)
    };
    let end = range(&sc).expect("more lines than the screen: a range in the title");
    t.keys(&["Home"]);
    let sc = t.wait_until("the top of the log view", |sc| {
        range(sc).as_deref() == Some("1-34")
    });
    assert!(sc.contains("timeline"), "{sc}");
    t.keys(&["j"]);
    t.wait_until("one line down", |sc| range(sc).as_deref() == Some("2-35"));
    t.keys(&["End"]);
    t.wait_until("back at the end", |sc| {
        range(sc).as_deref() == Some(end.as_str())
    });
    t.keys(&["PageUp"]);
    t.wait_until("a page up", |sc| range(sc).is_some_and(|r| r != end));
    t.keys(&["Escape", "q"]);
    t.wait_for("EXITED 0");
}

fn db_up(screen: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains("● up") && l.contains(" db "))
}

/// The TUI on the `db` host of [`unknown_host`], its tunnel opened.
fn open_unknown_db(s: &support::Scratch) -> Tmux {
    let t = Tmux::warren(s.path(), "", "--ssh-config ssh_config");
    t.wait_for("connections");
    t.keys(&["Enter"]);
    t
}

#[test]
fn a_saved_host_key_survives_a_bastion_restart_without_a_question() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let mut sshd = Sshd::start("");
    let local = free_port();
    let s = unknown_host(&sshd, local);
    let t = open_unknown_db(&s);
    t.answer_host_key("y");
    t.wait_until("db up", db_up);
    let kh = || std::fs::read_to_string(s.path().join("known_hosts")).expect("known_hosts");
    assert_eq!(kh().trim(), sshd.known_hosts_line());

    // The bastion restarts with the same key on the same port: the tunnel comes back by
    // itself, with no question (a question would hold it until answered).
    sshd.restart();
    let screen = t.wait_until("db up again after one reconnect", |sc| {
        db_up(sc) && sc.contains("reconnects 1")
    });
    assert!(!screen.contains(HOST_KEY_QUESTION), "{screen}");
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"after the restart"),
        b"after the restart"
    );
    assert_eq!(
        kh().trim(),
        sshd.known_hosts_line(),
        "the line is written once"
    );
    t.quit_closing_tunnels();
}

#[test]
fn once_holds_across_reconnects_and_no_on_a_reconnect_stops_the_tunnel() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let mut sshd = Sshd::start("");
    let local = free_port();
    let s = unknown_host(&sshd, local);
    let t = open_unknown_db(&s);
    t.answer_host_key("o");
    t.wait_until("db up", db_up);

    // R reconnects: the key accepted once for this session is not asked about again.
    t.keys(&["R"]);
    let screen = t.wait_until("db up again after one reconnect", |sc| {
        db_up(sc) && sc.contains("reconnects 1")
    });
    assert!(!screen.contains(HOST_KEY_QUESTION), "{screen}");
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).expect("known_hosts"),
        "",
        "once writes nothing"
    );

    // The bastion comes back with another key: the reconnect asks; no fails the tunnel
    // and nothing asks again.
    sshd.restart_with_a_new_host_key();
    t.answer_host_key("n");
    let screen = t.wait_until("db failed, host key rejected", |sc| {
        sc.lines()
            .any(|l| l.contains("✘ failed") && l.contains(" db "))
            && sc.contains("host key rejected")
    });
    assert!(!screen.contains(HOST_KEY_QUESTION), "{screen}");
    // Well past the retry intervals of a reconnect (1 s, then 2 s, 4 s with jitter).
    std::thread::sleep(std::time::Duration::from_secs(8));
    let screen = t.screen();
    assert!(
        !screen.contains(HOST_KEY_QUESTION)
            && screen
                .lines()
                .any(|l| l.contains("✘ failed") && l.contains(" db ")),
        "rejected stays failed, asked no more:\n{screen}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err(),
        "a failed tunnel listens no more"
    );
    // Opened again, it is asked about again.
    t.keys(&["Enter"]);
    t.answer_host_key("y");
    t.wait_until("db up with the new key", db_up);
    t.quit_closing_tunnels();
}

#[test]
fn tunnels_the_daemon_cannot_open_stay_in_the_tui_with_the_reason() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let local = free_port();
    let s = unknown_host(&sshd, local);
    let run = s.path().join("run");
    std::fs::create_dir_all(&run).expect("run");
    let run = run.display().to_string();
    let env = [("XDG_RUNTIME_DIR", run.as_str())];
    let _daemon = scopeguard(&s, &env);
    let t = open_unknown_db(&s);
    // Accepted once, here: the daemon, which reads the same known_hosts, does not know it.
    t.answer_host_key("o");
    t.wait_until("db up", db_up);

    t.keys(&["q"]);
    let screen = t.wait_for("leave them running");
    assert!(
        screen.contains("y  quit (tunnels close)") && screen.contains("any other key: stay"),
        "the dialog lists every key it takes:\n{screen}"
    );
    t.keys(&["l"]);
    let screen = t.wait_for("not left running");
    assert!(
        screen.contains("Host key verification failed"),
        "the daemon's reason:\n{screen}"
    );
    assert!(!screen.contains("EXITED"), "{screen}");
    let screen = t.wait_until("db up here again", db_up);
    assert!(
        !screen.contains(HOST_KEY_QUESTION),
        "reopened with the key accepted once:\n{screen}"
    );
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"still here"),
        b"still here"
    );
    let v = s
        .warren_env(&["--ssh-config", "/dev/null", "status", "--json"], &env)
        .json();
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(0),
        "the daemon let go: {v}"
    );
    t.quit_closing_tunnels();
}
