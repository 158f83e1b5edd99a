//! Trust cases against a real sshd, each as a user meets it: sessions shared only between
//! connections that agree on trust, algorithm lists from ssh_config, the host-key question
//! on a terminal, the refusal (and `warren trust`) without one, `UserKnownHostsFile none`,
//! KnownHostsCommand (its keys used, never written; its failure refusing), and a question
//! withdrawn when its tunnel closes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::Scratch;
use support::net::{Up, echo_server, echo_through};
use support::sshd::{Sshd, free_port, keygen};
use support::tmux::Tmux;
use support::tunnel::{have_servers, local_user, ssh_host, unknown_host};
use warren::config::{Catalog, Context, Paths};
use warren::engine::{Command, Engine, Event};
use warren::prompt::{Answer, HostKeyAnswer};

/// A scratch home with a key `sshd` authorizes; returns the key's path.
fn home(sshd: &Sshd) -> (Scratch, String) {
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    (s, key.private.display().to_string())
}

fn warren(s: &Scratch, args: &[&str]) -> support::Run {
    let mut all = vec!["--ssh-config", "ssh_config"];
    all.extend_from_slice(args);
    s.warren(&all)
}

#[test]
fn a_strict_connection_never_rides_a_lax_ones_session() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&sshd);
    let stranger = keygen(s.path(), "stranger", "ed25519", "", false);
    let fields: Vec<&str> = stranger.public_line.split_whitespace().collect();
    s.write(
        "kh_strict",
        &format!("[127.0.0.1]:{} {} {}\n", sshd.port, fields[0], fields[1]),
    );
    let echo = echo_server();
    let (lax_port, strict_port) = (free_port(), free_port());
    let d = s.path().display();
    s.write(
        "ssh_config",
        &format!(
            "{}{}",
            ssh_host(
                "lax",
                &sshd,
                &key,
                lax_port,
                echo,
                &format!("    StrictHostKeyChecking no\n    UserKnownHostsFile {d}/kh_lax\n")
            ),
            ssh_host(
                "strict",
                &sshd,
                &key,
                strict_port,
                echo,
                &format!("    StrictHostKeyChecking yes\n    UserKnownHostsFile {d}/kh_strict\n")
            )
        ),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "up",
            "lax",
            "strict",
            "--json",
        ],
    );
    up.listening("lax");
    let failed = up.wait_for("strict failed", |v| {
        v["event"] == "state" && v["state"] == "failed" && v["name"] == "strict"
    });
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{failed}"
    );
    assert_eq!(
        echo_through(&format!("127.0.0.1:{lax_port}"), b"lax"),
        b"lax"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", strict_port))
            .ok()
            .and_then(|mut c| {
                use std::io::{Read, Write};
                c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                c.write_all(b"x").ok()?;
                let mut b = [0u8; 1];
                c.read_exact(&mut b).ok()
            })
            .is_none(),
        "nothing passes through the strict tunnel"
    );
}

#[test]
fn ciphers_and_other_lists_from_ssh_config_are_what_is_negotiated() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&sshd);
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let d = s.path().display();
    let kh = format!("    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile none\n");
    s.write(
        "ssh_config",
        &format!(
            "{}{}{}",
            ssh_host(
                "chacha",
                &sshd,
                &key,
                free_port(),
                9,
                &format!("{kh}    Ciphers chacha20-poly1305@openssh.com\n    KexAlgorithms ecdh-sha2-nistp256\n")
            ),
            ssh_host(
                "umac",
                &sshd,
                &key,
                free_port(),
                9,
                &format!("{kh}    MACs umac-128-etm@openssh.com\n")
            ),
            ssh_host(
                "cbc",
                &sshd,
                &key,
                free_port(),
                9,
                &format!("{kh}    Ciphers aes128-cbc\n")
            ),
        ),
    );
    let kex = |name: &str| -> serde_json::Value {
        let r = warren(&s, &["doctor", name, "--json"]);
        let v = r.json();
        v["steps"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == "kex").cloned())
            .unwrap_or_else(|| panic!("no kex step:\n{}", r.describe()))
    };
    let chacha = kex("chacha");
    let detail = chacha["detail"].as_str().unwrap_or_default();
    assert_eq!(chacha["status"], "pass", "{chacha}");
    assert!(
        detail.contains("cipher chacha20-poly1305@openssh.com")
            && detail.contains("kex ecdh-sha2-nistp256"),
        "{detail}"
    );
    assert!(
        detail.contains("asked for Ciphers chacha20-poly1305@openssh.com"),
        "{detail}"
    );
    // A list warren's library cannot satisfy is an error that names it.
    let umac = kex("umac");
    assert_eq!(umac["status"], "fail");
    assert!(
        umac["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("MACs umac-128-etm@openssh.com: warren's SSH library implements none"),
        "{umac}"
    );
    warren(&s, &["up", "umac"])
        .expect_code(1)
        .expect_stderr("umac-128-etm@openssh.com");
    // A list the server does not share: no common algorithm, named.
    let cbc = kex("cbc");
    assert_eq!(cbc["status"], "fail");
    assert!(
        cbc["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no common"),
        "{cbc}"
    );
}

