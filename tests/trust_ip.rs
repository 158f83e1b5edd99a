//! CheckHostIP against ssh, as the oracle. ssh turns it off on loopback, so the cases run in
//! a private network and mount namespace made by the test (`unshare -n -m`): a host name
//! (from a private /etc/hosts) resolving to 10.9.9.9 on that namespace's own `lo`, a real
//! sshd there, and `ssh -o BatchMode=yes` and `warren up` in turn. The decision and the
//! known_hosts file afterwards must be the same.

mod support;

use std::path::Path;
use std::process::Command;

use support::sshd::keygen;
use support::tunnel::{have_servers, local_user};

/// One case: the policy, HashKnownHosts, and known_hosts before (`KEY` is the server's key,
/// `OTHER` another).
const CASES: &[(&str, &str, bool, &str)] = &[
    ("new host and address", "accept-new", false, ""),
    ("new, hashed", "accept-new", true, ""),
    (
        "host known, address new",
        "yes",
        false,
        "[dbhost]:2222 KEY\n",
    ),
    (
        "host known, address differs",
        "yes",
        false,
        "[dbhost]:2222 KEY\n[10.9.9.9]:2222 OTHER\n",
    ),
    (
        "host known, address differs, checking off",
        "no",
        false,
        "[dbhost]:2222 KEY\n[10.9.9.9]:2222 OTHER\n",
    ),
    (
        "both known",
        "yes",
        false,
        "[dbhost]:2222,[10.9.9.9]:2222 KEY\n",
    ),
];

fn bare(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hashed names carry a random salt: compared as `|1|*`.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("|1|") {
            Some(rest) => format!("|1|* {}", rest.split_once(' ').map(|x| x.1).unwrap_or("")),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn check_host_ip_decides_and_records_as_ssh_does() {
    if !have_servers() || !support::require("ssh") || !support::require("unshare") {
        return;
    }
    if !support::require("ip") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let host = keygen(d, "host_ed25519", "ed25519", "", false);
    let other = keygen(d, "other", "ed25519", "", false);
    let id = keygen(d, "id", "ed25519", "", false);
    std::fs::write(d.join("authorized_keys"), format!("{}\n", id.public_line)).expect("ak");
    std::fs::write(d.join("hosts"), "127.0.0.1 localhost\n10.9.9.9 dbhost\n").expect("hosts");
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "Port 2222\nListenAddress 10.9.9.9\nHostKey {0}/host_ed25519\nPidFile {0}/sshd.pid\nAuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
            d.display()
        ),
    )
    .expect("sshd_config");
    let user = local_user();
    let warren = env!("CARGO_BIN_EXE_warren");
    let mut script = format!(
        "set -u\ncd {dir}\nmount --bind {dir}/hosts /etc/hosts\nip link set lo up\nip addr add 10.9.9.9/32 dev lo\nmkdir -p /run/sshd\n/usr/sbin/sshd -D -f {dir}/sshd_config -E {dir}/sshd.log &\nSSHD=$!\nfor i in $(seq 1 100); do (exec 3<>/dev/tcp/10.9.9.9/2222) 2>/dev/null && break; sleep 0.05; done\n",
        dir = d.display()
    );
    for (i, (_, policy, hash, before)) in CASES.iter().enumerate() {
        let before = before
            .replace("KEY", &bare(&host.public_line))
            .replace("OTHER", &bare(&other.public_line));
        for tool in ["ssh", "warren"] {
            let case = d.join(format!("case{i}-{tool}"));
            std::fs::create_dir_all(&case).expect("case dir");
            std::fs::write(case.join("known_hosts"), &before).expect("kh");
            std::fs::write(
                case.join("config"),
                format!(
                    "Host target\n    HostName dbhost\n    Port 2222\n    User {user}\n    IdentityFile {}\n    IdentitiesOnly yes\n    IdentityAgent none\n    BatchMode yes\n    CheckHostIP yes\n    HashKnownHosts {}\n    StrictHostKeyChecking {policy}\n    UserKnownHostsFile {}/known_hosts\n    GlobalKnownHostsFile none\n    LocalForward {}/sock 127.0.0.1:9\n",
                    id.private.display(),
                    if *hash { "yes" } else { "no" },
                    case.display(),
                    case.display()
                ),
            )
            .expect("config");
            let c = case.display();
            if tool == "ssh" {
                script.push_str(&format!(
                    "HOME={c} ssh -F {c}/config -o UpdateHostKeys=no -o ExitOnForwardFailure=yes -o ClearAllForwardings=yes -o ConnectTimeout=5 target true </dev/null >/dev/null 2>{c}/said && echo accepted > {c}/result || echo refused > {c}/result\n"
                ));
            } else {
                script.push_str(&format!(
                    "HOME={c} {warren} --ssh-config {c}/config up target --json </dev/null >{c}/events 2>{c}/said &\nW=$!\nfor i in $(seq 1 200); do grep -q '\"state\":\"up\"' {c}/events && break; grep -q '\"state\":\"failed\"' {c}/events && break; sleep 0.05; done\nkill $W 2>/dev/null; wait $W 2>/dev/null\ngrep -q '\"state\":\"up\"' {c}/events && echo accepted > {c}/result || echo refused > {c}/result\n"
                ));
            }
        }
    }
    script.push_str("kill $SSHD\nwait $SSHD 2>/dev/null\n");
    std::fs::write(d.join("run.sh"), &script).expect("script");
    let out = Command::new("unshare")
        .args(["-n", "-m", "bash"])
        .arg(d.join("run.sh"))
        .output()
        .expect("unshare");
    if !out.status.success() && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!(
            "SKIPPED: cannot make a network namespace here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut differences = Vec::new();
    let mut outcomes = Vec::new();
    for (i, (name, policy, _, _)) in CASES.iter().enumerate() {
        let r = |tool: &str| {
            let case = d.join(format!("case{i}-{tool}"));
            (
                read(&case.join("result")).trim().to_string(),
                normalize(&read(&case.join("known_hosts"))),
                read(&case.join("said")),
            )
        };
        let (s, w) = (r("ssh"), r("warren"));
        outcomes.push(s.0.clone());
        assert!(
            !s.0.is_empty() && !w.0.is_empty(),
            "case {name} did not run:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if s.0 != w.0 || s.1 != w.1 {
            differences.push(format!(
                "{name} ({policy}): ssh {} / warren {}\n  ssh file:    {:?}\n  warren file: {:?}\n  ssh said: {}\n  warren said: {}",
                s.0, w.0, s.1, w.1, s.2.trim(), w.2.trim()
            ));
        }
    }
    assert!(
        outcomes.contains(&"accepted".to_string()) && outcomes.contains(&"refused".to_string()),
        "both outcomes must occur: {outcomes:?}"
    );
    assert!(
        differences.is_empty(),
        "{} of {} CheckHostIP cases differ from ssh:\n{}",
        differences.len(),
        CASES.len(),
        differences.join("\n")
    );
}
