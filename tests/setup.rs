//! `warren setup` with flags, against a real sshd and PostgreSQL: a new key, the bastion's
//! lines, the entry written without losing a comment, and the entry then passing doctor; and
//! the same from nothing, in a HOME with no config directories at all.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::Scratch;
use support::postgres::Postgres;
use support::sshd::Sshd;
use support::tunnel::{have_servers, local_user};

const BEFORE: &str = "# team databases: edit with care\nmetadata_url = \"postgresql://meta/epoch\"   # the catalog\n\n[storage.mysql.billing]\nhost = \"billing.internal\"   # primary\nport = 3306\n";

#[test]
fn setup_with_flags_then_the_entry_passes_doctor() {
    if !have_servers() {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let sshd = Sshd::start("");
    let s = Scratch::new();
    s.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    s.write("epoch.toml", BEFORE);
    let bastion = format!("{}@127.0.0.1:{}", local_user(), sshd.port);
    let target = format!("127.0.0.1:{}", pg.port);
    let args = [
        "--ssh-config",
        "/dev/null",
        "--known-hosts",
        "known_hosts",
        "--config",
        "epoch.toml",
        "setup",
        "--name",
        "orders",
        "--engine",
        "postgres",
        "--target",
        &target,
        "--bastion",
        &bastion,
        "--generate-key",
        "keys/id_orders",
    ];
    let r = s.warren(&args);
    r.expect_code(0)
        .expect_stdout(&format!(
            "restrict,port-forwarding,permitopen=\"{target}\" ssh-ed25519 "
        ))
        .expect_stdout("PermitOpen")
        .expect_stdout("the walk stopped at 'auth'")
        .expect_stdout("step 4");

    let key = s.path().join("keys/id_orders");
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600,
        "the private key is 0600"
    );
    let text = std::fs::read_to_string(s.path().join("epoch.toml")).expect("epoch");
    assert!(
        text.starts_with(BEFORE.trim_end()),
        "every comment, key and blank line kept:\n{text}"
    );
    assert!(
        text.contains("[storage.postgres.orders]")
            && text.contains("[storage.postgres.orders.ssh_tunnel]"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(s.path().join("epoch.toml.bak")).expect("bak"),
        BEFORE
    );

    // The bastion's side, as the instructions say; then the entry passes doctor.
    let public = std::fs::read_to_string(s.path().join("keys/id_orders.pub")).expect("pub");
    sshd.authorize(public.trim());
    s.warren_kh(&["--config", "epoch.toml", "doctor", "orders"])
        .expect_code(0)
        .expect_stdout("no step failed");

    // Again without --yes: refused, nothing changed (and the key is never overwritten).
    let after = std::fs::read_to_string(s.path().join("epoch.toml")).expect("epoch");
    let mut again: Vec<&str> = args.to_vec();
    again.truncate(again.len() - 2);
    again.extend(["--agent"]);
    s.warren(&again)
        .expect_code(1)
        .expect_stderr("already exists")
        .expect_stderr("--yes");
    assert_eq!(
        std::fs::read_to_string(s.path().join("epoch.toml")).expect("epoch"),
        after
    );
    s.warren(&args)
        .expect_code(1)
        .expect_stderr("warren never overwrites a key");
}

/// A first-time user: a HOME with nothing in it (no ~/.config, no ~/.ssh), the issue's
/// command. The directories are made 0700, the key 0600, and the diagnostics run.
#[test]
fn setup_from_nothing_creates_the_directories_the_key_and_the_entry() {
    if !have_servers() {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let sshd = Sshd::start("");
    let home = Scratch::new();
    // known_hosts lives outside HOME: HOME stays empty.
    let elsewhere = Scratch::new();
    let known_hosts = elsewhere.write("known_hosts", &format!("{}\n", sshd.known_hosts_line()));
    let known_hosts = known_hosts.display().to_string();
    assert_eq!(std::fs::read_dir(home.path()).expect("home").count(), 0);
    let bastion = format!("{}@127.0.0.1:{}", local_user(), sshd.port);
    let target = format!("127.0.0.1:{}", pg.port);
    let args = [
        "--ssh-config",
        "/dev/null",
        "--known-hosts",
        &known_hosts,
        "setup",
        "--name",
        "orders",
        "--engine",
        "postgres",
        "--target",
        &target,
        "--bastion",
        &bastion,
        "--generate-key",
        "~/.ssh/id_new",
        "--yes",
    ];
    let r = home.warren(&args);
    r.expect_code(0)
        .expect_stdout("create ~/.ssh, ~/.config, ~/.config/epoch (0700)")
        .expect_stdout("6. the diagnostics of orders")
        .expect_stdout("the walk stopped at 'auth'");
    let mode = |rel: &str| {
        std::fs::metadata(home.path().join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}\n{}", r.describe()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".config/epoch"), 0o700);
    assert_eq!(mode(".ssh"), 0o700);
    assert_eq!(mode(".ssh/id_new"), 0o600);
    assert_eq!(mode(".config/epoch/epoch.toml"), 0o600);
    let text =
        std::fs::read_to_string(home.path().join(".config/epoch/epoch.toml")).expect("epoch");
    assert!(
        text.contains("[storage.postgres.orders]")
            && text.contains(&format!(
                "key_file = \"{}/.ssh/id_new\"",
                home.path().display()
            )),
        "{text}"
    );
    // The bastion's side, as the instructions say: then the entry passes doctor.
    let public = std::fs::read_to_string(home.path().join(".ssh/id_new.pub")).expect("pub");
    sshd.authorize(public.trim());
    home.warren(&[
        "--ssh-config",
        "/dev/null",
        "--known-hosts",
        &known_hosts,
        "doctor",
        "orders",
    ])
    .expect_code(0)
    .expect_stdout("no step failed");
}

#[test]
fn a_read_only_directory_fails_clearly_and_keeps_the_file() {
    // As root every directory is writable: run warren as 'nobody' in a root-owned one.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root || !support::have("runuser") {
        eprintln!("SKIPPED: needs root and runuser to make a directory read-only for warren");
        return;
    }
    let s = Scratch::new();
    std::fs::set_permissions(s.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let epoch = s.write("epoch.toml", BEFORE);
    std::fs::set_permissions(&epoch, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            "env",
            &format!("HOME={}", s.path().display()),
            env!("CARGO_BIN_EXE_warren"),
            "--ssh-config",
            "/dev/null",
        ])
        .arg("--config")
        .arg(&epoch)
        .args([
            "setup",
            "--name",
            "x",
            "--engine",
            "postgres",
            "--target",
            "db.internal:5432",
            "--bastion",
            "ops@bastion.example.com",
            "--agent",
        ])
        .output()
        .expect("runuser");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write {}",
            s.path().join("epoch.toml.bak").display()
        )) || stderr.contains("cannot write"),
        "{stderr}"
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&epoch).expect("epoch"),
        BEFORE,
        "the original file is intact"
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        // .config holds the scratch home's trust record (support::Scratch::write).
        .filter(|n| n != ".config")
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp file left: {leftovers:?}");
}