#[test]
fn on_a_terminal_warren_up_asks_about_an_unknown_key_as_ssh_does() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let local = free_port();
    let s = unknown_host(&sshd, local);
    let t = Tmux::warren(s.path(), "", "--ssh-config ssh_config up db");
    let screen = t.wait_for("(yes/no/[fingerprint])?");
    assert!(
        screen.contains("The authenticity of host") || screen.contains("the authenticity of host"),
        "{screen}"
    );
    assert!(
        screen.contains("ED25519 key fingerprint is SHA256:"),
        "{screen}"
    );
    // An unclear answer is asked again, as ssh does.
    t.type_text("maybe");
    t.keys(&["Enter"]);
    t.wait_for("Please type 'yes', 'no' or the fingerprint:");
    t.type_text("yes");
    t.keys(&["Enter"]);
    t.wait_for("db  up");
    assert_eq!(
        echo_through(&format!("127.0.0.1:{local}"), b"trusted"),
        b"trusted"
    );
    t.keys(&["C-c"]);
    t.wait_for("EXITED 0");
    let kh = std::fs::read_to_string(s.path().join("known_hosts")).expect("kh");
    assert_eq!(kh.trim(), sshd.known_hosts_line(), "{kh}");
}

#[test]
fn doctor_on_a_terminal_asks_too_and_a_yes_records_the_key() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let s = unknown_host(&sshd, free_port());
    let t = Tmux::warren(s.path(), "", "--ssh-config ssh_config doctor db");
    t.wait_for("(yes/no/[fingerprint])?");
    t.type_text("yes");
    t.keys(&["Enter"]);
    let screen = t.wait_for("EXITED");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("host_key") && l.contains("ok")),
        "{screen}"
    );
    let kh = std::fs::read_to_string(s.path().join("known_hosts")).expect("kh");
    assert_eq!(kh.trim(), sshd.known_hosts_line(), "{kh}");
}

#[test]
fn answering_no_on_the_terminal_refuses_and_records_nothing() {
    if !have_servers() || !support::require("tmux") {
        return;
    }
    let sshd = Sshd::start("");
    let s = unknown_host(&sshd, free_port());
    let t = Tmux::warren(s.path(), "", "--ssh-config ssh_config up db");
    t.wait_for("(yes/no/[fingerprint])?");
    t.type_text("no");
    t.keys(&["Enter"]);
    t.wait_for("EXITED 1");
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).expect("kh"),
        ""
    );
}

#[test]
fn without_a_terminal_it_refuses_and_says_how_then_warren_trust_records_it() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = unknown_host(&sshd, free_port());
    let refused = warren(&s, &["up", "db", "--json"]);
    refused
        .expect_code(1)
        .expect_stdout("nobody confirmed it")
        .expect_stdout("warren trust db");
    // A wrong fingerprint records nothing.
    warren(
        &s,
        &[
            "trust",
            "db",
            "--fingerprint",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
    )
    .expect_code(1)
    .expect_stderr("not confirmed");
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).expect("kh"),
        ""
    );
    // The right one records the key, as ssh would have.
    let fp = sshd.fingerprint();
    warren(&s, &["trust", "db", "--fingerprint", &fp])
        .expect_code(0)
        .expect_stdout(&fp);
    let kh = std::fs::read_to_string(s.path().join("known_hosts")).expect("kh");
    assert_eq!(kh.trim(), sshd.known_hosts_line());
    warren(&s, &["doctor", "db"]).expect_code(0);
}

