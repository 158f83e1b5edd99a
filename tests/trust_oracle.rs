//! The host-key differential test: OpenSSH is the oracle. Every case (a config, a server's
//! keys, the known_hosts files before, a StrictHostKeyChecking policy) is run twice against
//! the same real sshd: once with `ssh -o BatchMode=yes`, once with `warren up`. Whether the
//! connection is accepted, and every known_hosts file afterwards, must be the same. Cases
//! include KnownHostsCommand (its keys, its failures, its tokens) and hosts reached through a
//! ProxyCommand.
//!
//! ssh runs with `UpdateHostKeys no` (warren does not learn a server's other keys after
//! login; the README says so) and `ExitOnForwardFailure yes`: with a changed key under
//! `StrictHostKeyChecking no` ssh would log in but disable every forward, which for a tunnel
//! is a refusal, and which this option makes ssh report as one.

mod support;

use std::path::{Path, PathBuf};

use support::net::Up;
use support::sshd::{Key, Sshd, keygen};
use support::tunnel::{have_servers, local_user};

/// What a case starts from.
struct Case {
    name: &'static str,
    policy: &'static str,
    /// The user known_hosts file before (`None`: the file does not exist).
    user: Option<String>,
    global: Option<String>,
    /// More lines for the target's Host block.
    extra: String,
    /// Through the jump server (ProxyJump), its own key known as `jump_known`.
    jump: bool,
}

struct World {
    plain: Sshd,
    /// A server with an RSA and an Ed25519 host key.
    two_keys: Sshd,
    rsa_line: String,
    jump: Sshd,
    key: Key,
    stranger: String,
}

/// `[127.0.0.1]:PORT keytype base64`
fn kh(port: u16, key_line: &str) -> String {
    let mut p = key_line.split_whitespace();
    format!(
        "[127.0.0.1]:{port} {} {}",
        p.next().unwrap_or_default(),
        p.next().unwrap_or_default()
    )
}

fn bare(key_line: &str) -> String {
    let mut p = key_line.split_whitespace();
    format!(
        "{} {}",
        p.next().unwrap_or_default(),
        p.next().unwrap_or_default()
    )
}

/// Hashed names carry a random salt: compare them as `|1|*`.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("|1|") {
                let after = rest.split_once(' ').map(|x| x.1).unwrap_or_default();
                format!("|1|* {after}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn config(w: &World, dir: &Path, c: &Case) -> String {
    let server = if c.extra.contains("TWO_KEYS") {
        &w.two_keys
    } else {
        &w.plain
    };
    let extra = c.extra.replace("TWO_KEYS", "");
    let user = local_user();
    let id = w.key.private.display();
    let d = dir.display();
    let common = format!(
        "    User {user}\n    IdentityFile {id}\n    IdentitiesOnly yes\n    IdentityAgent none\n    BatchMode yes\n"
    );
    let mut text = format!(
        "Host target\n    HostName 127.0.0.1\n    Port {}\n{common}{extra}    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile {d}/global_known_hosts\n    StrictHostKeyChecking {}\n    LocalForward {d}/tunnel.sock 127.0.0.1:9\n",
        server.port, c.policy
    );
    if c.jump {
        text.push_str("    ProxyJump jump\n");
        text.push_str(&format!(
            "\nHost jump\n    HostName 127.0.0.1\n    Port {}\n{common}    UserKnownHostsFile {d}/jump_known_hosts\n    GlobalKnownHostsFile none\n    StrictHostKeyChecking yes\n",
            w.jump.port
        ));
    }
    text
}

/// Writes a case's files into `dir`.
fn prepare(w: &World, dir: &Path, c: &Case) -> PathBuf {
    if let Some(u) = &c.user {
        std::fs::write(dir.join("known_hosts"), u).expect("user kh");
    }
    if let Some(g) = &c.global {
        std::fs::write(dir.join("global_known_hosts"), g).expect("global kh");
    }
    std::fs::write(
        dir.join("jump_known_hosts"),
        format!("{}\n", w.jump.known_hosts_line()),
    )
    .expect("jump kh");
    let cfg = dir.join("config");
    std::fs::write(&cfg, config(w, dir, c)).expect("config");
    cfg
}

