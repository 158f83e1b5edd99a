//! The engine as the TUI will use it: prompts for an unknown host key and a passphrase,
//! answered through commands, and a pending prompt that does not hold up other tunnels.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::Scratch;
use support::net::{echo_server, echo_through};
use support::sshd::{Sshd, keygen};
use support::tunnel::{entry, have_servers, local_user};
use warren::config::{Catalog, Context, Paths, Secret};
use warren::engine::{Command, Engine, Event, TunnelState};
use warren::prompt::{Answer, HostKeyAnswer, Prompt};

fn catalog(s: &Scratch) -> Catalog {
    let paths = Paths {
        ssh_config: Some("/dev/null".into()),
        epoch: Some(s.path().join("epoch.toml")),
        known_hosts: None,
        epoch_is_project: false,
    };
    let c = Catalog::load(
        &paths,
        Arc::new(Context::new(
            s.path().to_path_buf(),
            &local_user(),
            Default::default(),
        )),
    );
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    c
}

/// The next event for which `f` gives a value, within 30 s.
async fn next<T>(
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

fn listening(ev: &Event, who: &str) -> Option<String> {
    match ev {
        Event::Listening { name, local, .. } if name == who => Some(local.clone()),
        _ => None,
    }
}

fn state(ev: &Event, who: &str) -> Option<TunnelState> {
    match ev {
        Event::State { name, state } if name == who => Some(state.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_asked_about_and_saved_when_accepted() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = Scratch::new();
    let key = keygen(s.path(), "id", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let kh = s.write("known_hosts", "# mine\n");
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key.private.display().to_string()),
            &format!("known_hosts_file = \"{}\"", kh.display()),
        ),
    );
    let cat = catalog(&s);

    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("pg").expect("pg").clone()),
            reply: None,
        })
        .await;
    let local = next(&mut rx, "listening", |e| listening(e, "pg")).await;
    let (id, fingerprint) = next(&mut rx, "host key prompt", |e| match e {
        Event::Prompt {
            id,
            name,
            prompt: Prompt::HostKey {
                fingerprint, host, ..
            },
            ..
        } if name == "pg" => {
            assert_eq!(host, &format!("[127.0.0.1]:{}", sshd.port));
            Some((*id, fingerprint.clone()))
        }
        _ => None,
    })
    .await;
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    engine
        .send(Command::Answer {
            id,
            answer: Answer::HostKey(HostKeyAnswer::AcceptAndSave),
        })
        .await;
    next(&mut rx, "up", |e| {
        state(e, "pg").filter(|s| *s == TunnelState::Up)
    })
    .await;
    let echo = tokio::task::spawn_blocking(move || echo_through(&local, b"accepted"))
        .await
        .expect("echo");
    assert_eq!(echo, b"accepted");
    let text = std::fs::read_to_string(&kh).expect("known_hosts");
    assert!(text.starts_with("# mine\n"), "{text}");
    assert_eq!(
        text.lines().count(),
        2,
        "the accepted key was saved once:\n{text}"
    );

    let snap = engine.status().await;
    assert_eq!(snap[0].name, "pg");
    assert!(snap[0].log.iter().any(|l| l == "up"), "{:?}", snap[0].log);
    assert!(snap[0].stats.uptime_secs.is_some());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_host_key_fails_the_tunnel_and_a_pending_prompt_blocks_no_other() {
    if !have_servers() {
        return;
    }
    let unknown = Sshd::start("");
    let known = Sshd::start("");
    let s = Scratch::new();
    let key = keygen(s.path(), "id", "ed25519", "", false);
    unknown.authorize(&key.public_line);
    known.authorize(&key.public_line);
    let kh = s.write("known_hosts", &format!("{}\n", known.known_hosts_line()));
    let k = key.private.display().to_string();
    let khs = kh.display().to_string();
    s.write(
        "epoch.toml",
        &format!(
            "{}\n{}",
            entry(
                "asks",
                echo_server(),
                &unknown,
                Some(&k),
                &format!("known_hosts_file = \"{}\"", &khs)
            ),
            entry(
                "known",
                echo_server(),
                &known,
                Some(&k),
                &format!("known_hosts_file = \"{}\"", &khs)
            )
        ),
    );
    let cat = catalog(&s);

    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("asks").expect("asks").clone()),
            reply: None,
        })
        .await;
    let id = next(&mut rx, "prompt", |e| match e {
        Event::Prompt { id, name, .. } if name == "asks" => Some(*id),
        _ => None,
    })
    .await;
    // While that prompt waits, another tunnel opens and carries data.
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("known").expect("known").clone()),
            reply: None,
        })
        .await;
    let local = next(&mut rx, "listening known", |e| listening(e, "known")).await;
    next(&mut rx, "known up", |e| {
        state(e, "known").filter(|s| *s == TunnelState::Up)
    })
    .await;
    let echo = tokio::task::spawn_blocking(move || echo_through(&local, b"not blocked"))
        .await
        .expect("echo");
    assert_eq!(echo, b"not blocked");

    engine
        .send(Command::Answer {
            id,
            answer: Answer::HostKey(HostKeyAnswer::Reject),
        })
        .await;
    let failed = next(&mut rx, "asks failed", |e| match state(e, "asks") {
        Some(TunnelState::Failed { error }) => Some(error),
        _ => None,
    })
    .await;
    assert!(failed.contains("host key rejected"), "{failed}");
    assert_eq!(
        std::fs::read_to_string(&kh).expect("kh").lines().count(),
        1,
        "a rejected key is not saved"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_key_without_a_passphrase_is_asked_for_one() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = Scratch::new();
    let key = keygen(s.path(), "enc", "ed25519", "open sesame", false);
    sshd.authorize(&key.public_line);
    let kh = s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key.private.display().to_string()),
            &format!("known_hosts_file = \"{}\"", kh.display()),
        ),
    );
    let cat = catalog(&s);

    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("pg").expect("pg").clone()),
            reply: None,
        })
        .await;
    let id = next(&mut rx, "passphrase prompt", |e| match e {
        Event::Prompt {
            id,
            prompt: Prompt::Passphrase { key_file },
            ..
        } => {
            assert!(key_file.ends_with("/enc"), "{key_file}");
            Some(*id)
        }
        _ => None,
    })
    .await;
    engine
        .send(Command::Answer {
            id,
            answer: Answer::Secret(Secret::new("open sesame".into())),
        })
        .await;
    next(&mut rx, "up", |e| {
        state(e, "pg").filter(|s| *s == TunnelState::Up)
    })
    .await;
    engine.shutdown().await;
}

