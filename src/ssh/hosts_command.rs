//! KnownHostsCommand, run as OpenSSH 9.2 runs it (sshconnect.c `load_hostkeys_command`,
//! misc.c `subprocess`): no shell, the words of [`HostsCommand`] with `%H %I %t %f %K` filled
//! in, the first word an absolute path, stdin on /dev/null, the environment kept, its stdout
//! read as known_hosts lines, and only the lines for the name looked up kept. It runs for
//! the host-key algorithm order (`ORDER`, before key exchange), for the host (`HOSTNAME`)
//! and, with CheckHostIP, for its address (`ADDRESS`).
//!
//! As in ssh: a first word that is not an absolute path, or not there, is reported and the
//! command skipped; a nonzero exit or a signal is fatal (the connection is refused). warren
//! adds bounds ssh does not have: the hop's connect timeout, [`MAX_OUTPUT`] bytes of output,
//! and no terminal (a session of its own), and it keeps the end of stderr for the message.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use russh::keys::ssh_key::PublicKey;
use tokio::io::AsyncReadExt;

use super::known_hosts::KnownHosts;
use crate::config::command::{Broken, HostsCommand};

/// The most output read from the command.
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// Why the command runs (`%I`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invocation {
    Order,
    Hostname,
    Address,
}

impl Invocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Invocation::Order => "ORDER",
            Invocation::Hostname => "HOSTNAME",
            Invocation::Address => "ADDRESS",
        }
    }

    /// The "file" its lines are from, as ssh names it.
    pub fn tag(self) -> String {
        format!("KnownHostsCommand-{}", self.as_str())
    }
}

/// The presented key, for `%t %f %K`: its type name, fingerprint and base64.
pub struct KeyFacts {
    pub type_name: String,
    pub fingerprint: String,
    pub base64: String,
}

impl KeyFacts {
    /// For a plain key; for a certificate, its type and blob with the plain key's
    /// fingerprint, as ssh gives them.
    pub fn of(key: &PublicKey, cert: Option<&russh::keys::ssh_key::Certificate>) -> Self {
        let fingerprint = super::known_hosts::fingerprint(key);
        let openssh = match cert {
            Some(c) => c.to_openssh().unwrap_or_default(),
            None => key.to_openssh().unwrap_or_default(),
        };
        let mut parts = openssh.split_whitespace();
        KeyFacts {
            type_name: parts.next().unwrap_or_default().to_string(),
            base64: parts.next().unwrap_or_default().to_string(),
            fingerprint,
        }
    }
}

/// What a run gave.
#[derive(Debug)]
pub enum Ran {
    /// Its lines for the name (possibly none).
    Lines(KnownHosts),
    /// Not run, as ssh does not run it (the message ssh prints): no lines.
    Skipped(String),
}

/// Runs `cmd` for `name` (`%H`), keeping only its lines for `name`. `Err` is fatal: ssh
/// stops with "KnownHostsCommand failed".
pub async fn run(
    cmd: &HostsCommand,
    invocation: Invocation,
    name: &str,
    key: Option<&KeyFacts>,
    timeout: Duration,
) -> Result<Ran, String> {
    let tag = invocation.tag();
    match &cmd.broken {
        Some(Broken::Skipped(why)) => return Ok(Ran::Skipped(why.clone())),
        Some(Broken::Fatal(why)) => return Err(format!("{why}; KnownHostsCommand failed")),
        None => {}
    }
    let words = cmd.words(|t| match (t, key) {
        ('H', _) => name.to_string(),
        ('I', _) => invocation.as_str().to_string(),
        ('t', Some(k)) => k.type_name.clone(),
        ('f', Some(k)) => k.fingerprint.clone(),
        ('K', Some(k)) => k.base64.clone(),
        _ => "NONE".to_string(),
    });
    let Some(program) = words.first() else {
        return Ok(Ran::Skipped(format!("{tag}: no command")));
    };
    let shown = words.join(" ");
    if !program.starts_with('/') {
        return Ok(Ran::Skipped(format!("{tag} path is not absolute")));
    }
    if let Err(e) = std::fs::metadata(Path::new(program)) {
        return Ok(Ran::Skipped(format!(
            "Could not stat {tag} \"{program}\": {e}"
        )));
    }
    let mut command = tokio::process::Command::new(program);
    command
        .args(&words[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    super::proxy::in_own_session(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| format!("{tag} {shown}: cannot run it: {e}; KnownHostsCommand failed"))?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let work = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let read_out = async {
            if let Some(o) = out.as_mut() {
                let _ = o.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut stdout).await;
            }
        };
        let read_err = async {
            if let Some(e) = err.as_mut() {
                let _ = e.take(64 * 1024).read_to_end(&mut stderr).await;
            }
        };
        tokio::join!(read_out, read_err);
        if stdout.len() > MAX_OUTPUT {
            return Err(format!(
                "{tag} {shown} printed more than {MAX_OUTPUT} bytes; KnownHostsCommand failed"
            ));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("{tag} waitpid: {e}"))?;
        Ok((status, stdout, stderr))
    };
    let (status, stdout, stderr) = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(format!(
                "{tag} {shown} did not finish within {}s; KnownHostsCommand failed",
                timeout.as_secs()
            ));
        }
    };
    let said = String::from_utf8_lossy(&stderr);
    let said = match said.trim().lines().last() {
        Some(l) => format!(" ({})", crate::text::escape(l)),
        None => String::new(),
    };
    if let Some(sig) = status.signal() {
        return Err(format!(
            "{tag} {shown} exited on signal {sig}{said}; KnownHostsCommand failed"
        ));
    }
    if status.code() != Some(0) {
        return Err(format!(
            "{tag} {shown} failed, status {}{said}; KnownHostsCommand failed",
            status.code().unwrap_or(-1)
        ));
    }
    let mut lines = KnownHosts::default();
    lines.add_for_name(Path::new(&tag), &stdout, name);
    Ok(Ran::Lines(lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::command::HostsCommand;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn cmd(raw: &str) -> HostsCommand {
        HostsCommand::parse(
            raw,
            |s| Ok(s.split(' ').map(str::to_string).collect()),
            |_| None,
            |_| None,
        )
    }

    #[tokio::test]
    async fn lines_for_the_name_only_and_ssh_s_failures() {
        let t = Duration::from_secs(5);
        let c = cmd(&format!("/bin/echo %H {ED}"));
        let Ok(Ran::Lines(l)) = run(&c, Invocation::Hostname, "[db]:2222", None, t).await else {
            panic!("ran")
        };
        assert_eq!(l.len(), 1, "echo prints one known_hosts line for the name");
        let c = cmd(&format!("/bin/echo other {ED}"));
        let Ok(Ran::Lines(l)) = run(&c, Invocation::Hostname, "db", None, t).await else {
            panic!("ran")
        };
        assert_eq!(l.len(), 0, "a line for another host is not kept");

        let e = run(&cmd("/bin/false"), Invocation::Hostname, "db", None, t)
            .await
            .expect_err("fatal");
        assert!(
            e.contains("KnownHostsCommand-HOSTNAME /bin/false failed, status 1"),
            "{e}"
        );
        let s = run(&cmd("echo x"), Invocation::Hostname, "db", None, t)
            .await
            .expect("not fatal");
        assert!(matches!(s, Ran::Skipped(m) if m.contains("path is not absolute")));
        let e = run(
            &cmd("/bin/sleep 30"),
            Invocation::Hostname,
            "db",
            None,
            Duration::from_millis(200),
        )
        .await
        .expect_err("bounded");
        assert!(e.contains("did not finish"), "{e}");
    }
}