/// The files a case may change, as text.
fn files(dir: &Path) -> Vec<(String, Option<String>)> {
    ["known_hosts", "global_known_hosts", "jump_known_hosts"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read_to_string(dir.join(f))
                    .ok()
                    .map(|t| normalize(&t)),
            )
        })
        .collect()
}

fn run_ssh(dir: &Path, cfg: &Path) -> (bool, String) {
    let cfg = cfg.display().to_string();
    support::sshd::run_ssh(
        dir,
        &[
            "-F",
            &cfg,
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "ClearAllForwardings=yes",
            "-o",
            "ConnectTimeout=10",
            "target",
            "true",
        ],
    )
}

fn run_warren(dir: &Path, cfg: &Path) -> (bool, String) {
    let cfg = cfg.display().to_string();
    let mut up = Up::start(dir, &["--ssh-config", &cfg, "up", "target", "--json"]);
    let v = up.wait_for("up or failed", |v| {
        v["event"] == "state" && (v["state"] == "up" || v["state"] == "failed")
    });
    let accepted = v["state"] == "up";
    let why = up
        .seen
        .iter()
        .filter(|e| e["event"] == "error" || e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let _ = up.interrupt();
    (accepted, why)
}

fn cases(w: &World) -> Vec<Case> {
    let p = w.plain.port;
    let right = kh(p, &w.plain.host_key_line);
    let wrong = kh(p, &w.stranger);
    let two = w.two_keys.port;
    let mut out = Vec::new();
    let mut case = |name, policy, user: Option<String>, global: Option<String>, extra: &str| {
        out.push(Case {
            name,
            policy,
            user,
            global,
            extra: extra.to_string(),
            jump: false,
        })
    };
    for policy in ["yes", "ask", "accept-new", "no"] {
        case("unknown", policy, Some(String::new()), None, "");
        case(
            "known",
            policy,
            Some(format!("# mine\n{right}\n")),
            None,
            "",
        );
        case("changed", policy, Some(format!("{wrong}\n")), None, "");
        case(
            "global knows it",
            policy,
            Some(String::new()),
            Some(format!("{right}\n")),
            "",
        );
        case(
            "global contradicts",
            policy,
            Some(String::new()),
            Some(format!("{wrong}\n")),
            "",
        );
        case(
            "user wrong, global right",
            policy,
            Some(format!("{wrong}\n")),
            Some(format!("{right}\n")),
            "",
        );
        case(
            "revoked in global",
            policy,
            Some(format!("{right}\n")),
            Some(format!("@revoked * {}\n", bare(&w.plain.host_key_line))),
            "",
        );
    }
    for policy in ["accept-new", "no", "ask"] {
        case(
            "UserKnownHostsFile none",
            policy,
            None,
            None,
            "    UserKnownHostsFile none\n",
        );
        case(
            "hashed write",
            policy,
            Some("# keep\n".into()),
            None,
            "    HashKnownHosts yes\n",
        );
        case(
            "known only by another key type",
            policy,
            Some(format!("{}\n", kh(two, &w.rsa_line))),
            None,
            "TWO_KEYS",
        );
    }
    for policy in ["yes", "accept-new", "no"] {
        case(
            "known only under another type (changed)",
            policy,
            Some(format!("{}\n", kh(p, &w.rsa_line))),
            None,
            "",
        );
    }
    case(
        "explicit HostKeyAlgorithms, other type known",
        "accept-new",
        Some(format!("{}\n", kh(two, &w.rsa_line))),
        None,
        "TWO_KEYS    HostKeyAlgorithms ssh-ed25519\n",
    );
    case(
        "HostKeyAlgorithms +list keeps the ordering",
        "yes",
        Some(format!("{}\n", kh(two, &w.rsa_line))),
        None,
        "TWO_KEYS    HostKeyAlgorithms +ssh-rsa\n",
    );
    case(
        "only the RSA key is known",
        "yes",
        Some(format!("{}\n", kh(two, &w.rsa_line))),
        None,
        "TWO_KEYS",
    );
    case(
        "HostKeyAlias",
        "yes",
        Some(format!("db.alias {}\n", bare(&w.plain.host_key_line))),
        None,
        "    HostKeyAlias DB.Alias\n",
    );
    case(
        "HostKeyAlias, new",
        "accept-new",
        Some(String::new()),
        None,
        "    HostKeyAlias db.alias\n",
    );
    case(
        "the port-less name",
        "yes",
        Some(format!("127.0.0.1 {}\n", bare(&w.plain.host_key_line))),
        None,
        "",
    );
    case(
        "wildcard port",
        "yes",
        Some(format!("[127.0.0.1]:* {}\n", bare(&w.plain.host_key_line))),
        None,
        "",
    );
    case(
        "negated pattern",
        "yes",
        Some(format!(
            "*,![127.0.0.1]:{p} {}\n",
            bare(&w.plain.host_key_line)
        )),
        None,
        "",
    );
    case(
        "missing directory",
        "accept-new",
        None,
        None,
        "    UserKnownHostsFile /nonexistent-warren-dir/known_hosts\n",
    );
    case(
        "revoked keys file",
        "no",
        Some(format!("{right}\n")),
        None,
        "    RevokedHostKeys REVOKED\n",
    );
    case(
        "revoked keys file missing",
        "no",
        Some(format!("{right}\n")),
        None,
        "    RevokedHostKeys /nonexistent-warren-revoked\n",
    );
    // KnownHostsCommand: run by both without a shell; its lines join the pool.
    let key = bare(&w.plain.host_key_line);
    let other = bare(&w.stranger);
    let echo = |line: &str| format!("    KnownHostsCommand /bin/echo {line}\n");
    case(
        "KnownHostsCommand knows it",
        "yes",
        Some(String::new()),
        None,
        &echo(&format!("%H {key}")),
    );
    case(
        "KnownHostsCommand knows it, nothing written",
        "accept-new",
        Some(String::new()),
        None,
        &echo(&format!("%H {key}")),
    );
    case(
        "KnownHostsCommand prints another key",
        "accept-new",
        Some(String::new()),
        None,
        &echo(&format!("%H {other}")),
    );
    case(
        "KnownHostsCommand contradicts, file knows",
        "yes",
        Some(format!("{right}\n")),
        None,
        &echo(&format!("%H {other}")),
    );
    case(
        "KnownHostsCommand prints nothing",
        "accept-new",
        Some(String::new()),
        None,
        "    KnownHostsCommand /bin/true\n",
    );
    case(
        "KnownHostsCommand for another host",
        "yes",
        Some(String::new()),
        None,
        &echo(&format!("db.other {key}")),
    );
    case(
        "KnownHostsCommand, the port-less name",
        "yes",
        Some(String::new()),
        None,
        &echo(&format!("127.0.0.1 {key}")),
    );
    case(
        "KnownHostsCommand fails",
        "yes",
        Some(format!("{right}\n")),
        None,
        "    KnownHostsCommand /bin/false %H\n",
    );
    case(
        "KnownHostsCommand not absolute",
        "accept-new",
        Some(String::new()),
        None,
        &format!("    KnownHostsCommand echo %H {key}\n"),
    );
    case(
        "KnownHostsCommand %H %I %t %K",
        "yes",
        Some(String::new()),
        None,
        "    KnownHostsCommand /bin/sh -c 'test $1 != HOSTNAME || echo $0 $2 $3' %H %I %t %K\n",
    );
    // ProxyCommand: the host is reached through a command.
    // @NC@ is the stand-in for nc, written into each case's directory.
    let relay = "    ProxyCommand @NC@ %h %p\n";
    case(
        "ProxyCommand, known",
        "yes",
        Some(format!("{right}\n")),
        None,
        relay,
    );
    case(
        "ProxyCommand, unknown",
        "accept-new",
        Some(String::new()),
        None,
        &format!("{relay}    CheckHostIP yes\n"),
    );
    case(
        "ProxyCommand, changed",
        "accept-new",
        Some(format!("{wrong}\n")),
        None,
        relay,
    );
    let mut jumps = vec![
        ("jump, target unknown", "accept-new", String::new()),
        ("jump, target known", "yes", format!("{right}\n")),
        ("jump, target changed", "accept-new", format!("{wrong}\n")),
        ("jump, target unknown, strict", "yes", String::new()),
    ];
    for (name, policy, user) in jumps.drain(..) {
        out.push(Case {
            name,
            policy,
            user: Some(user),
            global: None,
            extra: String::new(),
            jump: true,
        });
    }
    out
}

#[test]
fn warren_decides_every_host_key_case_as_ssh_does() {
    if !have_servers() || !support::require("ssh") {
        return;
    }
    let keys = tempfile::tempdir().expect("keys");
    let rsa = keygen(keys.path(), "host_rsa", "rsa", "", false);
    let two_keys = Sshd::start(&format!("HostKey {}", rsa.private.display()));
    let w = World {
        plain: Sshd::start(""),
        rsa_line: rsa.public_line.clone(),
        two_keys,
        jump: Sshd::start(""),
        key: keygen(keys.path(), "id", "ed25519", "", false),
        stranger: keygen(keys.path(), "stranger", "ed25519", "", false).public_line,
    };
    for s in [&w.plain, &w.two_keys, &w.jump] {
        s.authorize(&w.key.public_line);
    }
    let all = cases(&w);
    assert!(all.len() >= 30, "at least 30 cases, got {}", all.len());
    let mut differences = Vec::new();
    let mut table = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for c in &all {
        let mut results = Vec::new();
        for tool in ["ssh", "warren"] {
            let dir = tempfile::tempdir().expect("case dir");
            let cfg = prepare(&w, dir.path(), c);
            let text = std::fs::read_to_string(&cfg).expect("cfg");
            let revoked = dir.path().join("revoked");
            std::fs::write(&revoked, format!("{}\n", w.plain.host_key_line)).expect("revoked");
            let nc = support::net::nc_script(dir.path());
            std::fs::write(
                &cfg,
                text.replace("REVOKED", &revoked.display().to_string())
                    .replace("@NC@", &nc.display().to_string()),
            )
            .expect("cfg");
            let (ok, why) = if tool == "ssh" {
                run_ssh(dir.path(), &cfg)
            } else {
                run_warren(dir.path(), &cfg)
            };
            results.push((ok, files(dir.path()), why));
        }
        let (s_ok, s_files, s_why) = &results[0];
        let (w_ok, w_files, w_why) = &results[1];
        table.push(format!(
            "{:<34} {:<10} ssh {:<8} warren {}",
            c.name,
            c.policy,
            if *s_ok { "accepts" } else { "refuses" },
            if *w_ok { "accepts" } else { "refuses" }
        ));
        if std::env::var_os("WARREN_TRUST_DEBUG").is_some() {
            eprintln!("{}: ssh: {}\n  warren: {w_why}", c.name, s_why.trim());
        }
        if *s_ok {
            accepted += 1;
        } else {
            refused += 1;
        }
        if s_ok != w_ok || s_files != w_files {
            differences.push(format!(
                "{} ({}): ssh {} / warren {}\n  ssh files:    {s_files:?}\n  warren files: {w_files:?}\n  ssh said: {}\n  warren said: {w_why}",
                c.name,
                c.policy,
                s_ok,
                w_ok,
                s_why.trim()
            ));
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        accepted >= 5 && refused >= 5,
        "the cases must exercise both outcomes ({accepted} accepted, {refused} refused)"
    );
    assert!(
        differences.is_empty(),
        "{} of {} cases differ from ssh:\n{}",
        differences.len(),
        all.len(),
        differences.join("\n")
    );
}
