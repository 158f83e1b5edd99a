//! Multi-factor bastions: a real OpenSSH sshd with PAM that requires a key and then a
//! keyboard-interactive or password answer (`AuthenticationMethods publickey,...`). warren
//! follows the partial success as ssh does: through the engine, in `warren up` on a
//! terminal, and in the TUI's dialog. With nobody to answer it says what is still required.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::Scratch;
use support::mfa;
use support::net::{echo_server, echo_through};
use support::sshd::{Sshd, free_port, keygen};
use support::tmux::Tmux;
use support::tunnel::have_servers;
use warren::config::{Catalog, Context, Paths, Secret};
use warren::engine::{Command, Engine, Event, TunnelState};
use warren::prompt::{Answer, Prompt};

fn ready() -> bool {
    have_servers() && support::require("useradd") && support::require("chpasswd") && {
        let made = mfa::account();
        if !made && std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "cannot create the test account {} (useradd/chpasswd)",
                mfa::USER
            );
        }
        made
    }
}

/// A scratch home with a key the MFA account authorizes, and an ssh_config `mfa` host that
/// forwards `local` to an echo server through `sshd`.
fn setup(sshd: &Sshd, local: u16) -> Scratch {
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    mfa::authorize(&key.public_line);
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    s.write(
        "ssh_config",
        &format!(
            "Host mfa\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {}\n    IdentitiesOnly yes\n    LocalForward 127.0.0.1:{local} 127.0.0.1:{}\n",
            sshd.port,
            mfa::USER,
            key.private.display(),
            echo_server()
        ),
    );
    s
}

fn catalog(s: &Scratch) -> Catalog {
    let paths = Paths {
        ssh_config: Some(s.path().join("ssh_config")),
        epoch: Some("/dev/null".into()),
        known_hosts: Some(s.path().join("known_hosts")),
        epoch_is_project: false,
    };
    Catalog::load(
        &paths,
        Arc::new(Context::new(
            s.path().to_path_buf(),
            "tester",
            Default::default(),
        )),
    )
}

async fn next_event<T>(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 30 s"))
            .expect("events");
        if let Some(v) = f(&ev) {
            return v;
        }
    }
}

