//! Running a database client with the terminal: the one piece of the hand-off that does
//! I/O, shared by `warren exec` / `warren connect` and the TUI's `x`. Signals: Ctrl-C and the
//! like reach the client from the terminal (same process group) and warren waits for it to
//! decide; SIGTERM and SIGHUP sent to warren are passed on.

use std::io::Write;

use super::Local;

/// The code when the client could not be waited for.
const FAILED: i32 = 1;

/// The local end of a running tunnel (its first TCP listener).
pub fn local_of(list: &[String]) -> Option<Local> {
    list.iter().find_map(|l| {
        let (h, p) = l.rsplit_once(':')?;
        Some(Local {
            host: h.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: p.parse().ok()?,
        })
    })
}

/// "psql is not installed; it comes with postgresql-client" when the client is not on the
/// PATH.
pub fn not_installed(program: &str) -> Option<String> {
    (!on_path(program)).then(|| {
        format!(
            "{program} is not installed; it comes with {}",
            super::package_of(program)
        )
    })
}

/// Whether `program` is on the PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Runs the command with the terminal and `env`; passes SIGTERM and SIGHUP on; its code.
pub async fn spawn_and_wait(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    err: &mut (dyn Write + Send),
) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: cannot run {program}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    // Ctrl-C and Ctrl-\ reach the command from the terminal (same process group); warren
    // waits for it to decide, and closes the tunnel after.
    let (Ok(mut int), Ok(mut quit), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = child.kill().await;
        return FAILED;
    };
    let pid = child.id();
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            _ = int.recv() => {}
            _ = quit.recv() => {}
            _ = term.recv() => pass(pid, libc::SIGTERM),
            _ = hup.recv() => pass(pid, libc::SIGHUP),
        }
    };
    match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            s.code()
                .or_else(|| s.signal().map(|sig| 128 + sig))
                .unwrap_or(FAILED)
        }
        Err(_) => FAILED,
    }
}

fn pass(pid: Option<u32>, sig: i32) {
    if let Some(p) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(p, sig) };
    }
}