#[test]
fn user_known_hosts_file_none_is_no_file_at_all() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&sshd);
    s.write(
        "ssh_config",
        &ssh_host(
            "db",
            &sshd,
            &key,
            free_port(),
            9,
            "    UserKnownHostsFile none\n    GlobalKnownHostsFile none\n    StrictHostKeyChecking accept-new\n",
        ),
    );
    warren(&s, &["up", "db"])
        .expect_code(1)
        .expect_stderr("UserKnownHostsFile none");
    assert!(
        !s.path().join("none").exists(),
        "no file named 'none' was written"
    );
}

#[test]
fn known_hosts_command_vouches_for_a_key_that_is_then_never_written() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let (s, key) = home(&sshd);
    s.write("known_hosts", "");
    let d = s.path().display();
    let fields: Vec<&str> = sshd.host_key_line.split_whitespace().collect();
    let (local, echo) = (free_port(), echo_server());
    // ssh runs it without a shell: /bin/echo prints `%H keytype key`, a known_hosts line.
    s.write(
        "ssh_config",
        &ssh_host(
            "db",
            &sshd,
            &key,
            local,
            echo,
            &format!(
                "    UserKnownHostsFile {d}/known_hosts\n    StrictHostKeyChecking yes\n    KnownHostsCommand /bin/echo %H {} {}\n",
                fields[0], fields[1]
            ),
        ),
    );
    let mut up = Up::start(
        s.path(),
        &[
            "--ssh-config",
            "ssh_config",
            "--config",
            "/dev/null",
            "up",
            "db",
            "--json",
        ],
    );
    let addr = up.listening("db");
    assert_eq!(echo_through(&addr, b"vouched"), b"vouched");
    assert_eq!(up.interrupt(), 0);
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).expect("kh"),
        "",
        "a key found through KnownHostsCommand is not written"
    );

    // A command that fails refuses the key, as ssh stops ("KnownHostsCommand failed").
    s.write(
        "ssh_config",
        &ssh_host(
            "db",
            &sshd,
            &key,
            local,
            echo,
            &format!(
                "    UserKnownHostsFile {d}/known_hosts\n    KnownHostsCommand /bin/false %H\n"
            ),
        ),
    );
    warren(&s, &["up", "db"])
        .expect_code(1)
        .expect_stderr("KnownHostsCommand-ORDER /bin/false 127.0.0.1 failed, status 1")
        .expect_stderr("KnownHostsCommand failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_withdrawn_when_its_tunnel_closes_and_a_late_yes_records_nothing() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = unknown_host(&sshd, free_port());
    let cat = Catalog::load(
        &Paths {
            ssh_config: Some(s.path().join("ssh_config")),
            epoch: Some("/dev/null".into()),
            known_hosts: None,
            epoch_is_project: false,
        },
        Arc::new(Context::new(
            s.path().to_path_buf(),
            &local_user(),
            Default::default(),
        )),
    );
    let engine = Engine::start_with(true);
    let mut rx = engine.subscribe();
    engine
        .send(Command::Open {
            conn: Box::new(cat.find("db").expect("db").clone()),
            reply: None,
        })
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut next = async || {
        std::sync::Arc::unwrap_or_clone(
            tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("in time")
                .expect("event"),
        )
    };
    let id = loop {
        if let Event::Prompt { id, .. } = next().await {
            break id;
        }
    };
    engine
        .send(Command::Close {
            names: vec!["db".into()],
            reply: None,
        })
        .await;
    loop {
        if let Event::PromptWithdrawn { id: w, .. } = next().await
            && w == id
        {
            break;
        }
    }
    engine
        .send(Command::Answer {
            id,
            answer: Answer::HostKey(HostKeyAnswer::AcceptAndSave),
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_to_string(s.path().join("known_hosts")).expect("kh"),
        "",
        "a late yes must not record the key"
    );
    engine.shutdown().await;
}