/// Opens `mfa` in an interactive engine, answers the second factor with `answer`, and
/// checks that data flows.
async fn second_factor(methods: &str, answer: fn(&Prompt) -> Option<Answer>) {
    let sshd = mfa::sshd(methods);
    let local = free_port();
    let s = setup(&sshd, local);
    let cat = catalog(&s);
    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("mfa").expect("mfa").clone()),
            reply: None,
        })
        .await;
    let (id, reply) = next_event(&mut rx, "the second factor's question", |e| match e {
        Event::Prompt { id, prompt, .. } => answer(prompt).map(|a| (*id, a)),
        Event::State {
            state: TunnelState::Failed { error },
            ..
        } => panic!("failed before the question: {error}\n{}", sshd.log_text()),
        _ => None,
    })
    .await;
    engine.send(Command::Answer { id, answer: reply }).await;
    next_event(&mut rx, "up", |e| match e {
        Event::State { name, state } if name == "mfa" => match state {
            TunnelState::Up => Some(()),
            TunnelState::Failed { error } => panic!("failed: {error}\n{}", sshd.log_text()),
            _ => None,
        },
        _ => None,
    })
    .await;
    let addr = format!("127.0.0.1:{local}");
    let echo = tokio::task::spawn_blocking(move || echo_through(&addr, b"two factors"))
        .await
        .expect("echo");
    assert_eq!(echo, b"two factors");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_then_a_keyboard_interactive_answer() {
    if !ready() {
        return;
    }
    second_factor("publickey,keyboard-interactive", |p| match p {
        Prompt::KeyboardInteractive { prompts, .. } => {
            assert_eq!(prompts.len(), 1, "{prompts:?}");
            assert!(prompts[0].0.contains("Password"), "{prompts:?}");
            assert!(!prompts[0].1, "PAM's password prompt does not echo");
            Some(Answer::Responses(vec![Secret::new(mfa::PASSWORD.into())]))
        }
        Prompt::HostKey { .. } | Prompt::Passphrase { .. } => {
            panic!("unexpected question {p:?}")
        }
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_then_a_password() {
    if !ready() {
        return;
    }
    second_factor("publickey,password", |p| match p {
        Prompt::Password { user, .. } => {
            assert_eq!(user, mfa::USER);
            Some(Answer::Secret(Secret::new(mfa::PASSWORD.into())))
        }
        _ => None,
    })
    .await;
}

/// A bastion restarted under an open tunnel whose second factor nobody answers: the tunnel
/// says it needs you, asks once, and with no answer waits without trying again (the bastion
/// sees one attempt); reconnecting it asks again, and the answer brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_that_needs_a_second_factor_asks_once_and_waits() {
    if !ready() {
        return;
    }
    let mut sshd = mfa::sshd_logging("publickey,keyboard-interactive");
    let local = free_port();
    let s = setup(&sshd, local);
    let cat = catalog(&s);
    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    let code = |p: &Prompt| match p {
        Prompt::KeyboardInteractive { .. } => {
            Some(Answer::Responses(vec![Secret::new(mfa::PASSWORD.into())]))
        }
        _ => None,
    };
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("mfa").expect("mfa").clone()),
            reply: None,
        })
        .await;
    let (id, a) = next_event(&mut rx, "the first question", |e| match e {
        Event::Prompt { id, prompt, .. } => code(prompt).map(|a| (*id, a)),
        _ => None,
    })
    .await;
    engine.send(Command::Answer { id, answer: a }).await;
    let up = |e: &Event| match e {
        Event::State { name, state } if name == "mfa" => match state {
            TunnelState::Up => Some(()),
            TunnelState::Failed { error } => panic!("failed: {error}"),
            _ => None,
        },
        _ => None,
    };
    next_event(&mut rx, "up", up).await;
    let before = mfa::attempts(&sshd);
    assert_eq!(before, 1, "{}", sshd.log_text());

    // The bastion restarts: the reconnect asks, and the tunnel says so while it does.
    sshd.restart();
    let mut asked = None;
    let mut says = false;
    next_event(&mut rx, "the reconnect's question", |e| {
        match e {
            Event::Prompt { id, prompt, .. } if code(prompt).is_some() => asked = Some(*id),
            Event::State {
                state: TunnelState::NeedsYou { what, asking: true },
                ..
            } => {
                assert!(what.contains("keyboard-interactive"), "{what}");
                says = true;
            }
            _ => {}
        }
        (asked.is_some() && says).then_some(())
    })
    .await;
    engine
        .send(Command::Answer {
            id: asked.expect("asked"),
            answer: Answer::Cancel,
        })
        .await;
    let what = next_event(&mut rx, "waiting for a person", |e| match e {
        Event::State {
            state:
                TunnelState::NeedsYou {
                    what,
                    asking: false,
                },
            ..
        } => Some(what.clone()),
        Event::State {
            state: TunnelState::Failed { error },
            ..
        } => panic!("failed: {error}"),
        _ => None,
    })
    .await;
    assert!(what.contains("not answered"), "{what}");
    // It waits: no question, no attempt, for many times the reconnect delay (1 s).
    let quiet = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match rx.recv().await.map(|e| (*e).clone()) {
                Ok(Event::Prompt { prompt, .. }) => return Some(prompt),
                Ok(Event::State { state, .. }) if !state.waits_for_person() => {
                    panic!("left the wait by itself: {state}")
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "asked again by itself: {quiet:?}");
    assert_eq!(
        mfa::attempts(&sshd),
        before + 1,
        "one attempt after the restart:\n{}",
        sshd.log_text()
    );
    let status = engine.status().await;
    let shown = status
        .iter()
        .find(|t| t.name == "mfa")
        .map(|t| t.state.to_string())
        .unwrap_or_default();
    assert!(
        shown.starts_with("needs you:") && shown.contains("warren reconnect"),
        "{shown}"
    );

    // Reconnecting it asks again; the answer brings it back, and data flows.
    engine
        .send(Command::Reconnect {
            names: vec!["mfa".into()],
        })
        .await;
    let (id, a) = next_event(&mut rx, "the question asked again", |e| match e {
        Event::Prompt { id, prompt, .. } => code(prompt).map(|a| (*id, a)),
        _ => None,
    })
    .await;
    engine.send(Command::Answer { id, answer: a }).await;
    next_event(&mut rx, "up again", up).await;
    assert_eq!(mfa::attempts(&sshd), before + 2);
    let addr = format!("127.0.0.1:{local}");
    let echo = tokio::task::spawn_blocking(move || echo_through(&addr, b"answered again"))
        .await
        .expect("echo");
    assert_eq!(echo, b"answered again");
    engine.shutdown().await;
}

#[test]
fn with_nobody_to_answer_it_says_what_is_still_required() {
    if !ready() {
        return;
    }
    let sshd = mfa::sshd("publickey,keyboard-interactive");
    let s = setup(&sshd, free_port());
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--known-hosts",
        "known_hosts",
        "up",
        "mfa",
        "--json",
    ]);
    r.expect_code(1)
        .expect_stdout("succeeded partially: publickey")
        .expect_stdout("still required: keyboard-interactive")
        .expect_stdout("needs a person to answer");
}

/// The TUI's `d` (the engine's walk) asks nobody: its hint says to open the tunnel, which
/// asks, not "open the tunnel in the TUI" to someone who is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_walk_says_that_opening_the_tunnel_asks() {
    if !ready() {
        return;
    }
    let sshd = mfa::sshd("publickey,keyboard-interactive");
    let s = setup(&sshd, free_port());
    let cat = catalog(&s);
    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    engine
        .send(Command::Diagnose(Box::new(
            cat.find("mfa").expect("mfa").clone(),
        )))
        .await;
    let auth = next_event(&mut rx, "the auth step", |e| match e {
        Event::Step { name, step } if name == "mfa" && step.id.as_str() == "auth" => {
            Some(step.clone())
        }
        _ => None,
    })
    .await;
    let said = format!("{} {}", auth.detail, auth.hint.clone().unwrap_or_default());
    assert!(
        said.contains("still required: keyboard-interactive")
            && said.contains("open the tunnel (these diagnostics ask nobody)")
            && !said.contains("in the TUI"),
        "{said}"
    );
    engine.shutdown().await;
}

