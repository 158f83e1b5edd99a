//! known_hosts lines written by one side are read by the other: OpenSSH is the oracle for
//! whether a line warren wrote can be used at all (the trust oracle compares decisions and
//! masks hashed names, so it cannot see a line that nobody can match).
//!
//! For each case warren accepts a new key (`warren up` under accept-new, or `warren trust
//! --fingerprint`); then real `ssh -o StrictHostKeyChecking=yes` connects with that file,
//! `ssh-keygen -F` finds the name, and warren's next strict connect asks nothing. The other
//! way round, `ssh` accepts the key and warren connects strictly with the file ssh wrote.
//! Whether a line is hashed is what `ssh -G` says for the same config and HOME (so
//! `HashKnownHosts yes` in `/etc/ssh/ssh_config`, as Debian ships it, is covered by the
//! case that gives no `-F`).

mod support;

use std::process::Command;

use support::Scratch;
use support::net::Up;
use support::sshd::{Sshd, keygen};
use support::tunnel::{have_servers, local_user};

struct Case {
    name: &'static str,
    /// Lines for the Host block.
    extra: &'static str,
    /// The config is given with `--ssh-config`/`-F`; else it is `~/.ssh/config`, and
    /// `/etc/ssh/ssh_config` is read after it.
    explicit: bool,
    /// The name ssh records the key under.
    recorded: fn(&Sshd) -> String,
}

fn bracketed(s: &Sshd) -> String {
    format!("[127.0.0.1]:{}", s.port)
}

fn alias(_: &Sshd) -> String {
    "db.alias".to_string()
}

const CASES: &[Case] = &[
    Case {
        name: "HashKnownHosts yes in the user's file",
        extra: "    HashKnownHosts yes\n",
        explicit: true,
        recorded: bracketed,
    },
    Case {
        name: "HashKnownHosts as ~/.ssh/config and /etc/ssh/ssh_config set it",
        extra: "",
        explicit: false,
        recorded: bracketed,
    },
    Case {
        name: "HashKnownHosts no",
        extra: "    HashKnownHosts no\n",
        explicit: true,
        recorded: bracketed,
    },
    Case {
        name: "HostKeyAlias, hashed",
        extra: "    HashKnownHosts yes\n    HostKeyAlias DB.Alias\n",
        explicit: true,
        recorded: alias,
    },
    Case {
        name: "CheckHostIP yes, hashed",
        extra: "    HashKnownHosts yes\n    CheckHostIP yes\n",
        explicit: true,
        recorded: bracketed,
    },
];

/// A scratch home with a key the server trusts and a config for `target`.
fn home(sshd: &Sshd, c: &Case) -> (Scratch, Vec<String>) {
    let _ = c.explicit;
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let d = s.path().display();
    let text = format!(
        "Host target\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {}\n    IdentitiesOnly yes\n    IdentityAgent none\n    BatchMode yes\n    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile none\n    StrictHostKeyChecking accept-new\n    LocalForward {d}/tunnel.sock 127.0.0.1:9\n{}",
        sshd.port,
        local_user(),
        key.private.display(),
        c.extra
    );
    // ssh reads ~/.ssh/config from the passwd entry's home, not $HOME: it is given the
    // same text with -F, and the system file by an Include at its end (what ssh does after
    // ~/.ssh/config when no -F is given).
    if c.explicit {
        s.write("config", &text);
    } else {
        s.write(".ssh/config", &text);
        s.write(
            "config",
            &format!("{text}Match all\nInclude /etc/ssh/ssh_config\n"),
        );
    }
    let args = vec!["-F".to_string(), format!("{d}/config")];
    (s, args)
}

/// What `ssh -G target` says HashKnownHosts is, with this HOME and these args.
fn ssh_hashes(s: &Scratch, args: &[String]) -> bool {
    let out = Command::new("ssh")
        .args(args)
        .args(["-G", "target"])
        .env("HOME", s.path())
        .output()
        .expect("ssh -G");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().any(|l| l == "hashknownhosts yes")
}

/// `ssh [args] -o StrictHostKeyChecking=POLICY target true`.
fn ssh_strict(s: &Scratch, args: &[String], policy: &str) -> (bool, String) {
    let policy = format!("StrictHostKeyChecking={policy}");
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend([
        "-o",
        &policy,
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "ClearAllForwardings=yes",
        "-o",
        "ConnectTimeout=10",
        "target",
        "true",
    ]);
    support::sshd::run_ssh(s.path(), &all)
}

