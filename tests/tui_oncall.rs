//! On-call operations in a real terminal (tmux) against a real sshd: the list follows the
//! config files as they change (a Host appended, a Host in a file an Include matches, an open
//! tunnel whose settings changed, a syntax error that lists its entry as broken), entries
//! that did not load listed with their error at start and after a live reload, `@tag` in
//! the filter with `a` opening what is listed, a time limit counting down that `+`
//! extends, and a reconnect's wait counting down.

mod support;

use std::time::Instant;

use support::net::echo_server;
use support::sshd::{Sshd, free_port};
use support::tmux::{Tmux, unwrapped};
use support::tunnel::{entry, have_servers, local_user, with_key};

fn start_tui(s: &support::Scratch) -> Tmux {
    Tmux::warren(
        s.path(),
        &format!("XDG_CONFIG_HOME={}/cfg", s.path().display()),
        "--ssh-config ssh_config --known-hosts known_hosts",
    )
}

/// The list's line for `name` (the row whose NAME cell is `name`).
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == name) && l.contains('│'))
}

fn state_is(screen: &str, name: &str, state: &str) -> bool {
    row(screen, name).is_some_and(|l| l.contains(state))
}

#[test]
fn the_list_follows_the_config_files_as_they_change() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let (echo, echo2) = (echo_server(), echo_server());
    let local = free_port();
    let d = s.path().display().to_string();
    let host = |name: &str, local: u16, target: u16| {
        format!(
            "Host {name}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {key}\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{target}\n\n",
            sshd.port,
            local_user()
        )
    };
    let include = format!("Include {d}/conf.d/*.conf\n\n");
    s.write(
        "ssh_config",
        &format!("{include}{}", host("alpha", local, echo)),
    );
    s.write("epoch.toml", &entry("orders", echo, &sshd, Some(&key), ""));
    let t = start_tui(&s);
    t.wait_until("alpha and orders listed", |sc| {
        row(sc, "alpha").is_some() && row(sc, "orders").is_some()
    });
    t.keys(&["Enter"]);
    t.wait_until("alpha up", |sc| state_is(sc, "alpha", "● up"));

    // A Host appended to the file: listed with no key press.
    let t0 = Instant::now();
    let mut text = std::fs::read_to_string(s.path().join("ssh_config")).expect("read");
    text.push_str(&host("beta", free_port(), echo));
    s.write("ssh_config", &text);
    t.wait_until("beta listed", |sc| row(sc, "beta").is_some());
    eprintln!(
        "a Host appended to ssh_config was listed after {:?}",
        t0.elapsed()
    );

    // A Host in a file that the Include matches, in a folder that did not exist.
    let t0 = Instant::now();
    s.write("conf.d/extra.conf", &host("gamma", free_port(), echo));
    t.wait_until("gamma listed", |sc| row(sc, "gamma").is_some());
    eprintln!(
        "a Host in a new Included file was listed after {:?}",
        t0.elapsed()
    );

    // alpha's forward now goes elsewhere: the open tunnel is marked, and says how to reopen.
    let text = text.replace(
        &format!("127.0.0.1:{local} 127.0.0.1:{echo}"),
        &format!("127.0.0.1:{local} 127.0.0.1:{echo2}"),
    );
    s.write("ssh_config", &text);
    let sc = t.wait_until("alpha marked as changed", |sc| {
        state_is(sc, "alpha", "✎") && sc.contains("Enter twice to reopen")
    });
    assert!(
        !state_is(&sc, "beta", "✎"),
        "only the open tunnel whose settings changed is marked:\n{sc}"
    );
    // Enter twice: closed, then opened with the new settings, and no longer marked.
    t.keys(&["Enter"]);
    t.wait_until("alpha down", |sc| state_is(sc, "alpha", "○ down"));
    t.keys(&["Enter"]);
    t.wait_until("alpha up again, unmarked", |sc| {
        state_is(sc, "alpha", "● up") && !state_is(sc, "alpha", "✎")
    });
    assert_eq!(
        support::net::echo_through(&format!("127.0.0.1:{local}"), b"the new target"),
        b"the new target"
    );

    // A syntax error: the entry is listed as broken, the others stay, and the error is shown
    // with its file:line.
    s.write("epoch.toml", "[storage.postgres.orders\nhost = \"x\"\n");
    let sc = t.wait_until("orders broken", |sc| state_is(sc, "orders", "✘ broken"));
    assert!(
        sc.contains("config error (l shows it whole): epoch.toml:1: TOML syntax error")
            && row(&sc, "beta").is_some(),
        "{sc}"
    );
    // Fixed: read again, the error goes.
    s.write("epoch.toml", &entry("billing", echo, &sshd, Some(&key), ""));
    t.wait_until("billing in, orders out, no error", |sc| {
        row(sc, "billing").is_some() && row(sc, "orders").is_none() && !sc.contains("config error")
    });

    t.quit_closing_tunnels();
}

