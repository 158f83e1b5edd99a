//! A multi-factor bastion: a real OpenSSH sshd with PAM that asks for a key and then a
//! keyboard-interactive (or password) answer, for a real account with a password. The
//! account is made once per test binary (`useradd -m`, `chpasswd`); its key goes into its
//! own `~/.ssh/authorized_keys` (0700 / 0600, owned by it), which sshd reads as that user.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::OnceLock;

use super::sshd::Sshd;

pub const USER: &str = "warrenmfa";
pub const PASSWORD: &str = "correct horse 42";

/// Creates the account once (idempotent across test binaries); false if it cannot be made.
pub fn account() -> bool {
    static MADE: OnceLock<bool> = OnceLock::new();
    *MADE.get_or_init(|| {
        let exists = Command::new("id")
            .arg(USER)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !exists {
            let made = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", USER])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            // Another test binary may have made it meanwhile.
            if !made
                && !Command::new("id")
                    .arg(USER)
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            {
                return false;
            }
        }
        let mut child = match Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => return false,
        };
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = writeln!(stdin, "{USER}:{PASSWORD}");
        }
        child.wait().map(|s| s.success()).unwrap_or(false)
    })
}

/// Adds a public key to the account's own authorized_keys.
///
/// Tests run in parallel, in this binary and in others, and each adds its own key: the
/// read-modify-write is done under an exclusive lock on a file beside it (or one test's key
/// would overwrite another's, and that test's sshd would refuse the key), and the new file
/// is renamed into place, so sshd never reads half of it.
pub fn authorize(public_line: &str) {
    let home = format!("/home/{USER}");
    let ssh = format!("{home}/.ssh");
    std::fs::create_dir_all(&ssh).expect("~/.ssh");
    let lock = std::fs::File::create(format!("{ssh}/.warren-test-lock")).expect("lock file");
    lock.lock().expect("lock authorized_keys");
    let ak = format!("{ssh}/authorized_keys");
    let mut text = std::fs::read_to_string(&ak).unwrap_or_default();
    if !text.contains(public_line) {
        text.push_str(public_line);
        text.push('\n');
    }
    let tmp = format!("{ak}.{}.tmp", std::process::id());
    std::fs::write(&tmp, text).expect("authorized_keys");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // Owned by the account before it is renamed into place: under StrictModes an sshd that
    // reads it in between (another test logging in) would refuse a root-owned file.
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, USER]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    std::os::unix::fs::chown(&tmp, id("-u"), id("-g")).expect("chown authorized_keys");
    std::fs::rename(&tmp, &ak).expect("authorized_keys");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let _ = Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}"), &ssh])
        .status();
}

/// An sshd that requires `methods` (e.g. `publickey,keyboard-interactive`) through PAM.
pub fn sshd(methods: &str) -> Sshd {
    sshd_with(methods, "")
}

/// The same, logging every authentication step (`LogLevel VERBOSE`: one `Partial
/// publickey` line for each connection that got past its key).
pub fn sshd_logging(methods: &str) -> Sshd {
    sshd_with(methods, "LogLevel VERBOSE\n")
}

/// How many connections got past their key, from the log of [`sshd_logging`]'s sshd.
pub fn attempts(sshd: &Sshd) -> usize {
    sshd.log_text().matches("Partial publickey for").count()
}

fn sshd_with(methods: &str, extra: &str) -> Sshd {
    Sshd::start(&format!(
        "{extra}UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication yes\nAuthenticationMethods {methods}\nAuthorizedKeysFile .ssh/authorized_keys\nStrictModes yes"
    ))
}
