//! The decision table on files in a temp dir, and keys from a KnownHostsCommand.

use super::*;

const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const ED2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4bdo+KERt2qV2rEDnmk1LyJ5kqnSCsLkbbpBMa1K2a";

fn key(s: &str) -> PublicKey {
    PublicKey::from_openssh(s).expect("key")
}

fn rules(dir: &std::path::Path, policy: HostKeyPolicy) -> Rules {
    Rules {
        policy,
        batch: false,
        user_files: vec![dir.join("kh")],
        global_files: vec![dir.join("global")],
        alias: None,
        revoked: None,
        check_host_ip: false,
        hash: false,
        command: None,
        command_timeout: Duration::from_secs(5),
        hostname: "db.example".into(),
        port: 2222,
        peer: None,
        ssh_dir: dir.join(".ssh"),
    }
}

#[test]
fn the_table() {
    let dir = tempfile::tempdir().expect("dir");
    let r = rules(dir.path(), HostKeyPolicy::AcceptNew);
    // New under accept-new: recorded as [host]:port.
    let d = decide(&r, &key(ED), None, &FromCommand::default());
    assert_eq!(d.found, Found::New);
    assert!(
        matches!(&d.action, Action::Record(l) if l.len() == 1 && l[0].starts_with("[db.example]:2222 ssh-ed25519 "))
    );
    // The global file contradicts: changed, refused.
    std::fs::write(
        dir.path().join("global"),
        format!("[db.example]:2222 {ED2}\n"),
    )
    .expect("write");
    let d = decide(&r, &key(ED), None, &FromCommand::default());
    assert!(matches!(d.found, Found::Changed(_)));
    assert!(matches!(d.action, Action::Refuse(_)));
    // The user file knows it: a match anywhere wins.
    std::fs::write(dir.path().join("kh"), format!("[db.example]:2222 {ED}\n")).expect("write");
    assert!(matches!(
        decide(&r, &key(ED), None, &FromCommand::default()).found,
        Found::Known(_)
    ));
    // UserKnownHostsFile none: an unknown key fails under every policy.
    let mut none = rules(dir.path(), HostKeyPolicy::Off);
    none.user_files.clear();
    none.global_files.clear();
    assert!(matches!(
        decide(&none, &key(ED), None, &FromCommand::default()).action,
        Action::Refuse(_)
    ));
    // The bare name is a fallback for a non-22 port.
    let fallback = rules(dir.path(), HostKeyPolicy::Strict);
    std::fs::write(dir.path().join("kh"), format!("db.example {ED}\n")).expect("write");
    std::fs::remove_file(dir.path().join("global")).expect("rm");
    assert!(matches!(
        decide(&fallback, &key(ED), None, &FromCommand::default()).found,
        Found::KnownBare(_)
    ));
    // HostKeyAlias: looked up without a port.
    let mut alias = rules(dir.path(), HostKeyPolicy::Strict);
    alias.alias = Some("db.example".into());
    assert!(matches!(
        decide(&alias, &key(ED), None, &FromCommand::default()).found,
        Found::Known(_)
    ));
}

#[test]
fn keys_from_the_command() {
    let dir = tempfile::tempdir().expect("dir");
    let r = rules(dir.path(), HostKeyPolicy::Strict);
    let lines = |text: &str| {
        let mut k = KnownHosts::default();
        k.add_for_name(
            std::path::Path::new("KnownHostsCommand-HOSTNAME"),
            text.as_bytes(),
            "[db.example]:2222",
        );
        k
    };
    let from = |host| FromCommand {
        host,
        ..FromCommand::default()
    };
    // The command knows it: accepted, under its "file" name.
    let d = decide(
        &r,
        &key(ED),
        None,
        &from(lines(&format!("[db.example]:2222 {ED}\n"))),
    );
    assert!(
        matches!(&d.found, Found::Known(at) if at.is_command()),
        "{:?}",
        d.found
    );
    // It prints another key: changed, and the message says where the key came from.
    let d = decide(
        &r,
        &key(ED),
        None,
        &from(lines(&format!("[db.example]:2222 {ED2}\n"))),
    );
    assert!(matches!(&d.action, Action::Refuse(m) if m.contains("KnownHostsCommand")));
    // A line for the bare name is not kept (ssh filters by %H), so not the fallback.
    let d = decide(
        &r,
        &key(ED),
        None,
        &from(lines(&format!("db.example {ED}\n"))),
    );
    assert_eq!(d.found, Found::New);
    // It failed: refused, whatever the files say.
    std::fs::write(dir.path().join("kh"), format!("[db.example]:2222 {ED}\n")).expect("write");
    let failed = FromCommand {
        failed: Some("KnownHostsCommand failed".into()),
        ..FromCommand::default()
    };
    assert!(matches!(
        decide(&r, &key(ED), None, &failed).action,
        Action::Refuse(_)
    ));
}