#[test]
fn a_bastion_named_by_an_ssh_config_alias_reuses_its_settings() {
    if !have_servers() {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let jump = Sshd::start("");
    let bastion = Sshd::start("");
    let s = Scratch::new();
    let key = support::sshd::keygen(s.path(), "id_edge", "ed25519", "", false);
    jump.authorize(&key.public_line);
    bastion.authorize(&key.public_line);
    s.write(
        "known_hosts",
        &format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            bastion.known_hosts_line()
        ),
    );
    let user = local_user();
    let k = key.private.display().to_string();
    s.write(
        "ssh_config",
        &format!(
            "Host jumpy\n    HostName 127.0.0.1\n    Port {}\n    User {user}\n    IdentityFile {k}\n\nHost edge\n    HostName 127.0.0.1\n    Port {}\n    User {user}\n    IdentityFile {k}\n    ProxyJump jumpy\n",
            jump.port, bastion.port
        ),
    );
    let target = format!("127.0.0.1:{}", pg.port);
    let r = s.warren(&[
        "--ssh-config",
        "ssh_config",
        "--known-hosts",
        "known_hosts",
        "--config",
        "epoch.toml",
        "setup",
        "--name",
        "viaedge",
        "--engine",
        "postgres",
        "--target",
        &target,
        "--bastion",
        "edge",
    ]);
    r.expect_code(0)
        .expect_stdout("'edge' is a ~/.ssh/config host")
        .expect_stdout("all set");
    let text = std::fs::read_to_string(s.path().join("epoch.toml")).expect("epoch");
    assert!(
        text.contains("jump_host = \"jumpy\"") && text.contains(&format!("key_file = \"{k}\"")),
        "{text}"
    );
    let v = s
        .warren(&[
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "--config",
            "epoch.toml",
            "doctor",
            "viaedge",
            "--json",
        ])
        .json();
    assert_eq!(v["ok"], true, "{v:#}");
    let hops: Vec<u64> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["id"] == "auth")
        .filter_map(|s| s["hop"].as_u64())
        .collect();
    assert_eq!(hops, [0, 1], "through the alias's jump host");
}

