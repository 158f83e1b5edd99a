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
    f: impl Fn(&Event) -> Option<T>,
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