const BADPORT: &str = "[storage.postgres.badport]\nhost = \"db.internal\"\nport = 70000\n[storage.postgres.badport.ssh_tunnel]\nhost = \"bastion.example.com\"\n";

#[test]
fn entries_that_did_not_load_are_listed_with_their_error_at_start_and_after_a_reload() {
    if !support::require("tmux") {
        return;
    }
    let s = support::Scratch::new();
    s.write("ssh_config", "Host h1\n    HostName 127.0.0.1\n");
    let good = "[storage.postgres.good]\nhost = \"db.internal\"\n[storage.postgres.good.ssh_tunnel]\nhost = \"bastion.example.com\"\n";
    s.write("epoch.toml", &format!("{good}\n{BADPORT}"));
    let t = start_tui(&s);
    // Stacked details (under 100 columns): the pane's text reads in one column.
    t.resize(96, 36);
    let sc = t.wait_until("badport broken, good and h1 listed", |sc| {
        state_is(sc, "badport", "✘ broken")
            && state_is(sc, "good", "○ down")
            && row(sc, "h1").is_some()
    });
    assert!(
        sc.contains("config error (l shows it whole): epoch.toml:8: storage.postgres.badport.port"),
        "{sc}"
    );
    // Its details: the error and the fix, whole.
    t.keys(&["/"]);
    t.type_text("badport");
    t.keys(&["Enter"]);
    let sc = t.wait_until("badport's error in its details", |sc| {
        unwrapped(sc).contains("error epoch.toml:8: storage.postgres.badport.port: port 70000 is out of range (1-65535)")
    });
    assert!(
        unwrapped(&sc).contains("fix write port = 5432 (a number from 1-65535)"),
        "{sc}"
    );
    // Commands on it are refused with its error.
    t.keys(&["Enter"]);
    t.wait_for("badport did not load, fix it first: epoch.toml:8");
    t.keys(&["d"]);
    let sc = t.wait_for("badport did not load, fix it first");
    assert!(!sc.contains("doctor: badport"), "{sc}");
    t.keys(&["Escape"]);

    // Live: good gets an unclosed string, badport is fixed.
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            good.replace("\"db.internal\"", "\"db.internal"),
            BADPORT.replace("70000", "5432")
        ),
    );
    let sc = t.wait_until("good broken, badport down", |sc| {
        state_is(sc, "good", "✘ broken") && state_is(sc, "badport", "○ down")
    });
    assert!(
        sc.contains("config error (l shows it whole): epoch.toml:2: TOML syntax error"),
        "{sc}"
    );
    // `l` has the whole message.
    t.keys(&["l"]);
    let sc = t.wait_for("config errors (1)");
    assert!(
        unwrapped(&sc).contains("epoch.toml:2: TOML syntax error: invalid basic string, expected `\"`; skipped [storage.postgres.good] (fix: close the string with a matching quote)"),
        "{sc}"
    );
    t.keys(&["Escape"]);

    // An ssh_config line ssh would refuse: the hosts still load, a new one appears, and the
    // error is said (it is not a reason to keep a list the files no longer have).
    s.write(
        "ssh_config",
        "Host h1\n    HostName 127.0.0.1\n    Port abc\n\nHost h2\n    HostName 127.0.0.2\n",
    );
    let sc = t.wait_until("h2 listed", |sc| row(sc, "h2").is_some());
    assert!(row(&sc, "h1").is_some(), "{sc}");
    assert!(sc.contains("2 config errors (l shows them whole)"), "{sc}");
    t.keys(&["l"]);
    let sc = t.wait_for("config errors (2)");
    assert!(
        unwrapped(&sc).contains("ssh_config:3: Port 'abc' is not a port number; the line is ignored (fix: use a number from 1 to 65535)"),
        "{sc}"
    );
    t.keys(&["Escape", "q"]);
    t.wait_for("EXITED 0");
}

#[test]
fn a_tag_in_the_filter_and_a_open_exactly_the_tagged_tunnels() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    let e = |name: &str, tags: &str| {
        entry(name, echo, &sshd, Some(&key), "").replace(
            &format!("[storage.postgres.{name}]\n"),
            &format!("[storage.postgres.{name}]\ntags = {tags}\n"),
        )
    };
    s.write(
        "epoch.toml",
        &[
            e("orders", "[\"prod\", \"eu\"]"),
            e("billing", "[\"prod\"]"),
            e("scratch", "[\"dev\"]"),
        ]
        .join("\n"),
    );
    s.write("ssh_config", "");
    let t = start_tui(&s);
    t.wait_until("three listed", |sc| {
        ["orders", "billing", "scratch"]
            .iter()
            .all(|n| row(sc, n).is_some())
    });
    t.keys(&["/"]);
    t.type_text("@prod");
    t.wait_until("the filter to keep the prod ones", |sc| {
        row(sc, "orders").is_some() && row(sc, "billing").is_some() && row(sc, "scratch").is_none()
    });
    t.keys(&["Enter", "a"]);
    t.wait_until("both prod tunnels up", |sc| {
        state_is(sc, "orders", "● up") && state_is(sc, "billing", "● up")
    });
    // Clear the filter: scratch was not opened.
    t.keys(&["Escape"]);
    let sc = t.wait_until("scratch listed", |sc| row(sc, "scratch").is_some());
    assert!(state_is(&sc, "scratch", "○ down"), "{sc}");
    t.quit_closing_tunnels();
}