fn ssh_keygen_finds(s: &Scratch, name: &str) -> bool {
    let out = Command::new("ssh-keygen")
        .args(["-F", name, "-f"])
        .arg(s.path().join("known_hosts"))
        .output()
        .expect("ssh-keygen -F");
    out.status.success() && !out.stdout.is_empty()
}

fn warren_args(s: &Scratch, explicit: bool) -> Vec<String> {
    let mut v = Vec::new();
    // Without --ssh-config: ~/.ssh/config, then /etc/ssh/ssh_config.
    if explicit {
        v.push("--ssh-config".to_string());
        v.push(s.path().join("config").display().to_string());
    }
    v.extend(["--config".to_string(), "/dev/null".to_string()]);
    v
}

/// `warren up target` until up or failed; whether it was up, and what it said.
fn warren_up(s: &Scratch, explicit: bool, policy: Option<&str>) -> (bool, String) {
    if let Some(p) = policy {
        for path in [s.path().join(".ssh/config"), s.path().join("config")] {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let text: String = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("StrictHostKeyChecking ") {
                        format!("    StrictHostKeyChecking {p}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(&path, text).expect("config");
        }
    }
    let _ = std::fs::remove_file(s.path().join("tunnel.sock"));
    let mut a = warren_args(s, explicit);
    a.extend(["up".into(), "target".into(), "--json".into()]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut up = Up::start(s.path(), &refs);
    let v = up.wait_for("up or failed", |v| {
        v["event"] == "state" && (v["state"] == "up" || v["state"] == "failed")
    });
    let ok = v["state"] == "up";
    let said = up
        .seen
        .iter()
        .filter(|e| e["event"] == "error" || e["event"] == "warning" || e["event"] == "prompt")
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let _ = up.interrupt();
    (ok, said)
}

fn kh(s: &Scratch) -> String {
    std::fs::read_to_string(s.path().join("known_hosts")).unwrap_or_default()
}

#[track_caller]
fn check_written(sshd: &Sshd, s: &Scratch, args: &[String], c: &Case, how: &str) {
    let text = kh(s);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: {how}: one line written:\n{text}",
        c.name
    );
    let hashed = ssh_hashes(s, args);
    assert_eq!(
        lines[0].starts_with("|1|"),
        hashed,
        "{}: {how}: hashed iff ssh -G says hashknownhosts yes:\n{text}",
        c.name
    );
    let name = (c.recorded)(sshd);
    assert!(
        ssh_keygen_finds(s, &name),
        "{}: {how}: ssh-keygen -F {name} finds what warren wrote:\n{text}",
        c.name
    );
    let (ok, why) = ssh_strict(s, args, "yes");
    assert!(
        ok,
        "{}: {how}: ssh with StrictHostKeyChecking=yes accepts warren's line:\n{text}\n{why}",
        c.name
    );
    let (ok, why) = warren_up(s, c.explicit, Some("yes"));
    assert!(
        ok,
        "{}: {how}: warren's next strict connect asks nothing:\n{text}\n{why}",
        c.name
    );
    assert_eq!(kh(s), text, "{}: {how}: nothing more written", c.name);
}

#[test]
fn what_warren_writes_ssh_reads_and_the_other_way_round() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    for c in CASES {
        // warren up, accept-new.
        let (s, args) = home(&sshd, c);
        let (ok, why) = warren_up(&s, c.explicit, None);
        assert!(ok, "{}: accept-new: {why}", c.name);
        check_written(&sshd, &s, &args, c, "warren up, accept-new");

        // warren trust --fingerprint (what the TUI's y and up's "yes" write too).
        let (s, args) = home(&sshd, c);
        let fp = sshd.fingerprint();
        let mut a = warren_args(&s, c.explicit);
        a.extend([
            "trust".into(),
            "target".into(),
            "--fingerprint".into(),
            fp.clone(),
        ]);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let run = s.warren(&refs);
        assert_eq!(run.code(), 0, "{}: trust: {}", c.name, run.describe());
        check_written(&sshd, &s, &args, c, "warren trust --fingerprint");

        // ssh writes, warren reads.
        let (s, args) = home(&sshd, c);
        let (ok, why) = ssh_strict(&s, &args, "accept-new");
        assert!(ok, "{}: ssh accept-new: {why}", c.name);
        let before = kh(&s);
        assert_eq!(
            before.lines().next().unwrap_or_default().starts_with("|1|"),
            ssh_hashes(&s, &args),
            "{}: ssh hashed as ssh -G said",
            c.name
        );
        let (ok, why) = warren_up(&s, c.explicit, Some("yes"));
        assert!(
            ok,
            "{}: warren reads what ssh wrote:\n{before}\n{why}",
            c.name
        );
        assert_eq!(kh(&s), before, "{}: warren wrote nothing more", c.name);
    }
}

/// A line an earlier warren wrote lowercased: refused with the way out, removed by
/// `warren trust --repair`, after which the key is recorded properly.
#[test]
fn a_corrupted_line_from_an_earlier_warren_is_named_and_repaired() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let c = &CASES[0];
    let (s, args) = home(&sshd, c);
    // What the earlier warren wrote: ssh's own hashed line, lowercased whole.
    let (ok, why) = ssh_strict(&s, &args, "accept-new");
    assert!(ok, "{why}");
    let good = kh(&s);
    let broken = good.trim_end().to_ascii_lowercase();
    // The key's own base64 was not lowercased by that bug: only the name was.
    let key_part = good
        .trim_end()
        .split_once(' ')
        .map(|x| x.1)
        .unwrap_or_default();
    let name_part = broken.split_once(' ').map(|x| x.0).unwrap_or_default();
    let corrupted = format!("# mine\n{name_part} {key_part}\n");
    std::fs::write(s.path().join("known_hosts"), &corrupted).expect("write");
    assert!(
        !ssh_keygen_finds(&s, &bracketed(&sshd)),
        "nobody matches it"
    );

    let (ok, why) = warren_up(&s, c.explicit, Some("yes"));
    assert!(!ok, "strict refuses: {why}");
    assert!(
        why.contains("warren trust --repair") && why.contains("known_hosts:2"),
        "the refusal names the line and the repair: {why}\n{}",
        kh(&s)
    );

    let mut a = warren_args(&s, c.explicit);
    a.extend(["trust".into(), "--repair".into()]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let run = s.warren(&refs);
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert!(
        run.stdout()
            .contains("known_hosts:2: removed a corrupted hashed line (ED25519 SHA256:"),
        "{}",
        run.describe()
    );
    assert_eq!(kh(&s), "# mine\n", "only the corrupted line went");
    let run = s.warren(&refs);
    assert!(
        run.stdout().contains("no corrupted line in"),
        "{}",
        run.describe()
    );

    let (ok, why) = warren_up(&s, c.explicit, Some("accept-new"));
    assert!(ok, "{why}");
    assert!(ssh_keygen_finds(&s, &bracketed(&sshd)), "{}", kh(&s));
}

/// A known_hosts path that is really authorized_keys, and aliases that are patterns or
/// authorized_keys option words: accept-new writes nothing there (an epoch.toml that did
/// made `restrict ssh-ed25519 <host key>` a login key for whoever holds the host's key).
#[test]
fn host_keys_are_never_written_into_authorized_keys_or_under_a_pattern() {
    if !have_servers() {
        return;
    }
    let sshd = Sshd::start("");
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let ak_before = format!("{}\n", key.public_line);
    s.write(".ssh/authorized_keys", &ak_before);
    std::os::unix::fs::symlink(
        s.path().join(".ssh/authorized_keys"),
        s.path().join(".ssh/hosts"),
    )
    .expect("symlink");
    let cases = [
        ("~/.ssh/authorized_keys", "restrict", "option word"),
        (
            "~/.ssh/authorized_keys",
            "db.example",
            "not a known_hosts file",
        ),
        ("~/.ssh/hosts", "db.example", "not a known_hosts file"),
        ("~/.ssh/known_hosts", "*", "concrete host name"),
        ("~/.ssh/known_hosts", "restrict", "option word"),
        ("~/.ssh/known_hosts", "a,b", "concrete host name"),
    ];
    for (file, alias, why) in cases {
        let entry = support::tunnel::entry(
            "db",
            9,
            &sshd,
            Some(&key.private.display().to_string()),
            &format!(
                "known_hosts_file = \"{file}\"\nhost_key_alias = \"{alias}\"\nstrict_host_key_checking = \"accept-new\"\n"
            ),
        );
        s.write("epoch.toml", &entry);
        let mut up = Up::start(
            s.path(),
            &[
                "--ssh-config",
                "/dev/null",
                "--config",
                "epoch.toml",
                "up",
                "db",
                "--json",
            ],
        );
        let _ = up.wait_for("up or failed", |v| {
            v["event"] == "state" && (v["state"] == "up" || v["state"] == "failed")
        });
        let said: String = up.seen.iter().map(|v| format!("{v}\n")).collect();
        let _ = up.interrupt();
        assert!(
            said.contains(why),
            "{file} / {alias}: says why ({why}):\n{said}"
        );
        assert_eq!(
            std::fs::read_to_string(s.path().join(".ssh/authorized_keys")).expect("ak"),
            ak_before,
            "{file} / {alias}: authorized_keys unchanged"
        );
        let kh = std::fs::read_to_string(s.path().join(".ssh/known_hosts")).unwrap_or_default();
        for l in kh.lines() {
            let host = l.split(' ').next().unwrap_or_default();
            assert!(
                !host.contains(['*', '?', '!', ',']) && host != "restrict",
                "{file} / {alias}: no pattern or option word written: {kh}"
            );
        }
    }
}

/// Two warrens accepting new keys into one known_hosts at the same moment, while a person
/// appends a comment, 20 rounds: every key and every comment is there at the end, each
/// line whole, and ssh finds every name warren wrote.
#[test]
fn two_warrens_accepting_new_keys_at_once_lose_nothing() {
    if !have_servers() {
        return;
    }
    const ROUNDS: usize = 20;
    let sshd = Sshd::start("");
    let s = Scratch::new();
    let key = keygen(s.path(), "id_ed25519", "ed25519", "", false);
    sshd.authorize(&key.public_line);
    let d = s.path().display().to_string();
    // One Host per tunnel, each recording the key under its own alias.
    let mut text = String::new();
    for r in 0..ROUNDS {
        for side in ["a", "b"] {
            text.push_str(&format!(
                "Host {side}{r}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {}\n    IdentitiesOnly yes\n    IdentityAgent none\n    BatchMode yes\n    UserKnownHostsFile {d}/known_hosts\n    GlobalKnownHostsFile none\n    StrictHostKeyChecking accept-new\n    HashKnownHosts no\n    HostKeyAlias {side}{r}.test\n    LocalForward {d}/{side}{r}.sock 127.0.0.1:9\n\n",
                sshd.port,
                local_user(),
                key.private.display(),
            ));
        }
    }
    s.write("config", &text);
    s.write("known_hosts", "# the user's own first line\n");
    let kh_path = s.path().join("known_hosts");
    for r in 0..ROUNDS {
        let start = |side: &str| {
            let name = format!("{side}{r}");
            let args = [
                "--ssh-config",
                &format!("{d}/config"),
                "--config",
                "/dev/null",
                "up",
                &name,
                "--json",
            ]
            .map(str::to_string);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            Up::start(s.path(), &refs)
        };
        let (mut a, mut b) = (start("a"), start("b"));
        // The person's comment, appended as an editor's `>>` would, while both work.
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&kh_path)
                .expect("open known_hosts");
            f.write_all(format!("# by hand, round {r}\n").as_bytes())
                .expect("append");
        }
        for (side, up) in [("a", &mut a), ("b", &mut b)] {
            let v = up.wait_for("up or failed", |v| {
                v["event"] == "state" && (v["state"] == "up" || v["state"] == "failed")
            });
            assert_eq!(v["state"], "up", "round {r}, {side}: {v}\n{:?}", up.seen);
        }
        assert_eq!(a.interrupt(), 0);
        assert_eq!(b.interrupt(), 0);
    }
    let text = std::fs::read_to_string(&kh_path).expect("known_hosts");
    let lines: Vec<&str> = text.lines().collect();
    assert!(text.ends_with('\n'), "the file ends whole:\n{text}");
    assert_eq!(lines[0], "# the user's own first line", "{text}");
    for r in 0..ROUNDS {
        let comment = format!("# by hand, round {r}");
        assert_eq!(
            lines.iter().filter(|l| **l == comment).count(),
            1,
            "{comment} kept once:\n{text}"
        );
        for side in ["a", "b"] {
            let alias = format!("{side}{r}.test");
            let written: Vec<&&str> = lines
                .iter()
                .filter(|l| l.split(' ').next() == Some(alias.as_str()))
                .collect();
            assert_eq!(written.len(), 1, "{alias} recorded once:\n{text}");
            assert_eq!(written[0].split(' ').count(), 3, "{alias}: a whole line");
            assert!(
                ssh_keygen_finds(&s, &alias),
                "ssh-keygen -F {alias}:\n{text}"
            );
        }
    }
    assert_eq!(
        lines.len(),
        1 + ROUNDS + 2 * ROUNDS,
        "nothing else:\n{text}"
    );
}