/// The engine's walk (the TUI's `d`) of an entry `pg` to an echo server through a real sshd,
/// with `known_hosts` as the entry's known_hosts file: its steps, in order, and its verdict.
async fn engine_walk(
    known_hosts: impl Fn(&Sshd) -> String,
) -> (Vec<warren::diagnose::Step>, bool, Scratch) {
    let sshd = Sshd::start("");
    let s = Scratch::new();
    let key = keygen(s.path(), "id", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let kh = s.write("known_hosts", &known_hosts(&sshd));
    s.write(
        "epoch.toml",
        &entry(
            "pg",
            echo_server(),
            &sshd,
            Some(&key.private.display().to_string()),
            &format!("known_hosts_file = \"{}\"", kh.display()),
        ),
    );
    let cat = catalog(&s);
    let engine = Engine::start();
    let mut rx = engine.subscribe();
    engine
        .send(Command::Diagnose(Box::new(
            cat.find("pg").expect("pg").clone(),
        )))
        .await;
    let mut steps = Vec::new();
    let ok = loop {
        match std::sync::Arc::unwrap_or_clone(
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("events in time")
                .expect("event"),
        ) {
            Event::Step { name, step } if name == "pg" => steps.push(step),
            Event::Diagnosed { name, ok } if name == "pg" => break ok,
            _ => {}
        }
    };
    engine.shutdown().await;
    (steps, ok, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_streams_each_step_then_the_verdict() {
    if !have_servers() {
        return;
    }
    let (steps, ok, _s) = engine_walk(|sshd| format!("{}\n", sshd.known_hosts_line())).await;
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "config", "dns", "tcp", "banner", "kex", "host_key", "auth", "forward", "probe"
        ]
    );
    // The "database" is an echo server: everything up to the forward passes, and the
    // PostgreSQL probe sees its own bytes come back.
    assert!(
        steps[..8]
            .iter()
            .all(|s| s.status == warren::diagnose::Status::Pass),
        "{steps:#?}"
    );
    assert_eq!(steps[8].status, warren::diagnose::Status::Fail);
    assert!(
        steps[8].detail.contains("not a PostgreSQL answer"),
        "{}",
        steps[8].detail
    );
    assert!(!ok);
}

/// The engine's walk (the TUI's `d`) asks nobody: an unknown host key says to open the
/// tunnel, which asks, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_walk_of_an_unknown_host_key_says_that_opening_the_tunnel_asks() {
    if !have_servers() {
        return;
    }
    let (steps, _, s) = engine_walk(|_| String::new()).await;
    let step = steps
        .iter()
        .find(|st| st.id.as_str() == "host_key")
        .expect("a host_key step");
    let said = format!("{} {}", step.detail, step.hint.clone().unwrap_or_default());
    assert!(
        said.contains("open the tunnel (these diagnostics ask nobody)")
            && !said.contains("in the TUI"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).expect("kh"),
        "",
        "nothing written"
    );
}