/// The LEFT cell of `name`'s row, in seconds ("59s", "1m58s").
fn left_secs(screen: &str, name: &str) -> Option<u64> {
    row(screen, name)?.split_whitespace().find_map(|w| {
        let (m, rest) = match w.split_once('m') {
            Some((m, rest)) => (m.parse::<u64>().ok()?, rest),
            None => (0, w),
        };
        let s = rest.strip_suffix('s')?.parse::<u64>().ok()?;
        Some(m * 60 + s)
    })
}

#[test]
fn the_time_left_counts_down_and_plus_extends_it() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    s.write(
        "epoch.toml",
        &entry("orders", echo, &sshd, Some(&key), "").replace(
            "[storage.postgres.orders]\n",
            "[storage.postgres.orders]\nmax_duration = \"1m\"\n",
        ),
    );
    s.write("ssh_config", "");
    let t = start_tui(&s);
    t.wait_until("orders listed", |sc| row(sc, "orders").is_some());
    t.keys(&["Enter"]);
    let sc = t.wait_until("orders up with time left", |sc| {
        state_is(sc, "orders", "● up") && left_secs(sc, "orders").is_some()
    });
    let first = left_secs(&sc, "orders").unwrap_or_default();
    assert!(first <= 60, "at most a minute left: {first}\n{sc}");
    assert!(sc.contains("LEFT"), "the column has a header:\n{sc}");
    t.wait_until("the time left to go down", |sc| {
        left_secs(sc, "orders").is_some_and(|l| l < first)
    });
    t.keys(&["+"]);
    let sc = t.wait_until("the time left to pass a minute", |sc| {
        left_secs(sc, "orders").is_some_and(|l| l > 60)
    });
    assert!(
        left_secs(&sc, "orders").unwrap_or_default() <= 120,
        "+ adds max_duration once:\n{sc}"
    );
    t.quit_closing_tunnels();
}

/// The seconds of the `↻ retry Ns` badge in `name`'s row.
fn retry_secs(screen: &str, name: &str) -> Option<u64> {
    let rest = row(screen, name)?.split("↻ retry ").nth(1)?;
    rest.split_whitespace()
        .next()?
        .strip_suffix('s')?
        .parse()
        .ok()
}

#[test]
fn the_retry_countdown_goes_down_while_the_bastion_is_away() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let mut sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    s.write(
        "epoch.toml",
        &entry(
            "orders",
            echo_server(),
            &sshd,
            Some(&key),
            "reconnect_delay = 20",
        ),
    );
    s.write("ssh_config", "");
    let t = start_tui(&s);
    t.wait_until("orders listed", |sc| row(sc, "orders").is_some());
    t.keys(&["Enter"]);
    t.wait_until("orders up", |sc| state_is(sc, "orders", "● up"));
    sshd.kill();
    let sc = t.wait_until("orders waiting to retry", |sc| {
        retry_secs(sc, "orders").is_some()
    });
    let first = retry_secs(&sc, "orders").unwrap_or_default();
    assert!((2..=24).contains(&first), "the wait of attempt 1:\n{sc}");
    t.wait_until("the retry countdown to go down", |sc| {
        retry_secs(sc, "orders").is_some_and(|l| l < first)
    });
    t.quit_closing_tunnels();
}

#[test]
fn a_busy_local_port_is_named_and_the_free_one_taken_for_the_session() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = with_key(&sshd);
    let echo = echo_server();
    // This test process holds the port the entry wants.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = holder.local_addr().expect("addr").port();
    s.write(
        "epoch.toml",
        &entry(
            "orders",
            echo,
            &sshd,
            Some(&key),
            &format!("local_port = {busy}"),
        ),
    );
    s.write("ssh_config", "");
    let t = start_tui(&s);
    t.wait_until("orders listed", |sc| row(sc, "orders").is_some());
    t.keys(&["Enter"]);
    let sc = t.wait_for("for this session? y yes  n no");
    assert!(
        sc.contains(&format!("(pid {})", std::process::id())),
        "the holder is named with its pid:\n{sc}"
    );
    t.keys(&["y"]);
    let sc = t.wait_until("orders up on another port", |sc| {
        state_is(sc, "orders", "● up") && !state_is(sc, "orders", &format!(":{busy}"))
    });
    let local = row(&sc, "orders")
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("127.0.0.1:"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    assert_eq!(
        support::net::echo_through(&local, b"on the free port"),
        b"on the free port"
    );
    drop(holder);
    t.quit_closing_tunnels();
}