/// A passphrase encrypts the new key the way OpenSSH reads it: `ssh-keygen -y` needs it.
#[test]
fn a_generated_key_with_a_passphrase_is_encrypted_for_openssh() {
    if !support::require("ssh-keygen") {
        return;
    }
    let s = Scratch::new();
    let key = s.path().join("enc_key");
    let public =
        warren::setup::generate_key(&key, Some("correct horse"), "warren-test").expect("generate");
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    let derive = |pass: &str| {
        std::process::Command::new("ssh-keygen")
            .args(["-y", "-P", pass, "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen")
    };
    let wrong = derive("");
    assert!(
        !wrong.status.success(),
        "an empty passphrase opened the key"
    );
    let right = derive("correct horse");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let derived = String::from_utf8_lossy(&right.stdout);
    let field = |l: &str| l.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(field(&derived), field(&public), "{derived} vs {public}");
    // The passphrase is nowhere in the files.
    for f in [&key, &key.with_extension("pub")] {
        let bytes = std::fs::read(f).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("correct horse"));
    }
}

/// Two `warren setup --yes` at once on one epoch.toml, 20 rounds, while a person appends a
/// comment each round: every entry and every comment is there, the file is always valid TOML,
/// and each run that says "saved" did save.
#[test]
fn two_setups_at_once_and_a_hand_edit_lose_nothing() {
    let home = Scratch::new();
    let epoch = home.write(".config/epoch/epoch.toml", "# mine\n");
    // Nothing listens on the bastion's port: the diagnostics after the write fail at once.
    let closed = support::sshd::free_port();
    let bastion = format!("{}@127.0.0.1:{closed}", local_user());
    let run = |name: String| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args([
            "--ssh-config",
            "/dev/null",
            "setup",
            "--name",
            &name,
            "--engine",
            "postgres",
            "--target",
            "db.internal:5432",
            "--bastion",
            &bastion,
            "--agent",
            "--yes",
        ])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env_remove("EPOCH_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("setup")
    };
    let (mut saved, mut failed) = (Vec::new(), Vec::new());
    for round in 0..20 {
        let a = run(format!("a{round}"));
        let b = run(format!("b{round}"));
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&epoch)
                .expect("open");
            writeln!(f, "# note {round}").expect("append");
        }
        for (name, child) in [(format!("a{round}"), a), (format!("b{round}"), b)] {
            let out = child.wait_with_output().expect("wait");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if stdout.contains(&format!("saved [storage.postgres.{name}]")) {
                saved.push(name);
            } else {
                assert_ne!(
                    out.status.code(),
                    Some(0),
                    "{name}: not saved but exit 0:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                failed.push(format!("{name}: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        let text = std::fs::read_to_string(&epoch).expect("epoch");
        assert!(
            text.parse::<toml_edit::DocumentMut>().is_ok(),
            "round {round}: valid TOML:\n{text}"
        );
    }
    let text = std::fs::read_to_string(&epoch).expect("epoch");
    assert_eq!(saved.len(), 40, "every setup saved: {failed:#?}\n{text}");
    for name in &saved {
        assert!(
            text.contains(&format!("[storage.postgres.{name}]")),
            "{name} said saved and is there:\n{text}"
        );
    }
    assert!(text.contains("# mine\n"), "{text}");
    for round in 0..20 {
        assert!(
            text.contains(&format!("# note {round}\n")),
            "the hand-written comment of round {round} is kept:\n{text}"
        );
    }
}

/// A full disk (a 1 MiB tmpfs filled up, in a mount namespace of the test's own) during each
/// of warren's writes: `setup` into epoch.toml, `trust --fingerprint` into known_hosts,
/// `trust-config` into the trust record. Each says it could not write and that the file is
/// unchanged, exits non-zero, and the old file is byte for byte what it was, with no
/// temporary file left beside it.
#[test]
fn a_full_disk_leaves_every_file_as_it_was_and_says_so() {
    if !have_servers() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the full-disk test needs root (a tmpfs in a mount namespace)"
        );
        eprintln!("skipped: not root");
        return;
    }
    let sshd = Sshd::start("");
    let o = Scratch::new();
    let disk = o.path().join("disk");
    std::fs::create_dir_all(&disk).expect("mount point");
    let d = disk.display().to_string();
    // known_hosts 10 bytes short of a page: the first 10 bytes of an appended line fit, the
    // rest needs a page the disk does not have (a short write, then ENOSPC).
    let mut pad: String = (0..64)
        .map(|i| format!("# line {i:02} {}\n", "x".repeat(53)))
        .collect();
    pad.truncate(4096 - 11);
    pad.push('\n');
    assert_eq!(pad.len(), 4086);
    o.write("src/known_hosts", &pad);
    o.write(
        "src/config",
        &format!(
            "Host target\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    UserKnownHostsFile {d}/.ssh/known_hosts\n    GlobalKnownHostsFile none\n    HashKnownHosts no\n    StrictHostKeyChecking yes\n",
            sshd.port,
            local_user()
        ),
    );
    o.write("src/epoch.toml", BEFORE);
    o.write(
        "src/trusted-configs",
        "0000000000000000000000000000000000000000000000000000000000000000 /elsewhere/epoch.toml\n",
    );
    o.write(
        "src/proj.toml",
        "[storage.postgres.p]\nhost = \"db.internal\"\n",
    );
    let closed = support::sshd::free_port();
    let script = format!(
        r#"set -u
D={d}; S={src}; O={out}; W={warren}
mount -t tmpfs -o size=1m,mode=0755 tmpfs "$D" || exit 90
mkdir -p "$D/.config/epoch" "$D/.config/warren" "$D/.ssh" "$D/proj" "$O/after"
chmod 700 "$D/.ssh"
cp "$S/epoch.toml" "$D/.config/epoch/epoch.toml"
cp "$S/known_hosts" "$D/.ssh/known_hosts"
cp "$S/config" "$D/.ssh/config"
cp "$S/trusted-configs" "$D/.config/warren/trusted-configs"
cp "$S/proj.toml" "$D/proj/epoch.toml"
chmod 600 "$D/.ssh/config" "$D/.ssh/known_hosts" "$D/.config/warren/trusted-configs"
dd if=/dev/zero of="$D/fill" bs=4096 2>/dev/null
echo x > "$D/probe" 2>/dev/null && exit 91
w() {{ env -i PATH="$PATH" HOME="$D" XDG_CONFIG_HOME="$D/.config" XDG_STATE_HOME="$D/.state" "$W" "$@"; }}
cd "$D"
w --ssh-config /dev/null --config "$D/.config/epoch/epoch.toml" setup --name orders --engine postgres --target db.internal:5432 --bastion {user}@127.0.0.1:{closed} --agent --yes >"$O/setup.out" 2>"$O/setup.err"; echo $? >"$O/setup.rc"
w --ssh-config "$D/.ssh/config" --config /dev/null trust target --fingerprint {fp} >"$O/trust.out" 2>"$O/trust.err"; echo $? >"$O/trust.rc"
cd "$D/proj"
w --ssh-config /dev/null trust-config >"$O/trust-config.out" 2>"$O/trust-config.err"; echo $? >"$O/trust-config.rc"
cp -a "$D/.config" "$D/.ssh" "$O/after/"
ls -A "$D/.config/epoch" "$D/.ssh" "$D/.config/warren" >"$O/listing"
"#,
        src = o.path().join("src").display(),
        out = o.path().display(),
        warren = env!("CARGO_BIN_EXE_warren"),
        user = local_user(),
        fp = sshd.fingerprint(),
    );
    o.write("full.sh", &script);
    let st = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh"])
        .arg(o.path().join("full.sh"))
        .status()
        .expect("unshare");
    assert_eq!(st.code(), Some(0), "the namespace script: {st:?}");
    let read = |f: &str| std::fs::read_to_string(o.path().join(f)).unwrap_or_default();
    for (what, after, before) in [
        ("setup", "after/.config/epoch/epoch.toml", "src/epoch.toml"),
        ("trust", "after/.ssh/known_hosts", "src/known_hosts"),
        (
            "trust-config",
            "after/.config/warren/trusted-configs",
            "src/trusted-configs",
        ),
    ] {
        let said = format!(
            "{}{}",
            read(&format!("{what}.out")),
            read(&format!("{what}.err"))
        );
        assert_ne!(
            read(&format!("{what}.rc")).trim(),
            "0",
            "{what} exits non-zero:\n{said}"
        );
        assert!(
            said.contains("No space left on device"),
            "{what} says why:\n{said}"
        );
        assert!(
            said.contains("unchanged"),
            "{what} says the file is unchanged:\n{said}"
        );
        for success in [
            "saved [",
            "saved in",
            "permanently added",
            "is known",
            "trusted /",
        ] {
            assert!(!said.contains(success), "{what} claims success:\n{said}");
        }
        assert_eq!(
            std::fs::read(o.path().join(after)).expect("after"),
            std::fs::read(o.path().join(before)).expect("before"),
            "{what}: the old file is byte for byte as it was\n{said}"
        );
    }
    let listing = read("listing");
    let names: Vec<&str> = listing
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .collect();
    assert_eq!(
        names,
        ["epoch.toml", "trusted-configs", "config", "known_hosts"],
        "no temporary file or half backup left:\n{listing}"
    );
}