#[test]
fn warren_up_on_a_terminal_asks_for_the_second_factor_without_echo() {
    if !ready() || !support::require("tmux") {
        return;
    }
    let sshd = mfa::sshd("publickey,keyboard-interactive");
    let local = free_port();
    let s = setup(&sshd, local);
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts up mfa",
    );
    t.wait_for("(mfa) Password:");
    t.type_text(mfa::PASSWORD);
    t.keys(&["Enter"]);
    let screen = t.wait_for("mfa  up");
    assert!(
        !screen.contains(mfa::PASSWORD),
        "the answer was echoed:\n{screen}"
    );
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"on a terminal"),
        b"on a terminal"
    );
    t.keys(&["C-c"]);
    t.wait_for("EXITED 0");
}

#[test]
fn the_tui_dialog_takes_the_second_factor_and_the_tunnel_carries_data() {
    if !ready() || !support::require("tmux") {
        return;
    }
    let sshd = mfa::sshd("publickey,keyboard-interactive");
    let local = free_port();
    let s = setup(&sshd, local);
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts",
    );
    t.wait_for("connections");
    t.keys(&["Enter"]);
    t.wait_for("the server asks");
    // The dialog ignores keys for a moment after it appears (they were meant for the list).
    std::thread::sleep(Duration::from_millis(700));
    t.type_text(mfa::PASSWORD);
    let screen = t.wait_for("****");
    assert!(!screen.contains(mfa::PASSWORD), "{screen}");
    t.keys(&["Enter"]);
    t.wait_until("mfa up", |s| {
        s.lines().any(|l| l.contains(" up ") && l.contains("mfa"))
    });
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"through the dialog"),
        b"through the dialog"
    );
    t.quit_closing_tunnels();
}

/// The acceptance's TUI case: the bastion restarts under the open tunnel, the TUI shows one
/// question, and the answer reconnects; after the next restart nobody answers (Esc), the
/// row says it needs you, nothing is asked or attempted again by itself (the bastion's log
/// shows one attempt), and `R` on the row asks again.
#[test]
fn the_tui_asks_once_after_a_bastion_restart_and_waits_when_nobody_answers() {
    if !ready() || !support::require("tmux") {
        return;
    }
    let mut sshd = mfa::sshd_logging("publickey,keyboard-interactive");
    let local = free_port();
    let s = setup(&sshd, local);
    let t = Tmux::warren(
        s.path(),
        "",
        "--ssh-config ssh_config --known-hosts known_hosts",
    );
    let row = |word: &'static str| {
        move |screen: &str| {
            screen
                .lines()
                .any(|l| l.contains("mfa") && l.contains(word))
        }
    };
    let answer = |t: &Tmux| {
        t.wait_for("the server asks");
        // The dialog ignores keys for a moment after it appears (they were meant for the list).
        std::thread::sleep(Duration::from_millis(700));
        t.type_text(mfa::PASSWORD);
        t.wait_for("****");
        t.keys(&["Enter"]);
    };
    t.wait_for("connections");
    t.keys(&["Enter"]);
    answer(&t);
    t.wait_until("mfa up", row(" up "));
    assert_eq!(mfa::attempts(&sshd), 1);

    // Restarted: one question, answered, and it is up again.
    sshd.restart();
    t.wait_until("the question, and the row saying so", |s| {
        s.contains("the server asks") && row("needs you")(s)
    });
    answer(&t);
    t.wait_until("mfa up again", row(" up "));
    assert_eq!(mfa::attempts(&sshd), 2, "{}", sshd.log_text());
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"after the restart"),
        b"after the restart"
    );

    // Restarted again, and nobody answers.
    sshd.restart();
    t.wait_for("the server asks");
    std::thread::sleep(Duration::from_millis(700));
    t.keys(&["Escape"]);
    t.wait_until("the row waiting for a person", |s| {
        row("! needs you")(s) && !s.contains("the server asks")
    });
    // Eight times the reconnect delay: nothing is asked, nothing is tried.
    std::thread::sleep(Duration::from_secs(8));
    let screen = t.screen();
    assert!(
        row("! needs you")(&screen) && !screen.contains("the server asks"),
        "{screen}"
    );
    assert_eq!(
        mfa::attempts(&sshd),
        3,
        "one attempt after the second restart:\n{}",
        sshd.log_text()
    );

    // R on the row asks again; the answer brings it back.
    t.keys(&["R"]);
    answer(&t);
    t.wait_until("mfa up at last", row(" up "));
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"asked again"),
        b"asked again"
    );
    t.quit_closing_tunnels();
}
